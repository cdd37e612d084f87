#!/usr/bin/env python3
"""Cost-model throughput: mapping evaluations per second, batched and scalar, on one core, and
the same for ZigZag's cost model (``benchmarks/zigzag_peer.py``, in a scratch venv) as a ratio.

    python benchmarks/cost_model.py                 # full run (creates /tmp/zigzag-venv if needed)
    python benchmarks/cost_model.py --smoke         # seconds; no ZigZag (CI smoke run)

Layer: ResNet-18 conv2_x 3x3 (K=C=64, P=Q=56, R=S=3), the layer zigzag_peer.py times.
Mappings: random valid mappings (factorizations, loop orders, spatial unrolling), drawn before
the timer starts; the timed region is the model only. The last two lines are
``batched_evals_per_s`` and ``zigzag_ratio`` (batched, TPU-like template / ZigZag on its own
TPU-like input).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, run_zigzag                               # noqa: E402  (pins one core)

from accelerators import conv2d, evaluate, evaluate_batch          # noqa: E402
from accelerators.mapping import from_batch                         # noqa: E402
from accelerators.sampling import random_valid_batch                # noqa: E402
from accelerators.spec import load_architecture                     # noqa: E402



def time_batched(arch, work, batch, repeats: int) -> float:
    evaluate_batch(arch, work, batch[:256])               # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        evaluate_batch(arch, work, batch)
        best = min(best, time.perf_counter() - t)
    return len(batch) / best


def time_scalar(arch, work, batch, n: int) -> float:
    maps = [from_batch(batch, i, arch, work) for i in range(n)]
    t = time.perf_counter()
    for m in maps:
        evaluate(arch, work, m)
    return n / (time.perf_counter() - t)


def zigzag_evals_per_s(seconds: float) -> float | None:
    vals = run_zigzag("costmodel", "--seconds", str(seconds))
    if vals is None:
        return None
    print(f"# zigzag {vals.get('zigzag_version')}: {vals.get('zigzag_evals')} evaluations in "
          f"{vals.get('zigzag_seconds')} s")
    return float(vals["zigzag_evals_per_s"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, no ZigZag")
    ap.add_argument("--mappings", type=int, default=200_000)
    ap.add_argument("--zigzag-seconds", type=float, default=20.0)
    args = ap.parse_args()
    n = 4000 if args.smoke else args.mappings
    work = conv2d("resnet18_conv2_x", K=64, C=64, P=56, Q=56, R=3, S=3)
    rates = {}
    for name in ("eyeriss_like", "tpu_like"):
        arch = load_architecture(name)
        batch = random_valid_batch(arch, work, n, seed=0)
        b = time_batched(arch, work, batch, repeats=1 if args.smoke else 3)
        s = time_scalar(arch, work, batch, 200 if args.smoke else 2000)
        rates[name] = b
        print(f"{name}: {len(arch.levels)} storage levels, {arch.num_pes} MACs, {len(batch)} mappings: "
              f"batched {b:,.0f} evals/s, scalar {s:,.0f} evals/s")
    zz = None if args.smoke else zigzag_evals_per_s(args.zigzag_seconds)
    if zz:
        print(f"zigzag_evals_per_s: {zz:.1f}")
    print(f"scalar_evals_per_s: {s:.1f}")
    print(f"batched_evals_per_s: {rates['tpu_like']:.1f}")
    print(f"zigzag_ratio: {rates['tpu_like'] / zz:.1f}" if zz else "zigzag_ratio: nan")


if __name__ == "__main__":
    main()
