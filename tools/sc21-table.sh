#!/bin/sh
# sc21-table.sh [BUBBLESIM] [OVERHEAD_MS] - docs/model.md's comparison with
# Megatron-LM's measurements (Narayanan et al. 2021, SC21, Table 1): each of
# the table's pipeline-parallel rows run as configs/megatron-sc21.json under
# 1f1b and interleaved V = 2, with costs.overhead = OVERHEAD_MS (default 0).
# Columns: params t p d M schedule time/iter(s) predicted-TFLOP/s measured
# error(%). Predicted = eq. 3 of the paper, 96 B s l h^2 (1 + s/6h + v/16lh)
# with s = 2048 and v = 51200, over time per iteration, over n GPUs.
set -eu
bin=${1:-bubblesim}
ovh=${2-0}
echo "$ovh" | grep -Eqx '[0-9]{1,6}(\.[0-9]{1,6})?' ||
    { echo "sc21-table.sh: OVERHEAD_MS = '$ovh': expected a number such as 0.5" >&2; exit 2; }
cfg=$(dirname "$0")/../configs/megatron-sc21.json
# params heads hidden layers t p n B measured: Table 1 of the paper, as
# transcribed in SotaroKaneda/MLCarbon, data/megatron_table.csv.
while read -r params a h l t p n batch measured; do
    d=$((n / (t * p)))
    m=$((batch / d))
    for sv in 1f1b:1 interleaved:2; do
        out=$("$bin" run "$cfg" --json --set schedule="${sv%%:*}" --set virtual_stages="${sv##*:}" \
            --set model.layers="$l" --set model.hidden="$h" --set model.heads="$a" \
            --set stages="$p" --set tensor_parallel="$t" --set data_parallel="$d" \
            --set microbatches="$m" --set costs.overhead="$ovh") || exit 2
        echo "$out" | sed -n 's/^  "iteration_time": *\([-0-9.e]*\).*/\1/p' |
            awk -v P="$params" -v t="$t" -v p="$p" -v d="$d" -v m="$m" -v s="${sv%%:*}" \
                -v B="$batch" -v l="$l" -v h="$h" -v n="$n" -v x="$measured" '
                {sec = $1 / 1000
                 f = 96 * B * 2048 * l * h * h * (1 + 2048 / (6 * h) + 51200 / (16 * l * h))
                 y = f / sec / n / 1e12
                 printf "%s %s %s %s %s %s %.1f %.0f %s %+.1f\n", P, t, p, d, m, s, sec, y, x, 100 * (y - x) / x}'
    done
done <<'T'
39.1 64 8192 48 8 2 512 1536 138
76.1 80 10240 60 8 4 1024 1792 140
145.6 96 12288 80 8 8 1536 2304 148
310.1 128 16384 96 8 16 1920 2160 155
529.6 128 20480 105 8 35 2520 2520 163
1008 160 25600 128 8 64 3072 3072 163
T
