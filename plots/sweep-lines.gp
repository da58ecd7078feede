# sweep-lines.gp - a sweep's line chart (bubble against M or P, makespan
# against V). Written for bubblesim (`bubblesim sweep CONFIG --out DIR
# --plot`), which runs it as
#   gnuplot -c sweep-lines.gp IMAGE DATA TITLE XLABEL YLABEL NOTE SETTINGS XTICS
# IMAGE, DATA    the picture and its data file (NAME.dat);
# TITLE, XLABEL, YLABEL, NOTE  text shown as is;
# SETTINGS       numbers: series logx x_from x_to svg
# XTICS          the swept x values, space separated (ticks at each; empty:
#                gnuplot's own ticks).
# Every argument is used as a string only (no @ macros). Restyle freely;
# NAME.sh beside the picture reruns this program with the same arguments.
#
# DATA: one block (gnuplot index) per series; its first line is the series'
# title in double quotes, then lines "x simulated closed_form" (NaN: none).
if (ARGC < 8) {
    print "usage: gnuplot -c sweep-lines.gp IMAGE DATA TITLE XLABEL YLABEL NOTE SETTINGS XTICS"
    exit status 2
}
s(i) = real(word(ARG7, i))
series = int(s(1)); logx = int(s(2)); x_from = s(3); x_to = s(4); svg = int(s(5))
if (svg) {
    set terminal svg size 1100, 640 dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size 1100, 640 font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set title ARG3 noenhanced font ',12'
set xlabel ARG4 noenhanced
set ylabel ARG5 noenhanced
# The note goes on its own line under the axis label, clear of the ticks.
if (strlen(ARG6) > 0) {
    set label 1 ARG6 noenhanced at screen 0.5, screen 0.02 center font ',9'
    set bmargin 5
}
set key outside right top
set yrange [0:*]
if (logx) {
    set logscale x 2
} else {
    set mxtics
}
# Ticks at the swept values themselves, the last one included.
if (words(ARG8) > 0) {
    set xtics ()
    do for [i = 1:words(ARG8)] {
        set xtics add (word(ARG8, i) real(word(ARG8, i)))
    }
} else {
    # gnuplot's own ticks may stop short of the end (a log axis does): add it.
    set xtics add (sprintf('%g', x_to) x_to)
}
# A little room at both ends, so the first and last points (and the last
# tick, which rounding would drop at the very end of a log axis) show.
if (x_to > x_from) {
    if (logx) {
        set xrange [x_from / 2**0.15 : x_to * 2**0.15]
    } else {
        pad = (x_to - x_from) * 0.03
        set xrange [x_from - pad : x_to + pad]
    }
}
plot for [b = 0:series - 1] ARG2 index b using 1:2 with linespoints \
        pt (7 + 2 * (b % 5)) ps 1.3 lw 1.5 lc (b + 1) title columnheader(1), \
     for [b = 0:series - 1] ARG2 index b using 1:3 with lines dt 2 lw 2 lc (b + 1) notitle
