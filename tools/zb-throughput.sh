#!/bin/sh
# zb-throughput.sh [BUBBLESIM] [OVERHEAD_MS] [FRACTION] [BLOCKING] - the zero-bubble
# paper's measured throughput (Qi et al., ICLR 2024, Table 4, p. 7: samples
# per GPU per second of 1F1B, ZB-1p, ZB-2p) beside bubblesim's prediction
# from the paper's profiled costs (Table 9, p. 16), with costs.overhead =
# OVERHEAD_MS added to every op, every op cost scaled by 1 + FRACTION and
# network.blocking = BLOCKING (true or false, default false).
# One line per setting and schedule:
#   model P M schedule measured predicted error(%)
# Predicted = M * b / (makespan in s) / P (one pipeline, no data parallelism:
# the paper's Table 3 runs P GPUs). ZB-1p and ZB-2p are zb-auto with the
# activation limit P and 2P, as docs/zb-table5.sh. 1F1B-I is left out: the
# paper makes every layer a chunk (22 layers on 8 stages for 1.5B), which
# Table 9's per-stage costs do not describe.
set -eu
bin=${1:-bubblesim}
ovh=${2-0}
frac=${3-0}
blocking=${4-false}
# The arguments reach awk and --set: numbers and true/false only.
number() { echo "$2" | grep -Eqx '[0-9]{1,6}(\.[0-9]{1,6})?' ||
    { echo "zb-throughput.sh: $1 = '$2': expected a number such as 0.5" >&2; exit 2; }; }
number OVERHEAD_MS "$ovh"
number FRACTION "$frac"
case $blocking in
true | false) ;;
*) echo "zb-throughput.sh: BLOCKING = '$blocking': expected true or false" >&2; exit 2 ;;
esac
cfg=$(dirname "$0")/../configs/zb-auto-paper.json
# model P M b TF TB TW Tcomm kept 1F1B ZB-1p ZB-2p
#   b: Table 3; TF..Tcomm: Table 9; kept = 32h / (34h + 5as) (Tables 1, 3);
#   the last three: Table 4 (samples per GPU per second, measured).
while read -r model p m b f bw w c k m1 mz1 mz2; do
    sf=$(awk -v c="$f" -v x="$frac" 'BEGIN{printf "%.6f", c * (1 + x)}')
    sb=$(awk -v c="$bw" -v x="$frac" 'BEGIN{printf "%.6f", c * (1 + x)}')
    sw=$(awk -v c="$w" -v x="$frac" 'BEGIN{printf "%.6f", c * (1 + x)}')
    for s in 1f1b:$p:$m1 zb-auto:$p:$mz1 zb-auto:$((2 * p)):$mz2; do
        name=${s%%:*}
        rest=${s#*:}
        limit=${rest%%:*}
        measured=${rest#*:}
        label=1F1B
        [ "$name" = zb-auto ] && label=ZB-$((limit / p))p
        # Captured first: a failing run stops the script (exit 2), not a pipe.
        out=$("$bin" run "$cfg" --json --set "schedule=\"$name\"" --set stages="$p" \
            --set microbatches="$m" --set costs.forward="$sf" --set costs.backward="$sb" \
            --set costs.weight="$sw" --set network.latency="$c" --set memory.kept_fraction="$k" \
            --set memory.limit_activations="$limit" --set costs.overhead="$ovh" \
            --set network.blocking="$blocking") || exit 2
        echo "$out" | sed -n 's/^  "makespan": *\([-0-9.e]*\).*/\1/p' |
            awk -v mo="$model" -v p="$p" -v m="$m" -v b="$b" -v l="$label" -v x="$measured" \
                '{t = m * b / ($1 / 1000) / p;
                  printf "%s %s %s %s %s %.3f %+.1f\n", mo, p, m, l, x, t, 100 * (t - x) / x}'
    done
done <<'T'
1.5B 8 24 6 18.522 18.086 9.337 0.601 0.3664 11.8 12.9 14.5
1.5B 8 32 6 18.513 18.086 9.331 0.626 0.3664 12.5 13.4 14.8
1.5B 8 64 6 18.546 18.097 9.321 0.762 0.3664 13.6 14.2 14.9
6.2B 8 24 3 29.718 29.444 19.927 0.527 0.4324 3.50 3.88 4.32
6.2B 8 32 3 29.802 29.428 19.530 0.577 0.4324 3.70 4.00 4.35
6.2B 8 64 3 29.935 29.621 19.388 0.535 0.4324 4.03 4.20 4.39
14.6B 16 48 1 11.347 11.248 8.132 0.377 0.4324 1.40 1.61 1.81
14.6B 16 64 1 11.307 11.254 8.101 0.379 0.4324 1.49 1.67 1.83
14.6B 16 128 1 11.325 11.308 8.109 0.378 0.4324 1.64 1.76 1.85
28.3B 32 96 1 10.419 10.207 7.715 0.408 0.4324 0.76 0.87 0.99
28.3B 32 128 1 10.408 10.204 7.703 0.408 0.4324 0.80 0.90 1.00
28.3B 32 256 1 10.402 10.248 7.698 0.460 0.4324 0.88 0.96 1.00
T
