# decode-batch.gp - time per output token and tokens/s against batch size,
# from the CSV of `bubblesim sweep configs/sweep-decode-batch.json`:
#   gnuplot -c docs/img/decode-batch.gp out/sweep-decode-batch.csv docs/img/decode-batch.png
# ARG1: the sweep's CSV; ARG2: the PNG to write. Refused points (empty
# cells) are skipped.
if (ARGC < 2) { print "usage: gnuplot -c decode-batch.gp SWEEP.csv OUT.png"; exit status 2 }
set terminal pngcairo size 900,420 font ',10'
set output ARG2
set datafile separator ','
set datafile columnheaders
set datafile missing ''
set title "LLaMA-70B decode, TP = 4 on 4 x A100-40GB: time per output token and tokens/s against batch"
set xlabel 'sequences in the batch (model.microbatch_size)' noenhanced
set logscale x 2
set ylabel 'time per output token (ms)'
set y2label 'tokens per second (all generated tokens)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key left top
plot ARG1 using (column('model.microbatch_size')):(column('time_per_output_token')) \
         with linespoints lw 2 pt 7 title 'time per output token (ms)', \
     ARG1 using (column('model.microbatch_size')):(column('tokens_per_second')) axes x1y2 \
         with linespoints lw 2 pt 5 title 'tokens/s'
