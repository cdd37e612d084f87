"""Per-seed table of the zero-shot (proxy:vote) and predictor (v2) co-searches of run.sh:
front size, hypervolume on the search's own accuracy and on measured accuracy (2,500 validation
images), with medians and a two-sided Wilcoxon signed-rank test on the measured hypervolume.
Usage: python3 experiments/zero_shot_search/2026-12-03/summarize.py RUNS_DIR"""
import json
import sys
from pathlib import Path

from scipy.stats import wilcoxon
import numpy as np

runs = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/zs")
methods = {"proxy_vote": "`--accuracy proxy:vote`", "predictor": "`--accuracy predictor` (v2)"}
hv = {m: {} for m in methods}
print("| seed | search | front | hypervolume (search's accuracy) | hypervolume (measured) | search - measured top-1 on the front: bias / RMSE (points) |")
print("|---:|---|---:|---:|---:|---|")
for s in range(5):
    for m, label in methods.items():
        f = runs / f"{m}_s{s}" / "front_verification.json"
        if not f.is_file():
            continue
        v = json.loads(f.read_text())
        hv[m][s] = v["hypervolume_measured"]
        e = v.get("error") or {}
        err = f"{e['bias_pct']:+.2f} / {e['rmse_pct']:.2f}" if e else ""
        print(f"| {s} | {label} | {v['designs']} | {v['hypervolume_search']:,.0f} | {v['hypervolume_measured']:,.0f} | {err} |")
common = sorted(set(hv["proxy_vote"]) & set(hv["predictor"]))
a = np.array([hv["proxy_vote"][s] for s in common])
b = np.array([hv["predictor"][s] for s in common])
print(f"\nseeds with both: {common}")
if common:
    print(f"median hypervolume on measured accuracy: proxy:vote {np.median(a):,.0f}, predictor {np.median(b):,.0f}; "
          f"proxy:vote higher on {int((a > b).sum())} of {len(common)} seeds; median difference "
          f"{100 * np.median((a - b) / b):+.2f}%")
if len(common) >= 2:
    print(f"two-sided Wilcoxon signed-rank p: {wilcoxon(a, b).pvalue:.4g}")
