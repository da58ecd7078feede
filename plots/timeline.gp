# timeline.gp - a run's timeline: one row per device, one box per op.
# Written for bubblesim (`bubblesim run CONFIG --timeline NAME.png`), which
# runs it as
#   gnuplot -c timeline.gp IMAGE DATA TITLE NOTE SETTINGS
# IMAGE, DATA  the picture to write and the data (NAME.dat), file names;
# TITLE, NOTE  text shown as is (never read as gnuplot code or markup);
# SETTINGS     numbers, space separated:
#              width height devices V x_from x_to kinds messages strip memory
#              key_rows svg label_every note_lines
# Every argument is used as a string only (no @ macros): a file name or a
# title can hold any byte. Restyle freely; NAME.sh beside the picture
# reruns this program with the same arguments.
#
# DATA, one block per gnuplot index (times in ms):
#   0  ops with a white border: device start end kind chunk "label" y dy
#   1  ops too thin for a border, the same columns
#   2  messages: src dst ready start arrive y_from y_to
#   3  utilisation strip bins: device from to busy_fraction y dy
#   4  live activations: device time y  (a blank line between devices)
if (ARGC < 5) {
    print "usage: gnuplot -c timeline.gp IMAGE DATA TITLE NOTE SETTINGS (see NAME.sh)"
    exit status 2
}
s(i) = real(word(ARG5, i))
width = int(s(1)); height = int(s(2)); devices = int(s(3)); V = int(s(4))
x_from = s(5); x_to = s(6); kinds = int(s(7)); messages = int(s(8))
strip = int(s(9)); memory = int(s(10)); key_rows = int(s(11)); svg = int(s(12))
label_every = int(s(13)); note_lines = int(s(14))

if (svg) {
    set terminal svg size width, height dynamic font 'Sans,11' background rgb 'white' noenhanced
} else {
    set terminal pngcairo size width, height font 'Sans,10' noenhanced
}
set output ARG1
set termoption noenhanced
set border lw 1 lc rgb '#444444'
set grid lc rgb '#dddddd' lw 1
set key noautotitle

# Colours: one per op kind; chunk c of V is lighter by shade(c).
forward_rgb = 0x4C72B0; backward_rgb = 0x55A868; input_grad_rgb = 0xDD8452
weight_grad_rgb = 0x8172B3; optimizer_rgb = 0x7F7F7F
idle_rgb = '#EEEEEE'; message_rgb = '#B03030'; memory_rgb = '#000000'
kind_rgb(k) = k == 0 ? forward_rgb : k == 1 ? backward_rgb : k == 2 ? input_grad_rgb \
    : k == 3 ? weight_grad_rgb : optimizer_rgb
shade(c) = V > 1 ? 0.55 * c / (V - 1) : 0
channel(rgb, n) = int(rgb / n) % 256
lighter(x, f) = int(x + (255 - x) * f)
color(k, c) = lighter(channel(kind_rgb(k), 65536), shade(c)) * 65536 \
    + lighter(channel(kind_rgb(k), 256), shade(c)) * 256 + lighter(channel(kind_rgb(k), 1), shade(c))
text_rgb(c) = shade(c) > 0.3 ? 0x000000 : 0xFFFFFF
grey(f) = int(255 * (1 - f)) * 65793
kind_name(k) = word("forward backward input-grad weight-grad optimizer", k + 1)
present(k, c) = (int(kinds / 2**k) % 2) == 1 && (k < 4 || c == 0)
key_title(k, c) = present(k, c) ? kind_name(k) . (V > 1 && k < 4 ? sprintf(' (chunk %d)', c) : '') : ''

set title ARG3 noenhanced font ',12'
set xrange [x_from:x_to]
set yrange [devices - 0.5:-0.5]
# The note (thin boxes, window, memory line) goes under the axis label.
set xlabel (note_lines ? "time (ms)\n" . ARG4 : 'time (ms)') noenhanced offset 0,0.5
set bmargin 4 + key_rows + note_lines
set ytics scale 0 ()
do for [d = 0:devices - 1:label_every] {
    set ytics add (sprintf('device %d', d) d)
}
set grid noytics xtics
set mxtics
set key outside bottom center horizontal samplen 2 width 1 maxcols 4
do for [d = 0:devices - 1] {
    set object d + 1 rect from x_from, d - 0.42 to x_to, d + 0.42 fc rgb idle_rgb \
        fs solid 1.0 noborder behind
}

plot ARG2 index 0 using (($2 + $3) / 2):7:(($3 - $2) / 2):8:(color($4, $5)) \
        with boxxyerror fs solid 1.0 border lc rgb 'white' lc rgb variable, \
     ARG2 index 1 using (($2 + $3) / 2):7:(($3 - $2) / 2):8:(color($4, $5)) \
        with boxxyerror fs solid 1.0 noborder lc rgb variable, \
     ARG2 index 0 using (($2 + $3) / 2):7:(stringcolumn(6)):(text_rgb($5)) \
        with labels font ',8' tc rgb variable, \
     ARG2 index 2 using 4:6:(messages ? $5 - $4 : NaN):($7 - $6) with vectors nohead \
        lc rgb message_rgb lw 0.6, \
     ARG2 index 3 using (strip ? ($2 + $3) / 2 : NaN):5:(($3 - $2) / 2):6:(grey($4)) \
        with boxxyerror fs solid 1.0 noborder lc rgb variable, \
     ARG2 index 4 using 2:(memory ? $3 : NaN) with steps lc rgb memory_rgb lw 1, \
     for [k = 0:4] for [c = 0:V - 1] NaN with boxes fs solid 1.0 lc rgb color(k, c) \
        title key_title(k, c), \
     NaN with boxes fs solid 1.0 lc rgb idle_rgb title 'idle', \
     NaN with lines lc rgb message_rgb title (messages ? 'message (send to arrival)' : ''), \
     NaN with boxes fs solid 1.0 lc rgb '#555555' title (strip ? 'busy share (strip: black busy, white idle)' : ''), \
     NaN with lines lc rgb memory_rgb title (memory ? 'live activations' : '')
