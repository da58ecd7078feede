#!/bin/sh
# zb-op-costs.sh - do the zero-bubble paper's profiled op times (Qi et al.,
# ICLR 2024, Table 9, p. 16) follow the model's FLOP count as
# FLOPs / (312e12 * efficiency) + a fixed per-op overhead?
# FLOPs per middle stage (docs/model.md "Formulas", Table 1 of the paper):
#   F = n sbh(24h + 4s), B = n sbh(24h + 8s), W = n 24sbh^2,
# n layers per middle stage: (layers + 2) / P (the first and last stage have
# one layer fewer, p. 6), s b h from Table 3 (A100: 312e12 FLOP/s peak).
# For each op kind (F, B, W, and all three together) prints the
# least-squares efficiency and overhead over the paper's 12 rows, then each
# row's profiled time, the fitted time and the error; for W also each model
# left out in turn (fit on the other 9 rows, error on its 3).
set -eu
awk '
function fit(kind, skip,   i, n, sx, sy, sxx, sxy) {
    n = sx = sy = sxx = sxy = 0
    for (i = 1; i <= N; i++)
        if (index(kind, K[i]) && M[i] != skip) {
            n++; sx += X[i]; sy += Y[i]; sxx += X[i] * X[i]; sxy += X[i] * Y[i] }
    A = (n * sxy - sx * sy) / (n * sxx - sx * sx); O = (sy - A * sx) / n
}
{   n = ($2 + 2) / $3; h = $4; s = $5; b = $6; t = s * b
    fl["F"] = n * t * h * (24 * h + 4 * s); fl["B"] = n * t * h * (24 * h + 8 * s)
    fl["W"] = n * 24 * t * h * h; me["F"] = $8; me["B"] = $9; me["W"] = $10
    for (k in fl) { N++; K[N] = k; M[N] = $1; R[N] = $1 " M=" $7 " " k; X[N] = fl[k]; Y[N] = me[k] } }
END {
    split("F B W FBW", kinds, " ")
    for (j = 1; j <= 4; j++) {
        fit(kinds[j], "")
        printf "%s: efficiency %.3f, overhead %.3f ms per op\n", kinds[j], 1000 / 312e12 / A, O
        for (i = 1; i <= N; i++) if (index(kinds[j], K[i])) {
            p = A * X[i] + O; printf "  %-16s profiled %7.3f fitted %7.3f %+6.1f%%\n", R[i], Y[i], p, 100 * (p - Y[i]) / Y[i] }
    }
    split("1.5B 6.2B 14.6B 28.3B", models, " ")
    for (j = 1; j <= 4; j++) {
        fit("W", models[j])
        printf "W without %s: efficiency %.3f, overhead %.3f ms;", models[j], 1000 / 312e12 / A, O
        for (i = 1; i <= N; i++) if (K[i] == "W" && M[i] == models[j]) printf " %+.1f%%", 100 * (A * X[i] + O - Y[i]) / Y[i]
        printf "\n"
    }
}' <<'T'
1.5B 22 8 2304 1024 6 24 18.522 18.086 9.337
1.5B 22 8 2304 1024 6 32 18.513 18.086 9.331
1.5B 22 8 2304 1024 6 64 18.546 18.097 9.321
6.2B 30 8 4096 1024 3 24 29.718 29.444 19.927
6.2B 30 8 4096 1024 3 32 29.802 29.428 19.530
6.2B 30 8 4096 1024 3 64 29.935 29.621 19.388
14.6B 46 16 5120 1024 1 48 11.347 11.248 8.132
14.6B 46 16 5120 1024 1 64 11.307 11.254 8.101
14.6B 46 16 5120 1024 1 128 11.325 11.308 8.109
28.3B 62 32 6144 1024 1 96 10.419 10.207 7.715
28.3B 62 32 6144 1024 1 128 10.408 10.204 7.703
28.3B 62 32 6144 1024 1 256 10.402 10.248 7.698
T
