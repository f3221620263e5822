#!/usr/bin/env bash
# The plots of a benchmark run, from its CSV (tests/bench/run.sh), with
# gnuplot:
#
#   tests/bench/plot.sh build/bench/results.csv build/bench
#
# deliveries.png  deliveries/s per server against the room (clients/senders),
#                 Redis as a dashed line
# p99.png         p99 latency against the room
# cpu.png         server CPU seconds per million deliveries against the room
# memory.png      proportional memory per idle client, per server (when the
#                 run has the hold row)
set -euo pipefail
csv=${1:?usage: plot.sh RESULTS.CSV OUTDIR}
out=${2:?usage: plot.sh RESULTS.CSV OUTDIR}

servers=$(awk -F, 'NR > 1 && $2 == "fanout" && $7 == 1 && !seen[$1]++ { print $1 }' "$csv")
[ -n "$servers" ] || { echo "plot.sh: no successful fan-out run to plot" >&2; exit 1; }

dps="" p99="" cpu=""
for s in $servers; do
    # One line per room: "clients/senders" deliveries/s p99 cpu-per-M.
    awk -F, -v s="$s" '$1 == s && $2 == "fanout" && $7 == 1 {
        printf "%s/%s %s %s %s\n", $3, $4, $10, $12, $15 }' "$csv" >"$out/$s.dat"
    if [ "$s" = redis ]; then
        style="with linespoints dashtype 2 linewidth 3 linecolor rgb 'black' pointtype 7"
    else
        style="with linespoints linewidth 2"
    fi
    dps+="'$out/$s.dat' using 0:2:xtic(1) $style title '$s', "
    p99+="'$out/$s.dat' using 0:(\$3 / 1000):xtic(1) $style title '$s', "
    cpu+="'$out/$s.dat' using 0:4:xtic(1) $style title '$s', "
done
awk -F, '$2 == "hold" && $7 == 1 { printf "%s\\n(%s) %s\n", $1, $3, $21 }' \
    "$csv" >"$out/memory.dat"

gnuplot <<GNUPLOT
set terminal pngcairo size 800,480 noenhanced font 'sans,10'
set grid
set key outside right top
set xlabel 'clients/senders'
set offsets 0.2, 0.2, 0, 0
set output '$out/deliveries.png'
set title 'Deliveries per second (higher is better)'
set ylabel 'deliveries/s'
set format y '%.1s%c'
set yrange [0:*]
plot ${dps%, }
set output '$out/p99.png'
set title 'p99 latency, closed loop with 64 messages in flight per sender (lower is better)'
set ylabel 'p99 latency (ms)'
set logscale y
set yrange [*:*]
set format y '%g'
plot ${p99%, }
set output '$out/cpu.png'
set title 'Server CPU per million deliveries (lower is better)'
set ylabel 'CPU seconds per M deliveries'
plot ${cpu%, }
GNUPLOT

# A run without the hold row (BENCH_ROWS) has no memory to plot.
[ -s "$out/memory.dat" ] || exit 0
gnuplot <<GNUPLOT
set terminal pngcairo size 800,480 noenhanced font 'sans,10'
set grid
set output '$out/memory.png'
set title 'Proportional memory per idle client (lower is better)'
set ylabel 'Pss KiB per idle client'
set xlabel 'server (idle clients held)'
set offsets 0.2, 0.2, 0, 0
set logscale y
set yrange [0.1:*]
set style fill solid 0.5
set boxwidth 0.6
unset key
plot '$out/memory.dat' using 0:2:xtic(1) with boxes notitle, \
     '' using 0:2:(sprintf('%.1f', \$2)) with labels offset 0,0.8 notitle
GNUPLOT
