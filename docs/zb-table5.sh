#!/bin/sh
# zb-table5.sh [BUBBLESIM] - the per-device-span bubble of zb-h1, zb-h2 and
# zb-auto at limits P and 2P with the zero-bubble paper's Table 9 costs, one
# row per setting: docs/schedules.md's comparison with the paper's Table 5.
# Columns: model P M zb-h1 zb-h2 zb-auto(limit P) zb-auto(limit 2P).
set -eu
bin=${1:-bubblesim}
cfg=$(dirname "$0")/../configs/zb-auto-paper.json
# model P M TF TB TW Tcomm kept: Table 9; kept = 32h / (34h + 5as), Tables 1, 3.
while read -r model p m f b w c k; do
    printf '%s %s %s' "$model" "$p" "$m"
    for s in zb-h1:$p zb-h2:$((2 * p)) zb-auto:$p zb-auto:$((2 * p)); do
        "$bin" run "$cfg" --json --set "schedule=\"${s%%:*}\"" --set stages="$p" \
            --set microbatches="$m" --set costs.forward="$f" --set costs.backward="$b" \
            --set costs.weight="$w" --set network.latency="$c" --set memory.kept_fraction="$k" \
            --set memory.limit_activations="${s##*:}" |
            sed -n 's/.*"span_bubble_ratio": *\([-0-9.e]*\).*/\1/p' | head -n 1 |
            awk '{printf " %.4f", $1}'
    done
    echo
done <<'T'
1.5B 8 24 18.522 18.086 9.337 0.601 0.3664
1.5B 8 32 18.513 18.086 9.331 0.626 0.3664
1.5B 8 64 18.546 18.097 9.321 0.762 0.3664
6.2B 8 24 29.718 29.444 19.927 0.527 0.4324
6.2B 8 32 29.802 29.428 19.530 0.577 0.4324
6.2B 8 64 29.935 29.621 19.388 0.535 0.4324
14.6B 16 48 11.347 11.248 8.132 0.377 0.4324
14.6B 16 64 11.307 11.254 8.101 0.379 0.4324
14.6B 16 128 11.325 11.308 8.109 0.378 0.4324
28.3B 32 96 10.419 10.207 7.715 0.408 0.4324
28.3B 32 128 10.408 10.204 7.703 0.408 0.4324
28.3B 32 256 10.402 10.248 7.698 0.460 0.4324
T
