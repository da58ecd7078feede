# tune.gp - `bubblesim tune CONFIG --out DIR`'s chart: every simulated
# configuration, time per iteration against peak memory, the Pareto front
# joined and labelled, the memory limit dashed. bubblesim runs it as
#   gnuplot -c tune.gp IMAGE DATA TITLE SETTINGS
# IMAGE, DATA  the picture and its data file (tune.dat);
# TITLE        text shown as is;
# SETTINGS     numbers: memory_limit_GiB x_max_GiB svg
# Every argument is used as a string only (no @ macros). Restyle freely;
# tune.sh beside the picture reruns this program with the same arguments.
#
# DATA, one block (gnuplot index) each, lines "memory_GiB time_s label":
#   0 simulated and fits, 1 simulated and over the limit, 2 the Pareto front
if (ARGC < 4) {
    print "usage: gnuplot -c tune.gp IMAGE DATA TITLE SETTINGS (see tune.sh)"
    exit status 2
}
s(i) = real(word(ARG4, i))
limit = s(1); x_max = s(2); svg = int(s(3))
if (svg) {
    set terminal svg size 1100, 700 dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size 1100, 700 font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set title ARG3 noenhanced font ',12'
set xlabel 'peak memory per device (GiB)'
set ylabel 'time per iteration (s)'
set key top right
set xrange [0:x_max]
set arrow 1 from limit, graph 0 to limit, graph 1 nohead dt 2 lc rgb '#cc0000'
set label 1 'memory limit' at limit, graph 0.95 right offset -1,0 tc rgb '#cc0000'
plot ARG2 index 1 using 1:2 with points pt 6 ps 0.8 lc rgb '#bbbbbb' \
        title 'simulated, over memory', \
     ARG2 index 0 using 1:2 with points pt 7 ps 0.7 lc rgb '#5577aa' title 'simulated, fits', \
     ARG2 index 2 using 1:2 with linespoints pt 5 ps 1 lw 2 lc rgb '#dd7700' \
        title 'Pareto front', \
     ARG2 index 2 using 1:2:3 with labels left offset 1,0.6 font ',8' tc rgb '#884400' notitle
