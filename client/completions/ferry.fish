# fish completion for ferry. Printed by `ferry completions fish`; installed by `cmake --install`
# as share/fish/vendor_completions.d/ferry.fish (fish loads it on demand). Without that:
# ferry completions fish > ~/.config/fish/completions/ferry.fish

set -l commands emit status init hooks service query sessions tail flush deadletter doctor completions stats export relay search transcript
set -l global_commands emit status query sessions tail flush deadletter doctor stats export relay search transcript
set -l sources claude-code codex cursor gemini copilot cline windsurf opencode bash zsh fish

complete -c ferry -f

# The command.
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a emit -d 'send one event to ferryd (the hook hot path)'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a status -d 'show what ferryd is doing'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a init -d 'print the bash, zsh or fish integration'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a hooks -d 'install or uninstall hooks in an AI tool'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a service -d 'install or uninstall the systemd user service'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a query -d 'run read-only SQL on the event store'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a sessions -d 'recent sessions with counts and durations'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a tail -d 'print journal events (-f follows)'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a flush -d 'send what the sinks have not yet sent, now'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a deadletter -d 'list, replay or purge rejected events'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a doctor -d 'check the setup and say how to fix it'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a completions -d 'print a shell completion script'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a stats -d 'sessions, tool calls, failures, durations per host and project'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a export -d 'print every stored event as JSON lines'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a relay -d 'the per-shell relay ferry init starts'
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a transcript -d 'print an agent session transcript as ferryd archived it'

# Every command.
complete -c ferry -l help -d 'explain the command'
complete -c ferry -l version -d 'print the version'
complete -c ferry -n "__fish_seen_subcommand_from $global_commands" -l socket -r -F -d 'ferryd socket (env FERRY_SOCKET)'
complete -c ferry -n "__fish_seen_subcommand_from $global_commands" -l state-dir -r -a '(__fish_complete_directories)' -d 'state directory (env FERRY_STATE_DIR)'
complete -c ferry -n "__fish_seen_subcommand_from $global_commands" -l config -r -F -d 'config file (env FERRY_CONFIG)'

# emit
complete -c ferry -n "__fish_seen_subcommand_from emit" -l source -x -a "$sources" -d 'who sends it'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l kind -x -d 'the event name'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l session -x -d 'session id'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l cwd -x -a '(__fish_complete_directories)' -d 'working directory'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l data -x -d 'the payload, a JSON value'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l stdin -d 'read the payload from stdin'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l argv-json -x -d 'the payload as an argument (Codex notify)'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l durable -d 'wait until the event is on disk'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l ephemeral -d 'for live tails only: not journaled, never spooled'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l timeout-ms -x -d 'budget for connect, send and ack'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l max-event-bytes -x -d 'cut larger payloads'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l strict -d 'exit 1 when the event was not acked'
complete -c ferry -n "__fish_seen_subcommand_from emit" -l print-ack -d 'print the assigned seq'

# status
complete -c ferry -n "__fish_seen_subcommand_from status" -l json -d 'print the status as JSON'
complete -c ferry -n "__fish_seen_subcommand_from status" -l ack-lost -d 'acknowledge the events lost so far'
complete -c ferry -n "__fish_seen_subcommand_from status" -l timeout -x -d 'how long to wait for ferryd (500ms, 2s)'
complete -c ferry -n "__fish_seen_subcommand_from status" -l timeout-ms -x -d 'how long to wait for ferryd'

# init, completions
complete -c ferry -n "__fish_seen_subcommand_from init completions; and not __fish_seen_subcommand_from bash zsh fish" -a 'bash zsh fish' -d shell

# hooks
complete -c ferry -n "__fish_seen_subcommand_from hooks; and not __fish_seen_subcommand_from install uninstall" -a 'install uninstall'
complete -c ferry -n "__fish_seen_subcommand_from hooks; and __fish_seen_subcommand_from install uninstall; and not __fish_seen_subcommand_from claude-code codex cursor gemini copilot cline windsurf opencode" -a 'claude-code codex cursor gemini copilot cline windsurf opencode' -d tool
complete -c ferry -n "__fish_seen_subcommand_from hooks" -l dry-run -d 'print the diff only; write nothing'
complete -c ferry -n "__fish_seen_subcommand_from hooks" -l scope -x -a 'user project' -d 'user (home) or project (current directory)'

# service
complete -c ferry -n "__fish_seen_subcommand_from service; and not __fish_seen_subcommand_from install uninstall" -a 'install uninstall'
complete -c ferry -n "__fish_seen_subcommand_from service" -l dry-run -d 'print what would be done; change nothing'
complete -c ferry -n "__fish_seen_subcommand_from service" -l ferryd -r -F -d 'the ferryd for ExecStart='

# query, sessions
complete -c ferry -n "__fish_seen_subcommand_from query sessions" -l json -d 'one JSON object per row'
complete -c ferry -n "__fish_seen_subcommand_from query sessions" -l limit -x -d 'at most N rows'
complete -c ferry -n "__fish_seen_subcommand_from query sessions" -l timeout -x -d 'time limit (500ms, 30s, 5m)'
complete -c ferry -n "__fish_seen_subcommand_from query sessions" -l timeout-ms -x -d 'time limit in milliseconds'
complete -c ferry -n "__fish_seen_subcommand_from sessions" -l source -x -a "$sources" -d 'only sessions from this source'
complete -c ferry -n "__fish_seen_subcommand_from sessions" -l since -x -d 'started within (90s, 30m, 12h, 7d)'

