"""Differentiable search benchmark (issue #22): a lambda sweep of ``codesign darts`` on one
accelerator and bit-width, its front of measured validation top-1 against exact (mapped) latency.

    python3 benchmarks/darts.py --smoke        # seconds: synthetic data, 2 lambdas, 2 steps each
    python3 benchmarks/darts.py [--data ../shared/data/cifar10] [--lambdas 0,0.02,0.1,0.5] [--out DIR]

Last lines: ``darts_front_points:`` (the sweep's non-dominated (latency_ms, top1) points), then
``darts_vs_evolution_hv_ratio:`` (not measured yet: the comparison with NSGA-II / random search at
comparable wall time, issue #22 item 3, is still to do; it prints ``n/a`` and why) and
``hw_space_edp_vs_baseline:`` (one ``--hw-space`` co-search at the last lambda: the derived pair's
EDP over the baseline accelerator's on the same network, both mapped exactly).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (one pinned core, the repository on sys.path)

REPO = Path(__file__).resolve().parent.parent


def _synthetic(root: Path) -> Path:
    from codesign.nn.data import write_synthetic_imagefolder
    return write_synthetic_imagefolder(root, per_class=6, test_per_class=2)


def front(points):
    """Non-dominated (latency_ms, top1) points: lower latency, higher accuracy."""
    pts = sorted(points)
    out, best = [], float("-inf")
    for lat, acc in pts:
        if acc > best:
            out.append((lat, acc))
            best = acc
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10"), help="data set root")
    ap.add_argument("--lambdas", default="0,0.02,0.1,0.5", help="comma list of lambdas")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per sub-run")
    ap.add_argument("--steps-per-epoch", type=int, default=40, help="steps per epoch")
    ap.add_argument("--out", help="sweep directory (default: a temporary one)")
    ap.add_argument("--smoke", action="store_true", help="synthetic data, 2 lambdas, 2 steps: seconds")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from codesign.darts.run import DartsConfig, sweep_lambdas
    from codesign.space.joint import load_space
    sp = load_space()
    tmp = Path(tempfile.mkdtemp(prefix="darts_bench_"))
    out = Path(args.out) if args.out else tmp / "sweep"
    if args.smoke:
        cfg = DartsConfig(data=str(_synthetic(tmp / "data")), hw=dict(sp.baseline, bits=8), epochs=1,
                          steps_per_epoch=2, batch=4, holdout=20, resolution=24, mapper_budget=60, eval_images=None)
        lambdas = [0.0, 5.0]
    else:
        cfg = DartsConfig(data=args.data, hw=dict(sp.baseline, bits=8), epochs=args.epochs,
                          steps_per_epoch=args.steps_per_epoch)
        lambdas = [float(v) for v in args.lambdas.split(",")]
    t = time.time()
    results = sweep_lambdas(cfg, lambdas, out, progress=False, log=lambda *a: None)
    for r in results:
        print(f"lambda {r['lambda']:g}: top1_val {r['top1_val_pct']:.2f}%  latency {r['latency_ms']:.4f} ms  "
              f"energy {r['energy_uj']:.2f} uJ  genome {json.dumps(r['genome'])}")
    print(f"# {len(results)} sub-runs in {time.time() - t:.0f} s" + (f"; sweep in {out}" if args.out else ""))
    from dataclasses import replace
    from codesign.darts.run import run_darts
    hw_cfg = replace(cfg, hw_space=True, lam=lambdas[-1], surrogate_samples=200 if args.smoke else 3000)
    hw_res = run_darts(hw_cfg, out / "hw_space", progress=False, log=lambda *a: None)
    print(f"# --hw-space: accelerator {json.dumps(hw_res['hw'])}, area {hw_res['area_mm2']:.2f} mm^2 "
          f"(within the space's limit: {hw_res['within_area_limit']}); network {json.dumps(hw_res['genome'])}")
    pts = front([(r["latency_ms"], r["top1_val_pct"]) for r in results])
    print("darts_front_points: " + " ".join(f"({lat:.4f} ms, {acc:.2f}%)" for lat, acc in pts))
    print("darts_vs_evolution_hv_ratio: n/a (the comparison with NSGA-II and random search is not implemented yet)")
    print(f"hw_space_edp_vs_baseline: {hw_res['edp_vs_baseline']:.4f} (EDP of the co-searched pair / the baseline "
          "accelerator running the same network, both mapped exactly)")
    if not args.out:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
