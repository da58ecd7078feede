# Written by bubblesim 0.1.0. Restyle freely, then redraw with
#   gnuplot timeline-decode.gp
# in this directory; it reads timeline-decode.dat and writes timeline-decode.png.
if (!exists("outfile")) outfile = 'timeline-decode.png'
set terminal pngcairo size 900,362 font 'Sans,10' noenhanced
set output outfile
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set key noautotitle
data = 'timeline-decode.dat'

# Colours: one per op kind; chunk c of V is lighter by shade(c).
forward_rgb = 0x4C72B0; backward_rgb = 0x55A868; input_grad_rgb = 0xDD8452
weight_grad_rgb = 0x8172B3; optimizer_rgb = 0x7F7F7F
idle_rgb = '#EEEEEE'; message_rgb = '#B03030'
V = 1
kind_rgb(k) = k == 0 ? forward_rgb : k == 1 ? backward_rgb : k == 2 ? input_grad_rgb : k == 3 ? weight_grad_rgb : optimizer_rgb
shade(c) = V > 1 ? 0.55 * c / (V - 1) : 0
channel(rgb, s) = int(rgb / s) % 256
lighter(x, f) = int(x + (255 - x) * f)
color(k, c) = lighter(channel(kind_rgb(k), 65536), shade(c)) * 65536 + lighter(channel(kind_rgb(k), 256), shade(c)) * 256 + lighter(channel(kind_rgb(k), 1), shade(c))
text_rgb(c) = shade(c) > 0.3 ? 0x000000 : 0xFFFFFF

set title "decode   P=4  M=3  V=1\nmakespan 23.15 ms,  bubble 41.68% of device time idle" font ',12'
set xrange [0:23.150000000000016]
set yrange [3.5:-0.5]
set xlabel 'time (ms)' offset 0,0.5
set bmargin 5
set ytics scale 0 ('device 0' 0, 'device 1' 1, 'device 2' 2, 'device 3' 3)
set grid noytics xtics
set mxtics
set key outside bottom center horizontal samplen 2 width 1 maxcols 4
set style fill solid 1.0 border lc rgb 'white'
set object 1 rect from 0,-0.4 to 23.150000000000016,0.4 fc rgb idle_rgb fs solid 1.0 noborder behind
set object 2 rect from 0,0.6 to 23.150000000000016,1.4 fc rgb idle_rgb fs solid 1.0 noborder behind
set object 3 rect from 0,1.6 to 23.150000000000016,2.4 fc rgb idle_rgb fs solid 1.0 noborder behind
set object 4 rect from 0,2.6 to 23.150000000000016,3.4 fc rgb idle_rgb fs solid 1.0 noborder behind

plot data index 0 using (($2 + $3) / 2):7:(($3 - $2) / 2):8:(color($4, $5)) \
        with boxxyerror lc rgb variable, \
     data index 0 using (($2 + $3) / 2):7:(stringcolumn(6)):(text_rgb($5)) \
        with labels font ',8' tc rgb variable, \
     NaN with boxes lc rgb color(0, 0) title 'forward', \
     NaN with boxes lc rgb idle_rgb title 'idle'
