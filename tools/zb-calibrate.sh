#!/bin/sh
# zb-calibrate.sh [BUBBLESIM [FORM:VALUE...]] - fits one per-op overhead to the zero-bubble
# paper's measured throughput (tools/zb-throughput.sh) and checks it on
# held-out rows. Fit rows: the 1.5B and 14.6B models (18 rows: 1F1B, ZB-1p,
# ZB-2p at three M each); held out: 6.2B and 28.3B (18 rows). Two forms are
# searched on a grid, each one parameter: a fixed OVERHEAD ms added to every
# op (costs.overhead), and a FRACTION of every op's own cost (overhead 0 to
# 4 ms by 0.1, fraction 0 to 0.2 by 0.005), or only the points given, as
# overhead:MS or fraction:F.
# Prints per grid value: form value fit-median fit-worst held-median
# held-worst (absolute errors in %), then for each form the value that
# minimises the fit rows' median and the one that minimises their worst
# (ties: the smaller other one), with the held-out errors at that value; last,
# per schedule over all rows, the signed errors at 0 and at both fits.
set -eu
bin=${1:-bubblesim}
here=$(dirname "$0")
stats() { # stdin: zb-throughput lines; prints median and worst |error| of fit and held rows
    awk '{e = $7 + 0; if (e < 0) e = -e; if ($1 == "1.5B" || $1 == "14.6B") f[nf++] = e; else h[nh++] = e}
         function med(a, n,   i, j, t) {
             for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
             return n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2 }
         END { printf "%.2f %.1f %.2f %.1f\n", med(f, nf), f[nf - 1], med(h, nh), h[nh - 1] }'
}
if [ $# -gt 1 ]; then # only the given points, FORM:VALUE (tests/cli_calibration.sh)
    shift
    grid=$(for point in "$@"; do
        form=${point%%:*}
        v=${point#*:}
        case $form in
        overhead) out=$("$here/zb-throughput.sh" "$bin" "$v" 0) ;;
        fraction) out=$("$here/zb-throughput.sh" "$bin" 0 "$v") ;;
        *) echo "zb-calibrate.sh: $point: expected overhead:MS or fraction:F" >&2; exit 2 ;;
        esac
        echo "$form $v $(echo "$out" | stats)"
    done)
else
    grid=$(for form in overhead fraction; do
        i=0
        while [ $i -le 40 ]; do
            if [ $form = overhead ]; then
                v=$(awk "BEGIN{printf \"%.2f\", $i * 0.1}")
                out=$("$here/zb-throughput.sh" "$bin" "$v" 0)
            else
                v=$(awk "BEGIN{printf \"%.3f\", $i * 0.005}")
                out=$("$here/zb-throughput.sh" "$bin" 0 "$v")
            fi
            echo "$form $v $(echo "$out" | stats)"
            i=$((i + 1))
        done
    done)
fi
echo "$grid"
echo "$grid" | awk '
    { if (!($1 in bm) || $3 < bm[$1] || ($3 == bm[$1] && $4 < bmw[$1])) { bm[$1] = $3; bmw[$1] = $4; lm[$1] = $0 }
      if (!($1 in bw) || $4 < bw[$1] || ($4 == bw[$1] && $3 < bwm[$1])) { bw[$1] = $4; bwm[$1] = $3; lw[$1] = $0 } }
    END { for (f in lm) { print "best-median " lm[f]; print "best-worst " lw[f] } }' | sort
# Per schedule, over all 36 rows: the signed error range at no overhead and
# at the two fitted overheads.
for v in 0 $(echo "$grid" | awk '$1 == "overhead"' | sort -k3,3n -k4,4n | head -n 1 | cut -d' ' -f2) \
    $(echo "$grid" | awk '$1 == "overhead"' | sort -k4,4n -k3,3n | head -n 1 | cut -d' ' -f2); do
    "$here/zb-throughput.sh" "$bin" "$v" 0 | awk '{e = $7 + 0; print (e < 0 ? -e : e), $4, e}' | sort -n |
        awk -v v="$v" '{a[NR] = $1; s = $2; x = $3
                        if (!(s in lo) || x < lo[s]) lo[s] = x; if (!(s in hi) || x > hi[s]) hi[s] = x}
            END { printf "overhead %s ms, all %d rows: median %.2f worst %.1f;", v, NR, (a[NR / 2] + a[NR / 2 + 1]) / 2, a[NR]
                  split("1F1B ZB-1p ZB-2p", k, " ")
                  for (i = 1; i <= 3; i++) printf " %s %+.1f to %+.1f", k[i], lo[k[i]], hi[k[i]]
                  printf "\n" }'
done
