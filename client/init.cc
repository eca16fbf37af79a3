// `ferry init <shell>`: the snippet records each interactive command once, from the prompt
// hook, and hands it to this shell's `ferry relay` (client/relay.h) so the prompt never forks.
//
// Decisions someone might otherwise "fix":
// - Nothing forks before a command runs. bash takes the start time and history number in PS0
//   (expanded after a line is read, before it runs) by arithmetic assignment, the only kind
//   of assignment that outlives prompt expansion; the cwd is the one the previous prompt saw.
//   zsh and fish use their preexec hooks.
// - Nothing forks after it either. The snippet starts one relay when it loads (one fork per
//   shell) and keeps its FIFO open read-write (fish, which cannot keep an fd, opens it per
//   record after checking the relay is alive). The prompt hook writes one record of raw
//   fields with builtins; the relay escapes them and builds the JSON, so the hook does no
//   per-command escaping. Only when the relay is gone does a prompt fork: to start another
//   on the same FIFO, or, if that fails, a one-shot `ferry relay --stdin` for this command.
// - bash hands over `history 1` itself (printed into the FIFO: a command substitution would
//   fork). When HISTCMD did not grow between the last prompt and PS0, the line was not saved
//   (leading space under ignorespace, a repeat under ignoredups, history off): `history 1`
//   would name the previous command, so nothing is recorded.
// - The guard variable is not exported, so a nested interactive shell loads its own copy
//   with its own session and relay.
// - A line that started a background job ($! / $last_pid moved) and ends in a lone & (zsh:
//   also &! and &|) has no status at the prompt: bash and zsh report 0 and a stale
//   pipestatus, fish the previous command's. The relay records it as "background": true
//   without exit_status and pipestatus. `sleep 1 & wait` moved $! but ran in the foreground.
// - End times are taken in the prompt hook ($EPOCHREALTIME, zsh/datetime's $epochtime,
//   fish's $CMD_DURATION).
// - The session_end record (EXIT trap, zshexit, fish_exit) goes through the relay too, which
//   sends it when the shell process is gone. bash chains an EXIT trap set before the snippet
//   (ours, then theirs, with the same $?); one set after the snippet replaces ours. zsh runs
//   zshexit in subshells as well: those are skipped ($sysparams[pid] != $$).
#include "client/init.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/common.h"
#include "client/self_exe.h"

