# sweep-serving.gp - a decode sweep's serving figures: time per output
# token (left) and tokens per second (right) against one swept key (the
# batch, model.microbatch_size, first). Written for bubblesim (`bubblesim
# sweep CONFIG --out DIR --plot` on a "decode" config), which runs it as
#   gnuplot -c sweep-serving.gp IMAGE DATA TITLE XLABEL NOTE SETTINGS XTICS
# IMAGE, DATA    the picture and its data file (NAME.dat);
# TITLE, XLABEL, NOTE  text shown as is;
# SETTINGS       numbers: series logx x_from x_to svg
# XTICS          the swept x values, space separated (ticks at each; empty:
#                gnuplot's own ticks).
# Every argument is used as a string only (no @ macros). Restyle freely;
# NAME.sh beside the picture reruns this program with the same arguments.
#
# DATA: one block (gnuplot index) per series; its first line is the series'
# title in double quotes, then lines "x time_per_output_token_ms
# tokens_per_second" (NaN: none).
if (ARGC < 7) {
    print "usage: gnuplot -c sweep-serving.gp IMAGE DATA TITLE XLABEL NOTE SETTINGS XTICS"
    exit status 2
}
s(i) = real(word(ARG6, i))
series = int(s(1)); logx = int(s(2)); x_from = s(3); x_to = s(4); svg = int(s(5))
if (svg) {
    set terminal svg size 1400, 620 dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size 1400, 620 font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set xlabel ARG4 noenhanced
set yrange [0:*]
if (logx) {
    set logscale x 2
} else {
    set mxtics
}
# Ticks at the swept values themselves, the last one included.
if (words(ARG7) > 0) {
    set xtics ()
    do for [i = 1:words(ARG7)] {
        set xtics add (word(ARG7, i) real(word(ARG7, i)))
    }
} else {
    set xtics add (sprintf('%g', x_to) x_to)
}
# A little room at both ends, so the first and last points show.
if (x_to > x_from) {
    if (logx) {
        set xrange [x_from / 2**0.15 : x_to * 2**0.15]
    } else {
        pad = (x_to - x_from) * 0.03
        set xrange [x_from - pad : x_to + pad]
    }
}
# Two panels under one title; the note, when given, on a line of its own
# at the bottom. With several series a key (one entry each) sits right of
# the second panel; a single series needs none and the panels take the room.
keyed = series > 1
set multiplot title ARG3 noenhanced font ',12'
if (strlen(ARG5) > 0) {
    set label 1 ARG5 noenhanced at screen 0.5, screen 0.025 center font ',9'
}
set bmargin (strlen(ARG5) > 0 ? 5 : 3)
set tmargin 4
set lmargin at screen 0.06
set rmargin at screen (keyed ? 0.40 : 0.46)
set title 'time per output token' font ',11'
set ylabel 'time per output token (ms)'
unset key
plot for [b = 0:series - 1] ARG2 index b using 1:2 with linespoints \
        pt (7 + 2 * (b % 5)) ps 1.3 lw 1.5 lc (b + 1) notitle
unset label 1
set lmargin at screen (keyed ? 0.48 : 0.55)
set rmargin at screen (keyed ? 0.80 : 0.96)
set title 'throughput' font ',11'
set ylabel 'tokens per second (all generated tokens)'
if (keyed) {
    set key outside right top
} else {
    unset key
}
plot for [b = 0:series - 1] ARG2 index b using 1:3 with linespoints \
        pt (7 + 2 * (b % 5)) ps 1.3 lw 1.5 lc (b + 1) title columnheader(1)
unset multiplot
