#!/bin/bash
# cli_help.sh BUBBLESIM SOURCE_DIR - the help a user reads: every command of
# the overview has `CMD --help` and `help CMD` (the same text, exit 0, nothing
# run); each names every option its source file cli/CMD.c parses; the
# overview shows every command's synopsis; `help config` lists every key the
# docs' key tables give; bad topics exit 2.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

"$bin" --help >"$tmp/usage.txt" 2>&1 || fail "--help exits non-zero"
commands=$(sed -n '/^commands:/,/^$/p' "$tmp/usage.txt" | awk 'NF > 1 { print $1 }')
[ "$(echo "$commands" | wc -w)" -ge 6 ] || fail "overview lists only: $commands"
for c in run sweep export tune verify demo; do
    echo "$commands" | grep -qx "$c" || fail "overview lacks the command $c"
done

for c in $commands; do
    checks=$((checks + 1))
    "$bin" "$c" --help >"$tmp/$c.help" 2>"$tmp/$c.err" || fail "$c --help exits $?"
    [ -s "$tmp/$c.err" ] && fail "$c --help writes to stderr: $(cat "$tmp/$c.err")"
    "$bin" help "$c" >"$tmp/$c.help2" 2>&1 || fail "help $c exits $?"
    cmp -s "$tmp/$c.help" "$tmp/$c.help2" || fail "help $c differs from $c --help"
    grep -q "bubblesim $c" "$tmp/$c.help" || fail "$c --help lacks its synopsis"
    # Every option literal the command's source compares against.
    if [ -f "$src/cli/$c.c" ]; then
        opts=$(grep -o '"-[-a-z][-a-z]*"' "$src/cli/$c.c" | tr -d '"' | sort -u)
        [ -n "$opts" ] || [ "$c" = demo ] || [ "$c" = help ] || fail "no options found in cli/$c.c"
        for o in $opts; do
            checks=$((checks + 1))
            grep -qe "$o\b" "$tmp/$c.help" || fail "$c --help does not mention $o (parsed in cli/$c.c)"
            grep -qe "$o\b" "$tmp/usage.txt" || fail "bubblesim --help does not mention $c's $o"
        done
    fi
done

# --help anywhere among the options wins, and runs nothing.
expect 0 "bubblesim run CONFIG" "$bin" run /nonexistent.json --json --help
expect 0 "bubblesim tune CONFIG" "$bin" tune -h
checks=$((checks + 1))
"$bin" sweep "$src/configs/sweep-bubble-vs-m.json" --out "$tmp/notmade" --help >/dev/null ||
    fail "sweep --help failed"
[ -e "$tmp/notmade" ] && fail "sweep --help created its --out directory"

# Topics.
expect 2 "unknown topic \"nope\"" "$bin" help nope
expect 2 "one topic expected" "$bin" help run sweep
expect 2 "unknown command" "$bin" nope --help
expect 2 "takes no arguments" "$bin" demo extra
"$bin" help >"$tmp/help0.txt" 2>&1 || fail "help exits non-zero"
cmp -s "$tmp/help0.txt" "$tmp/usage.txt" || fail "bubblesim help differs from --help"

# help config: every key of the docs' key tables (first column of a table
# whose header starts with "| key |"), with the tune keys under "tune.".
"$bin" help config >"$tmp/keys.txt" 2>&1 || fail "help config exits non-zero"
for doc in config model tune; do
    keys=$(awk '/^\| key \|/ { t = 1; next } !/^\|/ { t = 0 } t && /^\| `/ {
                 split($0, c, "`"); print c[2] }' "$src/docs/$doc.md" | sort -u)
    [ -n "$keys" ] || fail "no key table found in docs/$doc.md"
    for k in $keys; do
        [ "$doc" = tune ] && k="tune.$k"
        checks=$((checks + 1))
        grep -q "^  $k " "$tmp/keys.txt" || fail "help config lacks $k (docs/$doc.md)"
    done
done
# ... and nothing without a description.
checks=$((checks + 1))
awk 'NR > 3 && /^  [a-z]/ { getline d; if (d !~ /^ +[^ ]/ || d ~ /\(null\)/) { print; bad = 1 } } END { exit bad }' \
    "$tmp/keys.txt" || fail "help config has a key without a description"

# The demo shows every built-in schedule the overview lists.
"$bin" >"$tmp/demo.txt" 2>&1 || fail "the demo exits non-zero"
"$bin" demo >"$tmp/demo2.txt" 2>&1 || fail "bubblesim demo exits non-zero"
cmp -s "$tmp/demo.txt" "$tmp/demo2.txt" || fail "bubblesim demo differs from bubblesim"
for s in $(sed -n 's/^schedules: //p' "$tmp/usage.txt" | tr -d ','); do
    checks=$((checks + 1))
    grep -q "^$s " "$tmp/demo.txt" || fail "the demo does not show the schedule $s"
done

finish cli_help
