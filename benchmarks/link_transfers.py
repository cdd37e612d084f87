#!/usr/bin/env python3
"""How much Timeloop's link transfers (``ComputeNetworkLinkTransfers``, on by default in Timeloop
and in our model) change the figures, per template, and what they cost in evaluation speed.

    python3 benchmarks/link_transfers.py [--mappings 8192] [--templates eyeriss_like ...] [--smoke]

Per template: random valid mappings of ResNet-18 conv2_x (K=C=64, P=Q=56, R=S=3) evaluated with
links on and off; the share of mappings whose counts change, the energy ratio (on / off) where
they change, the mapper's best mapping of a small layer (conv2d K=16, C=8, P=Q=8, R=S=3) with
its link transfers, and batched evaluations per second with links on and off (one core, best of
3). The model is checked against ``accelerators.reference`` (the literal walk) on the mappings
that use a link, up to ``--check`` of them. The last line is ``link_transfer_share: <fraction of
all mappings whose counts change>``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE  # noqa: E402,F401  (pins one core)

import numpy as np  # noqa: E402

from accelerators import conv2d, evaluate_batch  # noqa: E402
from accelerators.constraints import dataflow_constraints  # noqa: E402
from accelerators.mapper import map_layer  # noqa: E402
from accelerators.mapping import from_batch  # noqa: E402
from accelerators.reference import reference_counts  # noqa: E402
from accelerators.sampling import random_valid_batch  # noqa: E402
from accelerators.spec import list_templates, load_architecture  # noqa: E402


def rate(arch, work, batch, links: bool, repeats: int) -> float:
    evaluate_batch(arch, work, batch[:256], link_transfers=links)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        evaluate_batch(arch, work, batch, link_transfers=links)
        best = min(best, time.perf_counter() - t)
    return len(batch) / best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mappings", type=int, default=8192, help="random valid mappings per template (default 8192)")
    ap.add_argument("--templates", nargs="*", default=list_templates(), help="templates (default: all)")
    ap.add_argument("--check", type=int, default=5, help="mappings with links checked against the literal walk")
    ap.add_argument("--smoke", action="store_true", help="512 mappings, one repeat, no check")
    a = ap.parse_args(argv)
    n, repeats = (512, 1) if a.smoke else (a.mappings, 3)
    big = conv2d("resnet18_conv2_x", K=64, C=64, P=56, Q=56, R=3, S=3)
    small = conv2d(K=16, C=8, P=8, Q=8, R=3, S=3)
    print("| template | mappings whose counts change | energy on/off where they do (min / median) "
          "| best mapping of the small layer: link transfers | evals/s links on | evals/s links off |")
    print("|---|---:|---|---|---:|---:|")
    changed_all = total = 0
    for name in a.templates:
        arch = load_architecture(name)
        b = random_valid_batch(arch, big, n, seed=0)
        on, off = evaluate_batch(arch, big, b), evaluate_batch(arch, big, b, link_transfers=False)
        changed = ((on.reads != off.reads) | (on.fills != off.fills) | (on.updates != off.updates)).any(axis=(1, 2))
        ratio = on.energy_pj[changed] / off.energy_pj[changed]
        if not a.smoke:
            for i in np.flatnonzero(changed)[:a.check]:
                m = from_batch(b, i, arch, big)
                ref = reference_counts(arch, big, m)
                for l, lv in enumerate(arch.levels):
                    for s, ds in enumerate(big.dataspaces):
                        got = (int(on.reads[i, l, s]), int(on.fills[i, l, s]), int(on.updates[i, l, s]))
                        assert got == ref.get((lv.name, ds.name), (0, 0, 0)), (name, i, lv.name, ds.name)
        best = map_layer(arch, small, dataflow_constraints(arch, small), budget=3000, seed=0)
        lt = {f"{lv['name']}.{k}": v["link_transfers"] for lv in best.evaluation.to_dict()["levels"]
              for k, v in lv["dataspaces"].items() if v.get("link_transfers")}
        r_on, r_off = rate(arch, big, b, True, repeats), rate(arch, big, b, False, repeats)
        span = f"{ratio.min():.3f} / {np.median(ratio):.3f}" if changed.any() else "-"
        print(f"| {name} | {changed.mean():.1%} | {span} | {', '.join(f'{k} {v:,}' for k, v in lt.items()) or 'none'} "
              f"| {r_on:,.0f} | {r_off:,.0f} |", flush=True)
        changed_all += int(changed.sum())
        total += len(b)
    print(f"link_transfer_share: {changed_all / total:.4f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
