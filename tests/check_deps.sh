#!/bin/bash
# check_deps.sh BUILD_DIR - the layers of docs/architecture.md, checked on
# the compiled objects: which file's code calls which (a symbol one object
# needs and another defines). Fails when
#   - two or more files depend on each other in a circle (tsort finds a loop),
#   - the library (sim/) calls into gpu/ or cli/, or gpu/ calls into cli/.
# Schedules register through the table in sim/schedule.c and call shared
# helpers back, a circle by design: the schedule_*.c files count as one
# module with schedule.c. Skips (77) without nm or tsort.
set -u
build=$1
command -v nm >/dev/null && command -v tsort >/dev/null || exit 77
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

module() { # object path -> layer/file
    local o=${1#"$build"/} layer
    case $o in
    sim/*) layer=sim ;;
    gpu/*) layer=gpu ;;
    cli/*) layer=cli ;;
    *) return 1 ;;
    esac
    local f=${o##*/}
    f=${f%.o}
    f=${f%.c}
    f=${f%.cu}
    case $layer/$f in sim/schedule_*) f=schedule ;; esac
    echo "$layer/$f"
}

# The objects of the current sources (compile_commands.json), not stale ones
# a renamed file left in the build directory.
objects=$(sed -n 's/.*"output": "\([^"]*\.o\)".*/\1/p' "$build/compile_commands.json" 2>/dev/null |
    grep -E '^(sim|gpu|cli)/' | sort -u | sed "s|^|$build/|")
[ -n "$objects" ] || { echo "no objects under $build"; exit 1; }
for o in $objects; do
    m=$(module "$o") || continue
    nm --defined-only -g "$o" 2>/dev/null | awk -v m="$m" 'NF == 3 { print $3, m }' >>"$tmp/defs"
    nm -u "$o" 2>/dev/null | awk -v m="$m" '{ print $NF, m }' >>"$tmp/uses"
done
sort -u "$tmp/defs" -o "$tmp/defs"
# Edges: user module -> defining module, both in our tree, not to itself.
awk 'NR == FNR { def[$1] = $2; next } ($1 in def) && def[$1] != $2 { print $2, def[$1] }' \
    "$tmp/defs" "$tmp/uses" | sort -u >"$tmp/edges"
fails=0
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loops"; then
    echo "FAIL: files that depend on each other in a circle:"
    cat "$tmp/loops"
    fails=$((fails + 1))
fi
while read -r from to; do
    case "${from%%/*}>${to%%/*}" in
    "sim>gpu" | "sim>cli" | "gpu>cli")
        echo "FAIL: $from calls into $to (a lower layer may not call a higher one)"
        fails=$((fails + 1))
        ;;
    esac
done <"$tmp/edges"
echo "check_deps: $(wc -l <"$tmp/edges") dependencies between files, $fails failed"
[ -n "${VERBOSE:-}" ] && cat "$tmp/edges"
[ "$fails" -eq 0 ]
