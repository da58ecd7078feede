# cli_lib.sh - helpers the shell tests source: a scratch folder removed on
# exit, failure counting, and `expect`. A test sets bin before sourcing.

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
checks=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE NEEDLE CMD... : runs CMD, checks the exit code and that NEEDLE
# occurs in its stdout+stderr.
expect() {
    local code=$1 needle=$2
    shift 2
    checks=$((checks + 1))
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    [ "$rc" -eq "$code" ] || { fail "$* -> exit $rc, want $code"$'\n'"$out"; return; }
    case "$out" in
    *"$needle"*) ;;
    *) fail "$* -> output lacks \"$needle\""$'\n'"$out" ;;
    esac
}

# check DESCRIPTION CMD... : CMD must succeed.
check() {
    local what=$1
    shift
    checks=$((checks + 1))
    "$@" || fail "$what"
}

# cfg NAME TEXT : writes a config file into the scratch folder.
cfg() { printf '%s\n' "$2" >"$tmp/$1"; }

# finish NAME : prints the tally and sets the exit status.
finish() {
    echo "$1: $checks checks, $fails failed"
    [ "$fails" -eq 0 ]
}
