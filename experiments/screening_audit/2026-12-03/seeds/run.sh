#!/bin/bash
cd /work/main
for seed in 0 1 2 3 4; do
  for mode in plain screen; do
    out=/tmp/screen_seeds/${mode}_$seed; rm -rf $out
    extra=""; [ $mode = screen ] && extra="--screen 8"
    s=$(date +%s.%N)
    taskset -c 0 python3 -m codesign search --budget 96 --workers 1 --seed $seed $extra --out $out --quiet --no-plot > $out.log 2>&1
    e=$(date +%s.%N)
    echo "$seed $mode wall=$(echo "$e - $s" | bc) $(grep -o "in [0-9.]* s; hypervolume [0-9.e+]*" $out.log)" >> /tmp/screen_seeds/results.txt
  done
done
echo done >> /tmp/screen_seeds/results.txt
