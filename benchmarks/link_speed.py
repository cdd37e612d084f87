#!/usr/bin/env python3
"""What Timeloop's link transfers cost in evaluation speed: batched evaluations per second with
link transfers on and off, timed back to back in one run, as ratios (issue #16's 10^6 target is
the TPU-like line with links on).

    python3 benchmarks/link_speed.py [--mappings 65536] [--repeats 5] [--smoke]

Layer: ResNet-18 conv2_x (K=C=64, P=Q=56, R=S=3), as ``benchmarks/cost_model.py``. Per template
(TPU-like, Eyeriss-like) two mixes, drawn before any timing: ``uniform`` (``random_valid_batch``,
never bypasses) and ``mapper`` (the mappings ``map_layer`` evaluates with its default settings,
seeds 0, 1, ... until there are enough; as ``cost_model.py``'s mapper mix). Each timing is the
median of ``--repeats`` calls; on and off alternate, so that a shared machine's load hits both.
One core (``_common`` pins it). The last lines are ``links_on_evals_per_s_tpu_like`` (uniform
mix) and ``links_on_off_ratio_tpu_like``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import accelerators.model as _model  # noqa: E402
from accelerators import conv2d, evaluate_batch  # noqa: E402
from accelerators.mapping import MappingBatch  # noqa: E402
from accelerators.sampling import random_valid_batch  # noqa: E402
from accelerators.spec import load_architecture  # noqa: E402

TEMPLATES = ("tpu_like", "eyeriss_like")


def layer():
    return conv2d("resnet18_conv2_x", K=64, C=64, P=56, Q=56, R=3, S=3)


def mapper_mix(arch, work, n: int, budget: int) -> MappingBatch:
    """The first ``n`` mappings ``map_layer`` evaluates (seeds 0, 1, ...), in its order."""
    import accelerators.mapper as mapper_mod
    from accelerators.constraints import dataflow_constraints
    seen, real = [], mapper_mod.evaluate_batch

    def record(a, w, batch, *args, **kw):
        seen.append(batch)
        return real(a, w, batch, *args, **kw)
    cons = dataflow_constraints(arch, work)
    mapper_mod.evaluate_batch = record
    try:
        seed = 0
        while sum(len(b) for b in seen) < n:
            mapper_mod.map_layer(arch, work, cons, budget=budget, seed=seed)
            seed += 1
    finally:
        mapper_mod.evaluate_batch = real
    return MappingBatch.concat(seen)[:n]


def mixes(name: str, work, n: int, budget: int = 30_000) -> dict:
    """{mix name: MappingBatch} of one template."""
    arch = load_architecture(name)
    return {"uniform": random_valid_batch(arch, work, n, seed=0),
            "mapper": mapper_mix(arch, work, n, budget)}


def rates(arch, work, batch, repeats: int) -> tuple[float, float]:
    """(evaluations/s links on, links off): medians, the two alternating."""
    for links in (True, False):
        evaluate_batch(arch, work, batch[:256], link_transfers=links)        # warm-up
    t = {True: [], False: []}
    for _ in range(repeats):
        for links in (True, False):
            _model.clear_choose_memo()             # each timing from an empty links.choose memo
            t0 = time.perf_counter()
            evaluate_batch(arch, work, batch, link_transfers=links)
            t[links].append(time.perf_counter() - t0)
    return len(batch) / float(np.median(t[True])), len(batch) / float(np.median(t[False]))


def main(argv=None) -> None:
    from _common import HERE  # noqa: F401  (pins one core)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mappings", type=int, default=65_536, help="mappings per mix (default 65536)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per setting (median)")
    ap.add_argument("--smoke", action="store_true", help="4096 mappings, mapper budget 3000, 1 repeat")
    a = ap.parse_args(argv)
    n, budget, repeats = (4096, 3000, 1) if a.smoke else (a.mappings, 30_000, a.repeats)
    work = layer()
    print("| template | mix | mappings | evals/s links on | evals/s links off | on / off |")
    print("|---|---|---:|---:|---:|---:|")
    got = {}
    for name in TEMPLATES:
        arch = load_architecture(name)
        for mix, batch in mixes(name, work, n, budget).items():
            on, off = rates(arch, work, batch, repeats)
            got[name, mix] = on, off
            print(f"| {name} | {mix} | {len(batch):,} | {on:,.0f} | {off:,.0f} | {on / off:.2f} |", flush=True)
    on, off = got["tpu_like", "uniform"]
    print(f"links_on_evals_per_s_tpu_like: {on:.1f}")
    print(f"links_on_off_ratio_tpu_like: {on / off:.3f}")


if __name__ == "__main__":
    main()
