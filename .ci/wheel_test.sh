#!/usr/bin/env bash
# The wheel works on its own: build it, install it (plain `pip install`, not editable) into a fresh
# venv outside the checkout, and from a directory with no specs/ run `codesign templates` and a
# 4-candidate `codesign search` (shipped templates, energy table, default space and predictor all
# come from the installed package; the search writes its report.html too).
# Usage: .ci/wheel_test.sh [WORKDIR]  (default: a new temp dir)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
case "$work" in "$repo"/*) echo "wheel_test: WORKDIR must be outside the checkout" >&2; exit 2;; esac
# build from a copy of the files git sees (tracked, or untracked and not ignored): no stale build/ or
# egg-info of the checkout gets into the wheel, and the checkout is left as it was
mkdir -p "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp -P --parents -t "$work/src")
python3 -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$work"/dist/codesign_sim-*.whl
mkdir -p "$work/cwd" && cd "$work/cwd"
"$work/venv/bin/codesign" templates | tee templates.txt
grep -q eyeriss_like templates.txt
"$work/venv/bin/codesign" search --budget 4 --population 4 --seed 0 --out run --quiet
test "$(wc -l < run/all.csv)" -eq 5        # header + 4 candidates
test -s run/front.csv
grep -q 'id="pareto-2d"' run/report.html     # the HTML report, written by the search (no torch in this venv)
echo "wheel test passed ($work)"
