#!/usr/bin/env python3
"""Mapper speed and quality on whole networks, one core, and ZigZag's full flow as a peer.

    python benchmarks/mapper.py                    # full run (creates /tmp/zigzag-venv if needed)
    python benchmarks/mapper.py --smoke            # a few layers, no ZigZag (CI smoke run)

Maps every layer of ResNet-18 (Timeloop layer shapes from --layers, default
../shared/reference/timeloop/layer_shapes/resnet18; our specs/workloads/resnet18.yaml when absent)
on the Eyeriss-like and the TPU-like template with the default mapper settings (EDP, 30,000
evaluations per distinct layer shape, the template's dataflow constraints), prints wall time and
EDP, then runs ZigZag's complete flow on ResNet-18 on its own tpu_like input
(benchmarks/zigzag_peer.py network) and prints the wall-time ratio ZigZag / ours (TPU-like).
The last lines are ``resnet18_eyeriss_s``, ``resnet18_tpu_s`` and ``zigzag_ratio``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, run_zigzag                               # noqa: E402  (pins one core)

from accelerators.network import MappingCache, evaluate_network, load_layers   # noqa: E402
from accelerators.spec import load_architecture                                 # noqa: E402

DEFAULT_LAYERS = HERE.parent.parent / "shared/reference/timeloop/layer_shapes/resnet18"


def zigzag_network_seconds() -> float | None:
    vals = run_zigzag("network", "--workload", "resnet18")
    if vals is None:
        return None
    print(f"# zigzag ResNet-18 on its tpu_like: energy {float(vals['zigzag_network_energy_pj']):.4g} pJ, "
          f"latency {vals['zigzag_network_latency_cycles']} cycles")
    return float(vals["zigzag_network_seconds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--layers", default=str(DEFAULT_LAYERS))
    ap.add_argument("--budget", type=int, default=30_000)
    args = ap.parse_args()
    src = Path(args.layers)
    layers = load_layers(src if src.exists() else HERE.parent / "specs/workloads/resnet18.yaml")
    if args.smoke:
        layers = layers[:3]
    print(f"# {len(layers)} layers from {src if src.exists() else 'specs/workloads/resnet18.yaml'}")
    secs = {}
    for name in ("eyeriss_like", "tpu_like"):
        arch = load_architecture(name)
        t = time.perf_counter()
        res = evaluate_network(layers, arch, budget=2000 if args.smoke else args.budget, cache=MappingCache())
        secs[name] = time.perf_counter() - t
        tot = res.totals
        print(f"{name}: {tot['layers']} layers ({tot['distinct_shapes']} distinct) in {secs[name]:.2f} s: "
              f"energy {tot['energy_pj']:.4g} pJ, {tot['cycles']:,} cycles, EDP {tot['edp_pj_cycles']:.4g} "
              f"pJ*cycles, utilization {100 * tot['utilization']:.1f}%")
    zz = None if args.smoke else zigzag_network_seconds()
    if zz:
        print(f"zigzag_network_s: {zz:.2f}")
    print(f"resnet18_eyeriss_s: {secs['eyeriss_like']:.2f}")
    print(f"resnet18_tpu_s: {secs['tpu_like']:.2f}")
    print(f"zigzag_ratio: {zz / secs['tpu_like']:.1f}" if zz else "zigzag_ratio: nan")


if __name__ == "__main__":
    main()
