#!/bin/sh
# Zero-shot (proxy:vote) vs predictor (v2) co-search, budget 64, seeds 0-4, each front re-measured
# on 2,500 validation images. Resumable: a finished search or verification is skipped.
# Usage (repository root): sh experiments/zero_shot_search/2026-12-03/run.sh RUNS_DIR
set -e
R=${1:-/tmp/zs}
DATA=${DATA:-../shared/data/cifar10}
for s in 0 1 2 3 4; do
  for m in proxy:vote predictor; do
    d=$R/$(echo $m | tr ':' '_')_s$s
    [ -f $d/front.csv ] || codesign search --accuracy $m --budget 64 --seed $s --data $DATA --no-verify --out $d --quiet
    [ -f $d/front_verification.json ] || codesign verify $d --data $DATA --images 2500
  done
done
