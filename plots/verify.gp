# verify.gp - `bubblesim verify CONFIG --chart NAME.png`: the predicted
# timeline above the measured one, a pair of rows per device, one box per op
# coloured by kind. bubblesim runs it as
#   gnuplot -c verify.gp IMAGE DATA TITLE SETTINGS
# IMAGE, DATA  the picture and its data file (NAME.dat);
# TITLE        text shown as is;
# SETTINGS     numbers: width height devices x_to svg
# Every argument is used as a string only (no @ macros). Restyle freely;
# NAME.sh beside the picture reruns this program with the same arguments.
#
# DATA: one line per op: row start end kind (row 2d predicted, 2d+1 measured)
if (ARGC < 4) {
    print "usage: gnuplot -c verify.gp IMAGE DATA TITLE SETTINGS (see NAME.sh)"
    exit status 2
}
s(i) = real(word(ARG4, i))
width = int(s(1)); height = int(s(2)); devices = int(s(3)); x_to = s(4); svg = int(s(5))
if (svg) {
    set terminal svg size width, height dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size width, height font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
forward_rgb = 0x4C72B0; backward_rgb = 0x55A868; input_grad_rgb = 0xDD8452
weight_grad_rgb = 0x8172B3; optimizer_rgb = 0x7F7F7F
kind_rgb(k) = k == 0 ? forward_rgb : k == 1 ? backward_rgb : k == 2 ? input_grad_rgb \
    : k == 3 ? weight_grad_rgb : optimizer_rgb
set title ARG3 noenhanced font ',12'
set xrange [0:x_to]
set yrange [2 * devices - 0.5:-0.5]
set xlabel 'time (ms)'
set ytics scale 0 ()
do for [r = 0:2 * devices - 1] {
    set ytics add (sprintf('device %d %s', r / 2, r % 2 ? 'measured' : 'predicted') r)
}
set grid noytics xtics
set key outside bottom center horizontal
plot ARG2 using (($2 + $3) / 2):1:(($3 - $2) / 2):(0.4):(kind_rgb($4)) \
        with boxxyerror fs solid 1.0 noborder lc rgb variable notitle, \
     NaN with boxes fs solid 1.0 lc rgb forward_rgb title 'forward', \
     NaN with boxes fs solid 1.0 lc rgb backward_rgb title 'backward', \
     NaN with boxes fs solid 1.0 lc rgb input_grad_rgb title 'input-grad', \
     NaN with boxes fs solid 1.0 lc rgb weight_grad_rgb title 'weight-grad', \
     NaN with boxes fs solid 1.0 lc rgb optimizer_rgb title 'optimizer'
