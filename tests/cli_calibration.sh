#!/bin/bash
# cli_calibration.sh BUBBLESIM SOURCE_DIR - the figures of docs/model.md's
# sections "Against Megatron-LM's measurements" and "Calibrating the per-op
# overhead" are what tools/sc21-table.sh, tools/zb-throughput.sh,
# tools/zb-calibrate.sh and tools/zb-op-costs.sh print now: every table row
# is rebuilt from the scripts' output and must occur in the document as it
# stands. Also: the scripts refuse a bad grid point (exit 2).
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
doc=$src/docs/model.md
tools=$src/tools

# in_doc DESCRIPTION < LINES : every line must be a line of the document
# (minus signs as the document writes them). Not at the end of a pipe: the
# tally must stay in this shell.
in_doc() {
    local line n=0
    while IFS= read -r line; do
        n=$((n + 1))
        checks=$((checks + 1))
        grep -qxF -- "$line" "$doc" || fail "$1: docs/model.md lacks the line: $line"
    done
    [ "$n" -gt 0 ] || fail "$1: no output to compare"
}
minus() { sed 's/-\([0-9]\)/−\1/g'; }

# The 36 rows at 0, 0.6 and 1.0 ms per op, one table line per model and M.
for o in 0 0.6 1.0; do
    sh "$tools/zb-throughput.sh" "$bin" "$o" >"$tmp/z$o" || fail "zb-throughput.sh $o failed"
done
[ "$(wc -l <"$tmp/z0")" -eq 36 ] || fail "zb-throughput.sh: expected 36 rows"
paste -d' ' "$tmp/z0" "$tmp/z0.6" "$tmp/z1.0" |
    awk '{k = $1 " " $2 " " $3
          if (k != last) { if (last != "") print line " |"; line = "| " $1 " | " $2 " | " $3; last = k }
          line = line " | " $5 " | " $6 " | " $7 " / " $14 " / " $21}
         END {print line " |"}' | minus >"$tmp/rows"
in_doc "zero-bubble rows" <"$tmp/rows"

# The fit table and the per-schedule ranges.
sh "$tools/zb-calibrate.sh" "$bin" overhead:0 overhead:0.6 overhead:1.0 fraction:0.045 \
    fraction:0.075 >"$tmp/fit" || fail "zb-calibrate.sh failed"
awk 'NF == 6 && ($1 == "overhead" || $1 == "fraction") {
         label = $1 == "overhead" ? ($2 == 0 ? "none | –" : sprintf("%s ms per op | fit %s", $2, $2 == 0.6 ? "worst" : "median")) \
                                  : sprintf("%.1f %% of each op | fit %s", 100 * $2, $2 == 0.045 ? "worst" : "median")
         printf "| %s | %s %% | %s %% | %s %% | %s %% |\n", label, $3, $4, $5, $6 }' "$tmp/fit" >"$tmp/fitrows"
in_doc "fit table" <"$tmp/fitrows"
sed -n 's/^overhead \([0-9.]*\) ms, all 36 rows: median \([0-9.]*\) worst \([0-9.]*\); 1F1B \(.*\) ZB-1p \(.*\) ZB-2p \(.*\)$/| \1 | \2 % | \3 % | \4 % | \5 % | \6 % |/p' \
    "$tmp/fit" | sed 's/^| \([0-9.]*\) |/| \1 ms |/; s/^| 0 ms |/| 0 |/' | minus >"$tmp/ranges"
in_doc "per-schedule ranges" <"$tmp/ranges"

# Table 9 against the FLOP count: the figures the text quotes.
sh "$tools/zb-op-costs.sh" >"$tmp/ops" || fail "zb-op-costs.sh failed"
for want in "W: efficiency 0.831, overhead 0.509 ms per op" "FBW: efficiency 0.622, overhead 0.398 ms per op" \
    "W without 6.2B: efficiency 1.010, overhead 1.894 ms; -11.7% -9.9% -9.3%"; do
    checks=$((checks + 1))
    grep -qF -- "$want" "$tmp/ops" || fail "zb-op-costs.sh lacks: $want"
done
for want in "efficiency 0.622 and 0.40 ms per op" "W alone fits efficiency 0.831 + 0.51 ms"; do
    checks=$((checks + 1))
    tr '\n' ' ' <"$doc" | sed 's/  */ /g' | grep -qF -- "$want" || fail "docs/model.md lacks: $want"
done

# Megatron SC21: every row of the table (the memory column is run's, not
# the script's).
sh "$tools/sc21-table.sh" "$bin" >"$tmp/sc21" || fail "sc21-table.sh failed"
[ "$(wc -l <"$tmp/sc21")" -eq 12 ] || fail "sc21-table.sh: expected 12 rows"
awk '{s = $6 == "1f1b" ? "1f1b" : "interleaved V = 2"
      printf "| %s | %s | %s | %s | %s | %s | %s s | %s | %s | %s %% |\n", $1, $2, $3, $4, $5, s, $7, $8, $9, $10}' \
    "$tmp/sc21" | minus | while IFS= read -r prefix; do
    grep -qF -- "$prefix" "$doc" && echo ok || echo "FAIL: docs/model.md lacks the SC21 row: $prefix"
done >"$tmp/sc21.check"
checks=$((checks + 12))
grep '^FAIL' "$tmp/sc21.check" >&2 && fail "SC21 table"
[ "$(grep -c '^ok' "$tmp/sc21.check")" -eq 12 ] || fail "SC21 table: not 12 rows found"

# Bad arguments: exit 2 naming the argument, nothing on stdout, and no
# argument reaches awk or --set as code.
expect 2 "bogus:1: expected overhead:MS or fraction:F" sh "$tools/zb-calibrate.sh" "$bin" bogus:1
expect 2 "OVERHEAD_MS = 'abc': expected a number" sh "$tools/zb-calibrate.sh" "$bin" overhead:abc
for bad in "" x -1 1e999 nan '1;system("touch '"$tmp"'/pwned")' 1,2; do
    expect 2 "OVERHEAD_MS = '$bad': expected a number" sh "$tools/zb-throughput.sh" "$bin" "$bad"
    expect 2 "FRACTION = '$bad': expected a number" sh "$tools/zb-throughput.sh" "$bin" 0 "$bad"
    expect 2 "OVERHEAD_MS = '$bad': expected a number" sh "$tools/sc21-table.sh" "$bin" "$bad"
done
expect 2 "BLOCKING = 'yes': expected true or false" sh "$tools/zb-throughput.sh" "$bin" 0 0 yes
checks=$((checks + 2))
[ -z "$(sh "$tools/zb-throughput.sh" "$bin" x 2>/dev/null)" ] || fail "zb-throughput.sh x: wrote to stdout"
[ ! -e "$tmp/pwned" ] || fail "an argument ran as awk code"

finish cli_calibration