namespace ferry::client {
namespace {

constexpr const char* kInitHelp =
    "usage: ferry init bash|zsh|fish\n"
    "\n"
    "Prints the shell integration. Add to your shell's startup file:\n"
    "  bash (~/.bashrc):               eval \"$(ferry init bash)\"\n"
    "  zsh  (~/.zshrc):                eval \"$(ferry init zsh)\"\n"
    "  fish (~/.config/fish/config.fish): ferry init fish | source\n"
    "\n"
    "Each interactive command is recorded once (source bash|zsh|fish, kind command) with its\n"
    "text, exit status, pipestatus, start time, duration, cwd and session. A line that ends\n"
    "in & (a background job) is recorded with \"background\": true and no exit status or\n"
    "pipestatus: the job's status is not known when the prompt returns. When the shell exits,\n"
    "an event of kind session_end closes the session (bash: an EXIT trap, which runs before\n"
    "an EXIT trap set earlier; zsh: zshexit; fish: fish_exit).\n"
    "\n"
    "The prompt does not fork: the snippet starts one `ferry relay` per shell and the prompt\n"
    "hook writes each command to its FIFO with shell builtins; the relay sends it to ferryd\n"
    "(or to the spool) like `ferry emit`, and exits with the shell (docs/hooks.md).\n"
    "\n"
    "Secrets: ferryd redacts tokens, passwords, Authorization headers, passwords in URLs and\n"
    "the like before it stores an event ([redact] local = true, the default; see\n"
    "docs/security.md). With `local = false` under [redact] in ferry's config.toml, commands\n"
    "are stored as typed.\n"
    "\n"
    "Not recorded at all: commands that start with a space, and commands matching FERRY_IGNORE\n"
    "(colon-separated glob patterns, case-sensitive, matched against the whole line; unset:\n"
    "the defaults below; empty: none). Defaults:\n"
    "  ";

// Default ignore patterns, colon-separated globs matched against the whole command line.
constexpr const char* kDefaultIgnore =
    "*PASSWORD=*:*PASSWD=*:*TOKEN=*:*SECRET*:*API_KEY*:export *KEY=*:*AWS_SECRET*";

constexpr const char* kBash =
    R"SH(# ferry shell integration for bash (eval "$(ferry init bash)"); docs/hooks.md
if [[ $- == *i* && -z ${__ferry_loaded-} ]]; then
__ferry_loaded=1
__ferry_bin=@FERRY@
__ferry_default_ignore=@IGNORE@
__ferry_nil= __ferry_t= __ferry_cwd=$PWD __ferry_h= __ferry_hprev=$HISTCMD __ferry_cmd= __ferry_bp=
__ferry_bang=${!-} __ferry_relay= __ferry_fd= __ferry_fifo=
__ferry_session="$$-${EPOCHREALTIME//[!0-9]/}"
[[ $__ferry_session == *- ]] && __ferry_session+=$SECONDS$RANDOM
__ferry_tty=$(tty 2>/dev/null) || __ferry_tty=

__ferry_json() {  # $1 -> a JSON string literal in REPLY
  local s=$1 b='\' q='"' i h c
  s=${s//"$b"/"$b$b"}
  s=${s//"$q"/"$b$q"}
  if [[ $s == *[[:cntrl:]]* ]]; then
    s=${s//$'\n'/"${b}n"}
    s=${s//$'\t'/"${b}t"}
    s=${s//$'\r'/"${b}r"}
    for ((i = 1; i < 32; i++)); do
      printf -v h '%02x' "$i"
      printf -v c "\\x$h"
      [[ $s == *"$c"* ]] && s=${s//"$c"/"${b}u00$h"}
    done
  fi
  REPLY="\"$s\""
}

# The payload members that never change, escaped once.
__ferry_json "$__ferry_session"; __ferry_members="\"shell\":\"bash\",\"session\":$REPLY"
__ferry_json "$BASH_VERSION"; __ferry_members+=",\"shell_version\":$REPLY,\"pid\":$$"
__ferry_h=${SHLVL//[!0-9]/}; __ferry_json "$__ferry_tty"
__ferry_members+=",\"shlvl\":${__ferry_h:-0},\"tty\":$REPLY,\"user\":\"${USER//[!A-Za-z0-9._-]/}\""
__ferry_h=

__ferry_relay_start() {  # (re)starts this shell's relay; its FIFO becomes fd $__ferry_fd
  local bin=$__ferry_bin out fd
  [[ -x $bin ]] || bin=ferry
  out=$("$bin" relay --source bash --session "$__ferry_session" --shell-pid $$ \
    ${__ferry_fifo:+--fifo "$__ferry_fifo"} </dev/null 2>/dev/null) || return 1
  [[ $out =~ ^([0-9]+)\ (/.+)$ ]] || return 1
  { exec {fd}<>"${BASH_REMATCH[2]}"; } 2>/dev/null || return 1
  [[ -n $__ferry_fd ]] && exec {__ferry_fd}>&-
  __ferry_relay=${BASH_REMATCH[1]} __ferry_fifo=${BASH_REMATCH[2]} __ferry_fd=$fd
}

__ferry_fields() {  # the command's record (client/relay.h): $1 status, $2 pipestatus, $3 end, $4 $! moved
  local HISTTIMEFORMAT= text=history=
  [[ -n $__ferry_bp ]] && text="command=$__ferry_cmd"
  printf 'kind=command\0cwd=%s\0json=%s\0status=%s\0pipestatus=%s\0start_ns=%s000\0end_ns=%s000\0bg=%s\0ignore=%s\0%s' \
    "$__ferry_cwd" "$__ferry_members" "$1" "$2" "$__ferry_t" "$3" "$4" "${FERRY_IGNORE-$__ferry_default_ignore}" "$text"
  [[ -n $__ferry_bp ]] || builtin history 1
  printf '\0\0'  # three writes in all: the relay reads up to the record's end
}

__ferry_precmd() {
  local __ferry_st=$? __ferry_ps="${PIPESTATUS[*]}" __ferry_bg=
  [[ -n $__ferry_bp ]] && __ferry_ps="${BP_PIPESTATUS[*]}"
  # $! moved: the line started a background job.
  [[ ${!-} == "$__ferry_bang" ]] || __ferry_bg=1 __ferry_bang=${!-}
  # HISTCMD grew since the last prompt iff the line was saved to history; when it was not
  # (a leading space under ignorespace, a repeat under ignoredups, history off), bash
  # cannot tell us the text without a fork here, so nothing is recorded.
  if [[ -n $__ferry_t ]] && { [[ -n $__ferry_bp ]] || (( __ferry_h > __ferry_hprev )); }; then
    local __ferry_end=${EPOCHREALTIME//[!0-9]/}
    set -- "$__ferry_st" "$__ferry_ps" "${__ferry_end:-$((SECONDS * 1000000))}" "$__ferry_bg"
    if { [[ -n $__ferry_fd ]] && kill -0 "$__ferry_relay" 2>/dev/null; } || __ferry_relay_start; then
      __ferry_fields "$@" >&"$__ferry_fd"  # builtins only: no fork
    else
      # No relay could be started: a detached one-shot relay for this command.
      local bin=$__ferry_bin
      [[ -x $bin ]] || bin=ferry
      (__ferry_fields "$@" | "$bin" relay --stdin --source bash --session "$__ferry_session" \
        --shell-pid $$ >/dev/null 2>&1 &)
    fi
    __ferry_t= __ferry_h= __ferry_cmd=
  fi
  __ferry_cwd=$PWD __ferry_hprev=$HISTCMD  # as the next command starts
  return $__ferry_st
}

__ferry_preexec() { __ferry_cmd=$1; }

__ferry_exit() {  # the EXIT trap: the session's end, handed over before the shell goes
  local st=$? bin=$__ferry_bin
  [[ -x $bin ]] || bin=ferry
  if [[ -n $__ferry_fd ]] && kill -0 "$__ferry_relay" 2>/dev/null; then
    printf 'kind=session_end\0cwd=%s\0json=%s,"shell_status":%s\0\0' "$PWD" "$__ferry_members" "$st" >&"$__ferry_fd"
  else
    printf 'kind=session_end\0cwd=%s\0json=%s,"shell_status":%s\0\0' "$PWD" "$__ferry_members" "$st" |
      "$bin" relay --stdin --source bash --session "$__ferry_session" --shell-pid $$ >/dev/null 2>&1
  fi
  return $st
}

# Chains an EXIT trap set before this snippet: ours first, then theirs, which sees the same $?.
__ferry_exit_prev=$(trap -p EXIT)
__ferry_grab_trap() { __ferry_exit_prev=${2-}; }
[[ -n $__ferry_exit_prev ]] && eval "__ferry_grab_trap ${__ferry_exit_prev#trap }"
trap '__ferry_exit; eval "$__ferry_exit_prev"' EXIT
__ferry_relay_start

# PS0 records the start (microseconds) and history number without forking: an arithmetic
# assignment (the only kind that outlives prompt expansion) inside an empty substring.
__ferry_clock='SECONDS * 1000000'
[[ -n ${EPOCHREALTIME-} ]] && __ferry_clock='${EPOCHREALTIME//[!0-9]/}'
[[ ${PS0-} == *__ferry_nil* ]] ||
  PS0="${PS0-}"'${__ferry_nil:$((__ferry_t = '"$__ferry_clock"', __ferry_h = HISTCMD, 0)):0}'
if [[ -n ${bash_preexec_imported-}${__bp_imported-} ]]; then
  __ferry_bp=1
  [[ " ${precmd_functions[*]-} " == *" __ferry_precmd "* ]] || precmd_functions=(__ferry_precmd "${precmd_functions[@]}")
  [[ " ${preexec_functions[*]-} " == *" __ferry_preexec "* ]] || preexec_functions+=(__ferry_preexec)
elif [[ ${PROMPT_COMMAND@a} == *a* ]]; then
  [[ " ${PROMPT_COMMAND[*]} " == *" __ferry_precmd "* ]] || PROMPT_COMMAND=(__ferry_precmd "${PROMPT_COMMAND[@]}")
else
  [[ ${PROMPT_COMMAND-} == *__ferry_precmd* ]] ||
    PROMPT_COMMAND="__ferry_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"
fi
fi
)SH";

constexpr const char* kZsh =
    R"SH(# ferry shell integration for zsh (eval "$(ferry init zsh)"); docs/hooks.md
if [[ -o interactive ]] && (( ! ${+__ferry_loaded} )); then
typeset -g __ferry_loaded=1
zmodload zsh/datetime 2>/dev/null
zmodload zsh/system 2>/dev/null
typeset -g __ferry_bin=@FERRY@
typeset -g __ferry_default_ignore=@IGNORE@
typeset -g __ferry_t= __ferry_cwd= __ferry_h= __ferry_cmd= __ferry_st=0
typeset -ga __ferry_ps
typeset -g __ferry_bang=${!-} __ferry_relay= __ferry_fd= __ferry_fifo=
typeset -g __ferry_session="$$-$(( ${epochtime[1]:-0} * 1000000000 + ${epochtime[2]:-0} ))"

__ferry_json() {  # $1 -> a JSON string literal in REPLY
  emulate -L zsh
  local s=$1 b='\' q='"' i h c
  s=${s//"$b"/"$b$b"}
  s=${s//"$q"/"$b$q"}
  if [[ $s == *[[:cntrl:]]* ]]; then
    s=${s//$'\n'/"${b}n"}
    s=${s//$'\t'/"${b}t"}
    s=${s//$'\r'/"${b}r"}
    for ((i = 1; i < 32; i++)); do
      printf -v h '%02x' $i
      printf -v c "\\x$h"
      [[ $s == *"$c"* ]] && s=${s//"$c"/"${b}u00$h"}
    done
  fi
  REPLY="\"$s\""
}

# The payload members that never change, escaped once.
typeset -g __ferry_members
__ferry_json "$__ferry_session"; __ferry_members="\"shell\":\"zsh\",\"session\":$REPLY"
__ferry_json "$ZSH_VERSION"; __ferry_members+=",\"shell_version\":$REPLY,\"pid\":$$"
__ferry_h=${SHLVL//[^0-9]/}; __ferry_json "${TTY-}"
__ferry_members+=",\"shlvl\":${__ferry_h:-0},\"tty\":$REPLY,\"user\":\"${USER//[^A-Za-z0-9._-]/}\""
__ferry_h=

__ferry_relay_start() {  # (re)starts this shell's relay; its FIFO becomes fd $__ferry_fd
  emulate -L zsh
  local bin=$__ferry_bin out fd
  [[ -x $bin ]] || bin=ferry
  out=$("$bin" relay --source zsh --session "$__ferry_session" --shell-pid $$ \
    ${__ferry_fifo:+--fifo} ${__ferry_fifo:+"$__ferry_fifo"} </dev/null 2>/dev/null) || return 1
  local rpid=${out%% *} fifo=${out#* }
  [[ $rpid == <-> && $fifo == /* ]] || return 1
  if (( ${+builtins[sysopen]} )); then
    sysopen -rw -o cloexec -u fd -- "$fifo" 2>/dev/null || return 1
  else
    { exec {fd}<>"$fifo"; } 2>/dev/null || return 1
  fi
  [[ -n $__ferry_fd ]] && exec {__ferry_fd}>&-
  __ferry_relay=$rpid __ferry_fifo=$fifo __ferry_fd=$fd
}

__ferry_fields() {  # the record __ferry_precmd writes inline: $1 status, $2 pipestatus, $3 end (ns), $4 $! moved
  printf 'kind=command\0cwd=%s\0json=%s\0command=%s\0status=%s\0pipestatus=%s\0start_ns=%s\0end_ns=%s\0bg=%s\0hist_id=%s\0ignore=%s\0\0' \
    "$__ferry_cwd" "$__ferry_members" "$__ferry_cmd" "$1" "$2" "$__ferry_t" "$3" "$4" "${__ferry_h:-0}" \
    "${FERRY_IGNORE-$__ferry_default_ignore}"
}

__ferry_preexec() {
  __ferry_cmd=${1:-$3} __ferry_cwd=$PWD __ferry_h=$HISTCMD
  __ferry_t=$(( ${epochtime[1]:-0} * 1000000000 + ${epochtime[2]:-0} ))
}

__ferry_precmd() {
  __ferry_ps=(${pipestatus[@]}) __ferry_st=$?
  if [[ -n $__ferry_t ]]; then
    local __ferry_end=$(( ${epochtime[1]:-0} * 1000000000 + ${epochtime[2]:-0} )) __ferry_bg=
    # $! moved: the line started a background job.
    [[ ${!-} == "$__ferry_bang" ]] || __ferry_bg=1 __ferry_bang=${!-}
    if { [[ -n $__ferry_fd ]] && kill -0 $__ferry_relay 2>/dev/null } || __ferry_relay_start; then
      # Builtins only, inline: in zsh a function call costs more than this printf.
      printf 'kind=command\0cwd=%s\0json=%s\0command=%s\0status=%s\0pipestatus=%s\0start_ns=%s\0end_ns=%s\0bg=%s\0hist_id=%s\0ignore=%s\0\0' \
        "$__ferry_cwd" "$__ferry_members" "$__ferry_cmd" $__ferry_st "${__ferry_ps[*]}" "$__ferry_t" \
        $__ferry_end "$__ferry_bg" "${__ferry_h:-0}" "${FERRY_IGNORE-$__ferry_default_ignore}" >&$__ferry_fd
    else
      # No relay could be started: a detached one-shot relay for this command.
      local bin=$__ferry_bin
      [[ -x $bin ]] || bin=ferry
      (__ferry_fields $__ferry_st "${__ferry_ps[*]}" $__ferry_end "$__ferry_bg" |
        "$bin" relay --stdin --source zsh --session "$__ferry_session" --shell-pid $$ >/dev/null 2>&1 &!)
    fi
    __ferry_t= __ferry_cwd= __ferry_h= __ferry_cmd=
  fi
  return $__ferry_st
}

__ferry_exit() {  # zshexit: the session's end, handed over before the shell goes
  emulate -L zsh
  # zshexit also runs when a subshell exits: that is not the session's end.
  [[ -z ${sysparams[pid]-} || ${sysparams[pid]} == $$ ]] || return 0
  local bin=$__ferry_bin
  [[ -x $bin ]] || bin=ferry
  if [[ -n $__ferry_fd ]] && kill -0 $__ferry_relay 2>/dev/null; then
    printf 'kind=session_end\0cwd=%s\0json=%s\0\0' "$PWD" "$__ferry_members" >&$__ferry_fd
  else
    printf 'kind=session_end\0cwd=%s\0json=%s\0\0' "$PWD" "$__ferry_members" |
      "$bin" relay --stdin --source zsh --session "$__ferry_session" --shell-pid $$ >/dev/null 2>&1
  fi
}

__ferry_relay_start
autoload -Uz add-zsh-hook
add-zsh-hook preexec __ferry_preexec
add-zsh-hook precmd __ferry_precmd
add-zsh-hook zshexit __ferry_exit
fi
)SH";

constexpr const char* kFish =
    R"SH(# ferry shell integration for fish (ferry init fish | source); docs/hooks.md
if status is-interactive; and not set -q __ferry_loaded
set -g __ferry_loaded 1
set -g __ferry_bin @FERRY@
set -g __ferry_default_ignore @IGNORE@
set -g __ferry_session $fish_pid-(date +%s%N 2>/dev/null)
set -g __ferry_cwd $PWD
set -g __ferry_bang "$last_pid"
set -g __ferry_relay
set -g __ferry_fifo

function __ferry_json -d 'ferry: print argv[1] as a JSON string literal'
    # Most strings need no escaping: one regex test instead of the replace pipeline.
    if not string match -qr -- '[\\\\"\x00-\x1f]' $argv[1]
        printf '"%s"\n' $argv[1]
        return
    end
    set -l s (string replace -a -- '\\' '\\\\' $argv[1] | string replace -a -- '"' '\\"' | string replace -a -- \t '\\t' | string replace -a -- \r '\\r')
    set s (string join -- '\\n' $s)
    if string match -qr -- '[\x01-\x08\x0b-\x1f]' $s
        for i in 1 2 3 4 5 6 7 8 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
            set -l h (printf '%02x' $i)
            set s (string replace -a -- (printf "\\x$h") (printf '\\\\u00%s' $h) $s)
        end
    end
    printf '"%s"\n' $s
end

# The payload members that never change, escaped once.
set -g __ferry_members "\"shell\":\"fish\",\"shell_version\":"(__ferry_json $version)",\"session\":"(__ferry_json $__ferry_session)",\"pid\":$fish_pid,\"shlvl\":"(string replace -ra '[^0-9]' '' -- $SHLVL)",\"tty\":"(__ferry_json (tty 2>/dev/null))",\"user\":"(__ferry_json "$USER")

function __ferry_relay_start -d 'ferry: (re)start this shell\'s relay'
    set -l bin $__ferry_bin
    test -x "$bin"; or set bin ferry
    set -l fifo
    test -n "$__ferry_fifo"; and set fifo --fifo $__ferry_fifo
    set -l out (command $bin relay --source fish --session $__ferry_session --shell-pid $fish_pid $fifo </dev/null 2>/dev/null)
    or return 1
    set -l w (string split -m1 ' ' -- "$out")
    string match -qr '^[0-9]+$' -- "$w[1]"; and string match -q '/*' -- "$w[2]"; or return 1
    set -g __ferry_relay $w[1]
    set -g __ferry_fifo $w[2]
end

function __ferry_send -d 'ferry: hand one record (client/relay.h) to the relay'
    # Is the relay reading its FIFO? (builtins only: one test)
    if test -n "$__ferry_relay" -a -d /proc/$__ferry_relay -a -p "$__ferry_fifo"; or __ferry_relay_start
        # A builtin writing to the FIFO the relay holds open: no fork.
        printf '%s\0' $argv '' >>$__ferry_fifo
    else
        set -l bin $__ferry_bin
        test -x "$bin"; or set bin ferry
        command -q $bin; or return
        printf '%s\0' $argv '' | command $bin relay --stdin --source fish --session $__ferry_session --shell-pid $fish_pid >/dev/null 2>/dev/null &
        disown 2>/dev/null
    end
end

function __ferry_preexec --on-event fish_preexec
    set -g __ferry_cwd $PWD
end

function __ferry_postexec --on-event fish_postexec
    set -l st $status $pipestatus
    set -l dur $CMD_DURATION
    # $last_pid moved: the line started a background job, whose status is not known yet
    # ($status is still the previous command's).
    set -l bg
    test "$last_pid" != "$__ferry_bang"; and set bg 1
    set -g __ferry_bang "$last_pid"
    test -n "$argv[1]"; or return
    set -l pats $__ferry_default_ignore
    set -q FERRY_IGNORE; and set pats $FERRY_IGNORE
    set -l rec kind=command cwd=$__ferry_cwd json=$__ferry_members command=$argv[1] status=$st[1] "pipestatus=$st[2..-1]" "duration_ms=$dur" "bg=$bg" "ignore="(string join : -- $pats) ''
    # Inline, builtins only (a fish function call costs more than the write).
    if test -n "$__ferry_relay" -a -d /proc/$__ferry_relay -a -p "$__ferry_fifo"
        printf '%s\0' $rec >>$__ferry_fifo
    else
        __ferry_send $rec[1..-2]
    end
end

function __ferry_exit --on-event fish_exit -d 'ferry: the session\'s end, handed over before the shell goes'
    __ferry_send kind=session_end cwd=$PWD json=$__ferry_members
end

__ferry_relay_start
end
)SH";

// Single-quotes `text` for bash and zsh.
std::string PosixQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Single-quotes `text` for fish, where \ and ' are escaped inside single quotes.
std::string FishQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string Fill(std::string_view templ, const std::string& bin, const std::string& ignore) {
  std::string out(templ);
  for (auto [key, value] :
       {std::pair<std::string_view, const std::string&>{"@FERRY@", bin}, {"@IGNORE@", ignore}}) {
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + value.size()))
      out.replace(at, key.size(), value);
  }
  return out;
}

}  // namespace

int RunInit(int argc, char** argv) {
  InitArgs a;
  std::string error;
  switch (ParseInitArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kInitHelp, stdout);
      std::fputs(kDefaultIgnore, stdout);
      std::fputs("\n", stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string& shell = a.shell;
  const std::string bin = SelfExePath();
  std::string out;
  if (shell == "bash") {
    out = Fill(kBash, PosixQuote(bin), PosixQuote(kDefaultIgnore));
  } else if (shell == "zsh") {
    out = Fill(kZsh, PosixQuote(bin), PosixQuote(kDefaultIgnore));
  } else if (shell == "fish") {
    out = Fill(kFish, FishQuote(bin), FishQuote(kDefaultIgnore));
  } else {
    return kUsageExitCode;  // ParseInitArgs admits only these three
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace ferry::client
