# bash completion for ferry. Printed by `ferry completions bash`; installed by `cmake --install`
# as share/bash-completion/completions/ferry (loaded on demand by bash-completion). Without
# bash-completion: add `eval "$(ferry completions bash)"` to ~/.bashrc.

_ferry() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="emit status init hooks service query sessions tail flush deadletter doctor
    completions stats export relay search transcript"
  local global="--socket --state-dir --config --help --version"
  COMPREPLY=()
  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return 0
  fi
  local cmd=${COMP_WORDS[1]}

  # The value of the option before the cursor.
  case $prev in
    --socket | --config | --ferryd)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    --fifo)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    --shell-pid) return 0 ;;
    --state-dir | --cwd)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -d -- "$cur"))
      return 0
      ;;
    --scope)
      COMPREPLY=($(compgen -W "user project" -- "$cur"))
      return 0
      ;;
    -o | --output)
      COMPREPLY=($(compgen -W "short json cat" -- "$cur"))
      return 0
      ;;
    --format)
      COMPREPLY=($(compgen -W "jsonl" -- "$cur"))
      return 0
      ;;
    --color)
      COMPREPLY=($(compgen -W "auto always never" -- "$cur"))
      return 0
      ;;
    --source)
      COMPREPLY=($(compgen -W "claude-code codex cursor gemini copilot cline windsurf opencode bash zsh fish" -- "$cur"))
      return 0
      ;;
    --kind | --session | --data | --argv-json | --timeout-ms | --max-event-bytes | --limit | \
      --timeout | --since | --until | --from | --last | -n | --lines | --exit | --sink)
      return 0 # a value of the user's own
      ;;
  esac

  # The words already given after the command (to offer each positional word once).
  local given=" ${COMP_WORDS[*]:2:COMP_CWORD-2} "
  local opts="" words=""
  case $cmd in
    emit)
      opts="--source --kind --session --cwd --data --stdin --argv-json --durable --ephemeral --timeout-ms
        --max-event-bytes --strict --print-ack $global"
      ;;
    status) opts="--json --ack-lost --timeout --timeout-ms $global" ;;
    init | completions)
      opts="--help --version"
      [[ $given == *" bash "* || $given == *" zsh "* || $given == *" fish "* ]] ||
        words="bash zsh fish"
      ;;
    hooks)
      opts="--dry-run --scope --help --version"
      if [[ $given != *" install "* && $given != *" uninstall "* ]]; then
        words="install uninstall"
      elif [[ $given != *" claude-code "* && $given != *" codex "* && $given != *" cursor "* &&
        $given != *" gemini "* && $given != *" copilot "* && $given != *" cline "* &&
        $given != *" windsurf "* && $given != *" opencode "* ]]; then
        words="claude-code codex cursor gemini copilot cline windsurf opencode"
      fi
      ;;
    service)
      opts="--dry-run --ferryd --help --version"
      [[ $given == *" install "* || $given == *" uninstall "* ]] || words="install uninstall"
      ;;
    query) opts="--json --limit --timeout --timeout-ms $global" ;;
    sessions) opts="--source --since --limit --json --timeout --timeout-ms $global" ;;
    stats) opts="--since --source --json --timeout $global" ;;
    export) opts="--format --since --session --source --timeout $global" ;;
    search) opts="--source --since --session --limit --json --color --timeout $global" ;;
    transcript) opts="--source --timeout $global" ;;
    tail)
      opts="-f --follow --from --last -n --lines --since --until --source --kind --session --cwd
        --exit --utc -o --output --color --json --timeout $global"
      ;;
    flush) opts="--sink --wait --timeout $global" ;;
    deadletter)
      opts="--sink --json --timeout $global"
      [[ $given == *" list "* || $given == *" replay "* || $given == *" purge "* ]] ||
        words="list replay purge"
      ;;
    doctor) opts="--json --timeout $global" ;;
    relay) opts="--source --session --shell-pid --fifo --stdin --timeout-ms $global" ;;
    *) return 0 ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  return 0
}
complete -F _ferry ferry
