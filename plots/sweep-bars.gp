# sweep-bars.gp - a sweep's schedule comparison: makespan, bubble and peak
# activation memory side by side, one bar per simulated point. Written for
# bubblesim (`bubblesim sweep CONFIG --out DIR --plot`), which runs it as
#   gnuplot -c sweep-bars.gp IMAGE DATA TITLE MEMORY_LABEL SETTINGS
# IMAGE, DATA    the picture and its data file (NAME.dat);
# TITLE, MEMORY_LABEL  text shown as is;
# SETTINGS       numbers: bars width svg
# Every argument is used as a string only (no @ macros). Restyle freely;
# NAME.sh beside the picture reruns this program with the same arguments.
#
# DATA: one line per bar: "label" makespan_ms bubble_percent memory
if (ARGC < 5) {
    print "usage: gnuplot -c sweep-bars.gp IMAGE DATA TITLE MEMORY_LABEL SETTINGS"
    exit status 2
}
s(i) = real(word(ARG5, i))
bars = int(s(1)); width = int(s(2)); svg = int(s(3))
if (svg) {
    set terminal svg size width, 600 dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size width, 600 font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set style fill solid 0.85 border lc rgb '#333333'
set boxwidth 0.7
set yrange [0:*]
set offsets 0.3, 0.3, graph 0.1, 0
set grid noxtics ytics
set xtics nomirror scale 0
set key off
if (bars > 4) {
    set xtics rotate by -35
    set bmargin 9
}
set multiplot layout 1,3 title ARG3 noenhanced font ',12'
set title 'makespan (ms)'
plot ARG2 using 0:2:xtic(1) with boxes lc rgb '#4C72B0', \
     ARG2 using 0:2:(sprintf($2 < 1000 ? '%.3g' : '%.0f', $2)) with labels offset 0,0.7 font ',9'
set title 'bubble, idle over total (%)'
plot ARG2 using 0:3:xtic(1) with boxes lc rgb '#DD8452', \
     ARG2 using 0:3:(sprintf('%.1f', $3)) with labels offset 0,0.7 font ',9'
set title ARG4 noenhanced
plot ARG2 using 0:4:xtic(1) with boxes lc rgb '#55A868', \
     ARG2 using 0:4:(sprintf('%.3g', $4)) with labels offset 0,0.7 font ',8'
unset multiplot