# tail
complete -c ferry -n "__fish_seen_subcommand_from tail" -s f -l follow -d 'keep printing new events'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l from -x -d 'start at this seq'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l last -x -d 'the last N events'
complete -c ferry -n "__fish_seen_subcommand_from tail" -s n -l lines -x -d 'the last N events'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l since -x -d 'events since this time'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l until -x -d 'events until this time'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l source -x -a "$sources" -d 'only events from this source'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l kind -x -d 'only events of this kind'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l session -x -d 'only events of this session'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l cwd -x -a '(__fish_complete_directories)' -d 'only events run in this directory'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l exit -x -d 'only commands that exited with N'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l utc -d 'print times in UTC'
complete -c ferry -n "__fish_seen_subcommand_from tail" -s o -l output -x -a 'short json cat' -d 'output format'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l color -x -a 'auto always never' -d 'colour the output'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l json -d 'one JSON object per line'
complete -c ferry -n "__fish_seen_subcommand_from tail" -l timeout -x -d 'wait for each answer (10s)'

# flush
complete -c ferry -n "__fish_seen_subcommand_from flush" -l sink -x -d 'only this sink'
complete -c ferry -n "__fish_seen_subcommand_from flush" -l wait -d 'return once the sinks delivered everything'
complete -c ferry -n "__fish_seen_subcommand_from flush" -l timeout -x -d 'with --wait, give up after this long'

# deadletter
complete -c ferry -n "__fish_seen_subcommand_from deadletter; and not __fish_seen_subcommand_from list replay purge" -a 'list replay purge'
complete -c ferry -n "__fish_seen_subcommand_from deadletter" -l sink -x -d 'only this sink'
complete -c ferry -n "__fish_seen_subcommand_from deadletter" -l json -d 'print as JSON (list)'
complete -c ferry -n "__fish_seen_subcommand_from deadletter" -l timeout -x -d 'wait for the answer (10s)'

# doctor
complete -c ferry -n "__fish_seen_subcommand_from doctor" -l json -d 'print the checks as JSON'
complete -c ferry -n "__fish_seen_subcommand_from doctor" -l timeout -x -d 'wait for each ferryd answer (2s)'

# search
complete -c ferry -n "not __fish_seen_subcommand_from $commands" -a search -d 'full-text search of prompts, tool calls, output and shell commands'
complete -c ferry -n "__fish_seen_subcommand_from search" -l source -x -a "$sources" -d 'only hits from this source'
complete -c ferry -n "__fish_seen_subcommand_from search" -l since -x -d 'only events since WHEN (1h, 2026-12-04T10:00, today)'
complete -c ferry -n "__fish_seen_subcommand_from search" -l session -x -d 'only the session whose id starts with PREFIX'
complete -c ferry -n "__fish_seen_subcommand_from search" -l limit -x -d 'at most N hits'
complete -c ferry -n "__fish_seen_subcommand_from search" -l json -d 'one JSON object per hit'
complete -c ferry -n "__fish_seen_subcommand_from search" -l color -x -a "auto always never" -d 'highlight with colour'
complete -c ferry -n "__fish_seen_subcommand_from search" -l timeout -x -d 'time limit (500ms, 30s, 5m)'

# stats, export
complete -c ferry -n "__fish_seen_subcommand_from stats export" -l since -x -d 'only the last DURATION (90s, 30m, 12h, 7d)'
complete -c ferry -n "__fish_seen_subcommand_from stats export" -l source -x -a "$sources" -d 'only this source'
complete -c ferry -n "__fish_seen_subcommand_from stats export" -l timeout -x -d 'time limit (500ms, 30s, 5m)'
complete -c ferry -n "__fish_seen_subcommand_from stats" -l json -d 'one JSON object'
complete -c ferry -n "__fish_seen_subcommand_from export" -l format -x -a jsonl -d 'output format'
# transcript
complete -c ferry -n "__fish_seen_subcommand_from transcript" -l source -x -a "$sources" -d 'only the sessions of this source'
complete -c ferry -n "__fish_seen_subcommand_from transcript" -l timeout -x -d 'time limit for each page (500ms, 30s, 5m)'
complete -c ferry -n "__fish_seen_subcommand_from export" -l session -x -d 'only this session (id or its start)'

# relay (started by the `ferry init` snippets)
complete -c ferry -n "__fish_seen_subcommand_from relay" -l source -x -a 'bash zsh fish' -d 'the shell'
complete -c ferry -n "__fish_seen_subcommand_from relay" -l session -x -d 'the shell session id'
complete -c ferry -n "__fish_seen_subcommand_from relay" -l shell-pid -x -d 'the shell process it serves'
complete -c ferry -n "__fish_seen_subcommand_from relay" -l fifo -r -F -d 'the FIFO to read'
complete -c ferry -n "__fish_seen_subcommand_from relay" -l stdin -d 'send the records on stdin, then exit'
complete -c ferry -n "__fish_seen_subcommand_from relay" -l timeout-ms -x -d 'each event budget for connect, send and ack'
