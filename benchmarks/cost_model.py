#!/usr/bin/env python3
"""Cost-model throughput: mapping evaluations per second on one core, on the mix of mappings the
mapper really evaluates, scalar and batched, against ZigZag's cost model (``zigzag_peer.py``, in
a scratch venv) as ratios.

    python benchmarks/cost_model.py                 # full run (creates /tmp/zigzag-venv if needed)
    python benchmarks/cost_model.py --smoke         # seconds; no ZigZag (CI smoke run)

Layer: ResNet-18 conv2_x 3x3 (K=C=64, P=Q=56, R=S=3), the layer zigzag_peer.py times.
Templates: Eyeriss-like (5 storage levels, 168 PEs) and TPU-like (4 levels, 32x32 MACs).

Mixes, all drawn before the timer starts (the timed region is the model only, link transfers
on, as by default):
- ``mapper``: every mapping ``map_layer`` evaluates on that layer with its default settings
  (EDP, budget 30,000, the template's dataflow constraints), over seeds 0, 1, ... until there
  are enough: samples, mutants with flipped bypass choices, neighbours. The headline.
- ``uniform``: random valid mappings (``random_valid_batch``), which never bypass, so every
  mapping keeps what the template allows (the model's uniform-keep shortcut). Second line.

Scalar: ``evaluate`` (one mapping per call, the wrapper around a batch of one), on the mapper
mix; ZigZag's ``CostModelEvaluation`` is also one mapping per call, so that comparison is like
for like (``zigzag_ratio_scalar``); batched / ZigZag (``zigzag_ratio``) follows, labelled.
The last lines are ``batched_evals_per_s`` (mapper mix, Eyeriss-like),
``batched_evals_per_s_tpu_like`` (mapper mix), ``scalar_evals_per_s`` (TPU-like),
``zigzag_ratio_scalar`` and ``zigzag_ratio`` (both on the TPU-like template: ZigZag's input is
its own TPU-like design).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_zigzag                                     # noqa: E402  (pins one core)

import accelerators.mapper as mapper_mod                            # noqa: E402
import accelerators.model as model                                  # noqa: E402
from accelerators import conv2d, evaluate, evaluate_batch          # noqa: E402
from accelerators.constraints import dataflow_constraints           # noqa: E402
from accelerators.mapping import MappingBatch, from_batch           # noqa: E402
from accelerators.sampling import random_valid_batch                # noqa: E402
from accelerators.spec import load_architecture                     # noqa: E402


def mapper_mix(arch, work, n: int, budget: int) -> tuple[MappingBatch, int]:
    """The first ``n`` mappings ``map_layer`` evaluates (seeds 0, 1, ...), in its order, and
    how many runs that took. Recorded by wrapping the model function the mapper calls."""
    seen, real = [], mapper_mod.evaluate_batch

    def record(a, w, batch, *args, **kw):
        seen.append(batch)
        return real(a, w, batch, *args, **kw)
    cons = dataflow_constraints(arch, work)
    runs = 0
    mapper_mod.evaluate_batch = record
    try:
        while sum(len(b) for b in seen) < n:
            mapper_mod.map_layer(arch, work, cons, budget=budget, seed=runs)
            runs += 1
    finally:
        mapper_mod.evaluate_batch = real
    return MappingBatch.concat(seen)[:n], runs


def time_batched(arch, work, batch, repeats: int) -> float:
    """Best of ``repeats`` calls on the whole batch, each from an empty ``links.choose`` memo
    (the model keeps that memo across calls; a batch seen before would find its answers)."""
    evaluate_batch(arch, work, batch[:256])               # warm-up
    best = float("inf")
    for _ in range(repeats):
        model.clear_choose_memo()
        t = time.perf_counter()
        evaluate_batch(arch, work, batch)
        best = min(best, time.perf_counter() - t)
    return len(batch) / best


def time_scalar(arch, work, batch, n: int) -> float:
    """``n`` calls of one mapping each, from an empty ``links.choose`` memo (later calls find
    what earlier ones put there, as in a user's loop)."""
    maps = [from_batch(batch, i, arch, work) for i in range(n)]
    model.clear_choose_memo()
    t = time.perf_counter()
    for m in maps:
        try:
            evaluate(arch, work, m)
        except Exception:                   # an invalid mapping: still a full evaluation
            pass
    return n / (time.perf_counter() - t)


def zigzag_evals_per_s(seconds: float) -> float | None:
    vals = run_zigzag("costmodel", "--seconds", str(seconds))
    if vals is None:
        return None
    print(f"# zigzag {vals.get('zigzag_version')}: {vals.get('zigzag_evals')} evaluations in "
          f"{vals.get('zigzag_seconds')} s (one mapping per call)")
    return float(vals["zigzag_evals_per_s"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, no ZigZag")
    ap.add_argument("--mappings", type=int, default=200_000, help="mappings per mix and template")
    ap.add_argument("--zigzag-seconds", type=float, default=20.0)
    args = ap.parse_args()
    n = 4000 if args.smoke else args.mappings
    work = conv2d("resnet18_conv2_x", K=64, C=64, P=56, Q=56, R=3, S=3)
    rates, scalar = {}, {}
    print("| template | mix | mappings | bypassing* | batched evals/s | scalar evals/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("eyeriss_like", "tpu_like"):
        arch = load_architecture(name)
        mixes = {"mapper": mapper_mix(arch, work, n, 3000 if args.smoke else 30_000)[0],
                 "uniform": random_valid_batch(arch, work, n, seed=0)}
        allowed = mixes["uniform"].keep[0]
        for mix, batch in mixes.items():
            b = time_batched(arch, work, batch, repeats=1 if args.smoke else 3)
            bypass = float((batch.keep != allowed).any(axis=(1, 2)).mean())
            s = time_scalar(arch, work, batch, 200 if args.smoke else 2000) if mix == "mapper" else None
            rates[name, mix], scalar[name, mix] = b, s
            print(f"| {name} | {mix} | {len(batch):,} | {bypass:.1%} | {b:,.0f} | "
                  f"{'-' if s is None else f'{s:,.0f}'} |")
    print("(* mappings that keep other data spaces than the template allows everywhere: "
          "a bypass flipped by the mapper)")
    zz = None if args.smoke else zigzag_evals_per_s(args.zigzag_seconds)
    if zz:
        print(f"zigzag_evals_per_s: {zz:.1f}")
    print(f"batched_evals_per_s_uniform: {rates['eyeriss_like', 'uniform']:.1f}")
    print(f"batched_evals_per_s: {rates['eyeriss_like', 'mapper']:.1f}")
    print(f"batched_evals_per_s_tpu_like: {rates['tpu_like', 'mapper']:.1f}")
    print(f"scalar_evals_per_s: {scalar['tpu_like', 'mapper']:.1f}")
    print(f"zigzag_ratio_scalar: {scalar['tpu_like', 'mapper'] / zz:.2f}" if zz else "zigzag_ratio_scalar: nan")
    print(f"zigzag_ratio: {rates['tpu_like', 'mapper'] / zz:.1f}" if zz else "zigzag_ratio: nan")


if __name__ == "__main__":
    main()
