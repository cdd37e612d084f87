"""Differentiable search benchmark (issue #22): a lambda sweep of ``codesign darts`` against NSGA-II
(accuracy predictor) and random search, on one accelerator and bit-width at one resolution, at
comparable wall time; every method's front re-measured the same way.

    python3 benchmarks/darts.py --smoke        # < 1 minute: synthetic data, 2 lambdas x 2 steps, 2 s searches
    python3 benchmarks/darts.py [--data ../shared/data/cifar10] [--lambdas 0,0.02,0.1,0.5] [--out DIR]

What it does:
1. DARTS: one ``codesign darts`` sub-run per lambda (the sweep's search seconds, look-up table
   included, measurement excluded, are the time the other methods get).
2. NSGA-II and random search (``run_search`` with ``fixed_hw``: a network-only search on the same
   accelerator, the same bit-width, the resolution fixed as DARTS', objectives (accuracy, latency),
   accuracy from the shipped predictor, latency mapped exactly) with ``time_limit_s`` = those seconds.
3. Each method's front (DARTS: its derived genomes; the others: their predicted front, at most
   ``--max-measured`` designs spread over latency) is measured on the supernet with the shipped
   weights, on the same ``--eval-images`` validation images (held-out training images, never the
   test split) at the bit-width, and its latency mapped exactly. The hypervolume of each
   method's (measured top-1, exact latency) points is taken against one fixed ``--reference``.
4. One ``--hw-space`` co-search (the accelerator relaxed too) against the baseline accelerator
   running the same network.

Writes OUT/compare.json, OUT/compare.png, OUT/darts_front.csv, OUT/measured.jsonl (every
measurement, reused by a rerun) and the sub-runs under OUT/darts and
OUT/hw_space. Last lines: ``darts_vs_random_hv_ratio:``, ``darts_front_points:`` (DARTS' measured
non-dominated (latency_ms, top1) points), ``darts_vs_evolution_hv_ratio:`` (DARTS HV / NSGA-II HV)
and ``hw_space_edp_vs_baseline:``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import _common  # noqa: F401  (one pinned core, the repository on sys.path)

import numpy as np

from codesign.jsonio import JsonlMemo  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OBJECTIVES = ("accuracy", "latency")


def _synthetic(root: Path) -> Path:
    from codesign.nn.data import write_synthetic_imagefolder
    return write_synthetic_imagefolder(root, per_class=6, test_per_class=2)


def front(points):
    """Non-dominated (latency_ms, top1) points: lower latency, higher accuracy (O(n log n))."""
    pts = sorted(points, key=lambda p: (p[0], -p[1]))
    out, best = [], float("-inf")
    for lat, acc in pts:
        if acc > best:
            out.append((lat, acc))
            best = acc
    return out


def hv(points, ref) -> float:
    """Hypervolume of (latency_ms, top1) points against ref = (top1 floor, latency ceiling), in
    %-points x ms."""
    from codesign.search.nsga2 import hypervolume
    if not points:
        return 0.0
    F = np.array([[-acc, lat] for lat, acc in points], float)
    return hypervolume(F, np.array([-ref[0], ref[1]], float))


def spread(rows, k: int, key):
    """At most ``k`` of ``rows`` spread evenly over ``key`` (both ends kept)."""
    rows = sorted(rows, key=key)
    if len(rows) <= k:
        return rows
    idx = sorted(set(int(round(i)) for i in np.linspace(0, len(rows) - 1, k)))
    return [rows[i] for i in idx]


def collapse_stats(traj_path: Path, space) -> dict:
    """From the last trajectory row: how far the categoricals went to the smallest choices."""
    from codesign.darts.lut import op_choices
    from codesign.darts.run import read_trajectory
    rows = read_trajectory(traj_path)
    if not rows:
        return {}
    last = rows[-1]
    op = np.array(last["probs"]["op"])
    dp = np.array(last["probs"]["depth"])
    ch = op_choices(space)
    smallest = ch.index((min(space.kernels), min(space.expands)))
    ent = lambda p: float(-(p * np.log(np.clip(p, 1e-12, None))).sum(-1).mean())
    return {"steps": last["step"], "p_depth_min_mean": round(float(dp[:, 0].mean()), 4),
            "depth_entropy": round(ent(dp), 4), "op_entropy": round(ent(op), 4),
            "op_max_prob": round(float(op.max()), 4), "p_op_smallest_mean": round(float(op[:, smallest].mean()), 4),
            "expected_kernel": round(float((op @ np.array([c[0] for c in ch], float)).mean()), 3),
            "expected_expand": round(float((op @ np.array([c[1] for c in ch], float)).mean()), 3),
            "expected_depth": round(float((dp @ np.array(space.depths, float)).mean()), 3)}


class Measurer:
    """Top-1 on the same validation images for every design (the shipped supernet weights, BN
    recalibrated, fake-quantized at the bit-width), and exact latency / energy on the accelerator;
    cached per genome."""

    def __init__(self, cfg, space, cache_path: Path | None = None, calib_batches: int = 8):
        import torch
        from codesign.artifacts import supernet_path
        from codesign.darts.run import measurement_set
        from codesign.nn.supernet import load_supernet
        from codesign.search.problem import MappedCost
        torch.set_num_threads(1)
        self.cfg, self.space = cfg, space
        self.calib, self.hold = measurement_set(cfg)
        self.net = load_supernet(supernet_path(cfg.weights)).eval()
        self.cost = MappedCost(cfg.mapper_budget)
        self.seconds = 0.0
        self.calib_batches = calib_batches
        # OUT/measured.jsonl: every measurement as it is made (a rerun, or a second process measuring
        # designs of a finished sub-run in parallel, fills it; only rows of the same protocol count)
        self.tag = {"bits": cfg.bits, "eval_images": len(self.hold), "seed": cfg.seed, "weights": cfg.weights,
                    "mapper_budget": cfg.mapper_budget, "hw": cfg.hw, "data": str(cfg.data)}
        if calib_batches != 8:                       # (--smoke: fewer BN calibration batches)
            self.tag["calib_batches"] = calib_batches
        self.memo = JsonlMemo(cache_path, lambda row: (row["key"], row["metrics"]) if row.get("tag") == self.tag
                              else None)

    def __call__(self, genome: dict) -> dict:
        from codesign.nn.measure import measure
        key = json.dumps(genome, sort_keys=True)
        got = self.memo.get(key)
        if got is None:
            t = time.time()
            top1 = measure(self.net, genome, self.cfg.bits, self.calib, self.hold.images, self.hold.labels,
                           calib_batches=self.calib_batches, seed=self.cfg.seed)
            m = self.cost.metrics(self.space, genome, self.cfg.hw)
            got = {"top1_measured_pct": float(top1), "latency_ms": m["latency_ms"],
                   "energy_uj": m["energy_uj"], "measure_s": round(time.time() - t, 1)}
            self.seconds += time.time() - t
            self.memo.put(key, got, {"key": key, "tag": self.tag, "metrics": got})
        return dict(got)


def run_evolutionary(algorithm: str, space, cfg, seconds: float, population: int, seed: int,
                     mutation: float, crossover: float, predictor=None):
    from codesign.search.algorithms import pareto_front, run_search
    from codesign.search.problem import Evaluator, accuracy_function
    ev = Evaluator(space, accuracy_function({"source": "predictor", "predictor": predictor}),
                   mapper_budget=cfg.mapper_budget)
    t = time.time()
    res = run_search(space, ev, algorithm=algorithm, budget=10**9, population=population, seed=seed,
                     mutation=mutation, crossover=crossover, objectives=OBJECTIVES, fixed_hw=cfg.hw,
                     time_limit_s=seconds)
    wall = time.time() - t
    t = time.time()
    fr = pareto_front(res.rows, OBJECTIVES)
    front_s = time.time() - t
    return res, fr, wall, front_s


def plot(path: Path, methods: dict, ref, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    style = {"darts": ("C3", "o"), "nsga2": ("C0", "s"), "random": ("C2", "^")}
    for name, m in methods.items():
        c, mk = style.get(name, ("k", "x"))
        pts = [(d["latency_ms"], d["top1_measured_pct"]) for d in m["measured"]]
        if m.get("predicted_front"):
            pf = sorted(m["predicted_front"])
            ax.plot([p[0] for p in pf], [p[1] for p in pf], color=c, lw=0.8, ls=":", alpha=0.7,
                    label=f"{name} predicted front")
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=c, marker=mk, alpha=0.5, s=22)
        fr = front(pts)
        if fr:
            xs, ys = [], []
            for i, (lat, acc) in enumerate(fr):          # staircase to the reference
                xs += [lat, fr[i + 1][0] if i + 1 < len(fr) else ref[1]]
                ys += [acc, acc]
            ax.plot(xs, ys, color=c, lw=1.5, drawstyle="steps-post",
                    label=f"{name}: HV {m['hypervolume']:.2f} ({len(pts)} measured)")
            ax.scatter([p[0] for p in fr], [p[1] for p in fr], color=c, marker=mk, s=40)
    ax.axhline(ref[0], color="grey", lw=0.5)
    ax.axvline(ref[1], color="grey", lw=0.5)
    ax.set_xlabel("latency (ms, every layer mapped)")
    ax.set_ylabel("top-1 (%, validation, measured)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10"), help="data set root")
    ap.add_argument("--lambdas", default="0,0.02,0.1,0.5", help="comma list of lambdas (the DARTS sweep)")
    ap.add_argument("--epochs", type=int, default=2, help="DARTS epochs per sub-run")
    ap.add_argument("--steps-per-epoch", type=int, default=40, help="DARTS steps per epoch")
    ap.add_argument("--warmup-epochs", type=int, default=0, help="DARTS warm-up epochs (weights only)")
    ap.add_argument("--entropy-reg", type=float, default=0.0, help="DARTS entropy regularization")
    ap.add_argument("--bits", type=int, default=8, help="bit-width (accelerator and measurement)")
    ap.add_argument("--eval-images", type=int, default=2000, help="validation images every design is measured on")
    ap.add_argument("--max-measured", type=int, default=4, help="designs measured per method (spread over latency)")
    ap.add_argument("--reference", default="75,4.0", help="hypervolume reference: top-1 %% floor, latency ms ceiling")
    ap.add_argument("--time-limit", type=float, help="seconds for NSGA-II and random each (default: the DARTS "
                    "sweep's search seconds)")
    ap.add_argument("--population", type=int, default=24, help="NSGA-II / random population")
    ap.add_argument("--mutation", type=float, default=0.08, help="NSGA-II per-gene mutation probability")
    ap.add_argument("--crossover", type=float, default=0.9, help="NSGA-II crossover probability")
    ap.add_argument("--seed", type=int, default=0, help="seed of every method")
    ap.add_argument("--predictor", help="accuracy predictor of NSGA-II and random search (default: the shipped "
                    "codesign/weights/predictor.npz; codesign/weights/predictor_v1.npz for the 2026-12-03 figures)")
    ap.add_argument("--hw-lambda", type=float, default=0.1, help="lambda of the --hw-space co-search")
    ap.add_argument("--out", help="output directory (default: a temporary one)")
    ap.add_argument("--smoke", action="store_true", help="synthetic data, tiny runs: well under a minute")
    args = ap.parse_args(argv)
    if args.predictor is not None and not Path(args.predictor).is_file():
        print(f"error: {args.predictor}: --predictor: no such file", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(1)
    from codesign.darts.run import DartsConfig, run_darts, sweep_lambdas
    from codesign.space.joint import load_space
    t_all = time.time()
    sp = load_space()
    ref = tuple(float(v) for v in args.reference.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="darts_bench_"))
    out = Path(args.out) if args.out else tmp / "out"
    out.mkdir(parents=True, exist_ok=True)
    hw = dict(sp.baseline, bits=args.bits)
    if args.smoke:
        cfg = DartsConfig(data=str(_synthetic(tmp / "data")), hw=hw, bits=args.bits, epochs=1, steps_per_epoch=2,
                          batch=4, holdout=20, resolution=24, mapper_budget=60, eval_images=None)
        lambdas, max_measured, surrogate = [0.0, 5.0], min(args.max_measured, 2), 200
        if args.reference == ap.get_default("reference"):
            ref = (0.0, 10.0)                    # synthetic data: top-1 far under any real floor
    else:
        cfg = DartsConfig(data=args.data, hw=hw, bits=args.bits, epochs=args.epochs,
                          steps_per_epoch=args.steps_per_epoch, eval_images=args.eval_images,
                          warmup_epochs=args.warmup_epochs, entropy_reg=args.entropy_reg, seed=args.seed)
        lambdas, max_measured, surrogate = [float(v) for v in args.lambdas.split(",")], args.max_measured, 3000
    # the network space at DARTS' resolution (NSGA-II and random search the same choices)
    space = replace(sp, net=replace(sp.net, resolutions=(cfg.resolution,)))

    # 1. the DARTS sweep
    t = time.time()
    results = sweep_lambdas(cfg, lambdas, out / "darts", progress=False, log=lambda *a: None)
    darts_wall = time.time() - t
    darts_search_s = sum(r["search_s"] for r in results)
    print(f"# DARTS sweep: {len(results)} lambdas, search {darts_search_s:.0f} s (wall {darts_wall:.0f} s with "
          "each sub-run's own measurement)", flush=True)
    seconds = args.time_limit if args.time_limit is not None else darts_search_s
    if args.smoke:
        seconds = min(seconds, 2.0)

    # 2. NSGA-II and random search at the same seconds
    evo = {}
    for alg in ("nsga2", "random"):
        res, fr, wall, front_s = run_evolutionary(alg, space, cfg, seconds, args.population, args.seed,
                                                  args.mutation, args.crossover, predictor=args.predictor)
        evo[alg] = (res, fr)
        print(f"# {alg}: {len(res.rows)} candidates in {wall:.0f} s (limit {seconds:.0f} s); predicted front "
              f"{len(fr)} designs (front extraction {front_s:.3f} s)", flush=True)

    # 3. every front measured the same way
    meas = Measurer(cfg, space, out / "measured.jsonl", calib_batches=2 if args.smoke else 8)
    methods = {}
    dsel = {}
    for r in results:                            # distinct derived genomes (lambda order)
        dsel.setdefault(json.dumps(r["genome"], sort_keys=True), r)
    drows = spread(list(dsel.values()), max_measured, key=lambda r: r["latency_ms"])
    dm = []
    for r in drows:
        m = meas(r["genome"])
        dm.append({"lambda": r["lambda"], "genome": r["genome"], **m, "top1_own_weights_pct": r["top1_val_pct"],
                   "lut_latency_ms": r["lut_latency_ms"]})
    methods["darts"] = {"search_s": round(darts_search_s, 1), "wall_s": round(darts_wall, 1),
                        "designs": len(results), "distinct_designs": len(dsel), "measured": dm}
    for alg, (res, fr) in evo.items():
        sel = spread(fr, max_measured, key=lambda r: r["metrics"]["latency_ms"])
        ms = []
        for r in sel:
            m = meas(r["genome"]["net"])
            ms.append({"genome": r["genome"]["net"], **m, "top1_predicted_pct": r["metrics"]["top1_pct"],
                       "latency_ms_search": r["metrics"]["latency_ms"]})
        methods[alg] = {"search_s": round(res.seconds, 1), "candidates": len(res.rows), "predicted_front_size": len(fr),
                        "predicted_front": [(r["metrics"]["latency_ms"], r["metrics"]["top1_pct"]) for r in fr],
                        "measured": ms}
    for name, m in methods.items():
        pts = [(d["latency_ms"], d["top1_measured_pct"]) for d in m["measured"]]
        m["front"] = front(pts)
        m["hypervolume"] = hv(pts, ref)
        print(f"# {name}: measured {len(pts)} designs, front {len(m['front'])}, HV {m['hypervolume']:.3f}", flush=True)
    print(f"# measurement: {len(meas.memo.cache)} distinct designs in {meas.seconds:.0f} s", flush=True)

    # collapse: the sweep's final probabilities
    for r, lam in zip(results, lambdas):
        r["collapse"] = collapse_stats(out / "darts" / f"lambda_{lam:g}" / "trajectory.jsonl", sp.net)
    with open(out / "darts_front.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lambda", "top1_measured_pct", "top1_own_weights_pct", "latency_ms", "energy_uj",
                    "p_depth_min_mean", "op_entropy", "search_s", "genome"])
        for r in results:
            m = meas(r["genome"]) if json.dumps(r["genome"], sort_keys=True) in meas.memo else {}
            c = r["collapse"]
            w.writerow([f"{r['lambda']:g}", f"{m['top1_measured_pct']:.2f}" if m else "",
                        f"{r['top1_val_pct']:.2f}", f"{r['latency_ms']:.5f}", f"{r['energy_uj']:.3f}",
                        c.get("p_depth_min_mean", ""), c.get("op_entropy", ""), r["search_s"],
                        json.dumps(r["genome"])])

    # 4. the differentiable co-search of the accelerator too
    hw_cfg = replace(cfg, hw_space=True, lam=args.hw_lambda, surrogate_samples=surrogate)
    hw_res = run_darts(hw_cfg, out / "hw_space", progress=False, log=lambda *a: None)
    print(f"# --hw-space: accelerator {json.dumps(hw_res['hw'])}, area {hw_res['area_mm2']:.2f} mm^2 "
          f"(within the limit: {hw_res['within_area_limit']}), on-chip {hw_res['onchip_kib']:.1f} KiB (within the "
          f"limit: {hw_res['within_onchip_limit']}); network {json.dumps(hw_res['genome'])}; search "
          f"{hw_res['search_s']:.0f} s", flush=True)

    h = {k: methods[k]["hypervolume"] for k in methods}
    ratio = lambda a, b: (h[a] / h[b]) if h[b] > 0 else float("nan")
    summary = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": args.smoke,
        "accelerator": hw, "bits": args.bits, "resolution": cfg.resolution, "lambdas": lambdas,
        "darts_config": cfg.to_json(), "seconds_per_method": round(seconds, 1), "reference": list(ref),
        "eval_images": len(meas.hold), "max_measured": max_measured,
        "evolution": {"population": args.population, "mutation": args.mutation, "crossover": args.crossover,
                      "seed": args.seed, "accuracy": args.predictor or "shipped predictor", "latency": "mapped exactly",
                      "objectives": list(OBJECTIVES)},
        "methods": methods,
        "darts_runs": [{"lambda": r["lambda"], "genome": r["genome"], "top1_own_weights_pct": r["top1_val_pct"],
                        "latency_ms": r["latency_ms"], "energy_uj": r["energy_uj"], "search_s": r["search_s"],
                        "collapse": r["collapse"]} for r in results],
        "hw_space": {k: hw_res[k] for k in ("genome", "hw", "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2",
                                            "onchip_kib", "within_area_limit", "within_onchip_limit",
                                            "edp_vs_baseline", "baseline_hw", "top1_val_pct", "search_s", "lambda")},
        "hv_ratio_darts_vs_nsga2": ratio("darts", "nsga2"), "hv_ratio_darts_vs_random": ratio("darts", "random"),
        "total_s": round(time.time() - t_all, 1),
    }
    (out / "compare.json").write_text(json.dumps(summary, indent=1) + "\n")
    try:
        plot(out / "compare.png", methods, ref, f"CIFAR-10, baseline accelerator at {args.bits} bits, r={cfg.resolution};\n"
             f"{seconds:.0f} s per method; top-1 on {len(meas.hold)} validation images")
    except ImportError:
        pass
    print(f"# written: {out}/compare.json, compare.png, darts_front.csv; total {time.time() - t_all:.0f} s")
    print(f"darts_vs_random_hv_ratio: {summary['hv_ratio_darts_vs_random']:.4f}")
    print("darts_front_points: " + " ".join(f"({lat:.4f} ms, {acc:.2f}%)" for lat, acc in methods["darts"]["front"]))
    print(f"darts_vs_evolution_hv_ratio: {summary['hv_ratio_darts_vs_nsga2']:.4f}")
    print(f"hw_space_edp_vs_baseline: {hw_res['edp_vs_baseline']:.4f}")
    if not args.out:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
