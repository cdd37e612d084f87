"""Joint co-search against its baselines, tuned alike, over benchmark seeds (issue #20 items 4, 5).

Methods, all scored by the same evaluator and given the same budget of candidate evaluations:
``joint`` (NSGA-II on the joint genome), ``sequential`` (NAS on the fixed Eyeriss-like accelerator
with half the budget, then a hardware search for its most accurate network), ``sequential-topk``
(the same NAS, then a hardware search for each of the k most accurate networks of the NAS front,
the rest of the budget split evenly), ``random`` and, with ``--hw-only``, the hardware search for
the largest subnet.

Tuning, the same effort for every method: each method that has hyperparameters runs every
setting of a small grid (population x mutation, the same trials for each) on the development
seeds (disjoint from the benchmark seeds); the setting with the highest median hypervolume there
is recorded in the output and used on every benchmark seed. Random search has no hyperparameter
that changes what it samples (its population only groups the draws), so it runs one setting.

Per benchmark seed and method: the hypervolume of the run's feasible evaluated points (the
search's objectives and accuracy source; moocore) against the space's reference point. Reported:
every seed's value, median and interquartile range per method, and one-sided Wilcoxon
signed-rank tests (scipy, ``alternative="greater"``) of joint against each baseline.

EDP like for like (needs PyTorch and ``--data``; skipped with a note otherwise): per benchmark
seed, the lowest-EDP design of the joint run whose *measured* validation accuracy (the supernet
on the held-out training images) is within 0.5 points of the *measured* baseline (the largest
subnet on the Eyeriss-like accelerator at 16 bits), at an area no larger than the baseline's;
the baseline's EDP over that design's, median over seeds. The same with the baseline given the
best DRAM of the space. And for each chosen design the one-at-a-time breakdown: each factor
(bit-width, DRAM, network, PE array, buffer sizes, dataflow) changed alone from the baseline to
the chosen design's value, EDP ratio baseline / that design, with the exact model; the same
breakdown for each seed's most accurate measured design, with its measured accuracy gap to the
baseline, whether or not it qualifies (so the table says where the EDP goes even when the
0.5-point rule leaves no design). Candidates
are measured in EDP order (at most ``--max-measure`` per seed, those predicted within 0.5 +
``--margin`` points of the baseline's predicted accuracy); measurements are kept in
``OUT/measured.jsonl``.

Runs and chunks: every finished (phase, seed, method, setting) run is appended to
``OUT/runs.jsonl`` and its evaluated candidates to ``OUT/rows/<run>.jsonl.gz`` (about 25 kB per
200-candidate run), so the whole data set is a few MB and can be committed beside its log.
``--max-runs N`` stops after N new runs (``--max-minutes M``: starts none after M minutes); the
same command continues (a different configuration
in OUT is refused; more ``--seeds`` extends it). The mapping cache is kept in
``OUT/mapping_cache.pkl`` (speed only; not data, do not commit it).

Size of the full run (defaults: budget 200, grid 2 x 2, 3 dev seeds, 10 seeds, no hw-only):
3 x (4 + 4 + 4 + 1) = 39 tuning runs, then 10 x 4 = 40 benchmark runs, 79 runs or 15,800
candidate evaluations with the exact model. Measured 2026-12-02 on this 2-core machine shared
with other jobs (load average 4-5), from an empty mapping cache: the first runs took 290-450 s
each (30-40 cold candidates per minute), later ones 35-200 s as the shared cache warmed; the
first 28 runs took two chunks (10 runs in 42 min, 18 in 25 min), so the remaining 51 need about
1-2 hours here: chunks of ``--max-minutes 50`` (or ``--max-runs 20``) fit a
session. Then the EDP part: one measurement (the largest subnet, 16 bits, 5,000 validation
images, one torch thread) took 77 s, and 140-270 s on 500 images under that load; a few per seed
(at most ``--max-measure``), shared across seeds by ``measured.jsonl``. In chunks::

    python3 benchmarks/cosearch.py --out experiments/bench_cosearch/2026-12-02 --max-minutes 50 \\
        --data /work/shared/data/cifar10 | tee -a experiments/bench_cosearch/2026-12-02/chunk.log
    python3 benchmarks/cosearch.py --smoke              # seconds: macs proxy, cost predictor

With the runs done, the EDP step's measurements can be split over two processes (one per core),
``--edp-seeds 0,1,2,3,4`` and ``--edp-seeds 5,6,7,8,9``; they share ``measured.jsonl`` (each
re-reads it before measuring), and a last run without ``--edp-seeds`` reports every seed from it.

``--throughput`` adds ``cold_candidates_per_min:`` and ``screened_candidates_per_min:`` (a
2-worker ``codesign search`` from empty caches, without and with ``--screen 8``) before the last
lines, which are ``joint_vs_sequential_p:``, ``joint_vs_random_p:`` (one-sided Wilcoxon
p-values), ``joint_median_hv_gain_pct:`` (joint's median hypervolume over the best baseline's
median), ``edp_reduction_vs_eyeriss_median:`` and ``edp_reduction_same_dram_median:``; ``nan``
with a note where a figure is not computed (an unfinished run, no data)."""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import pickle
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accelerators.network import MappingCache  # noqa: E402
from codesign.jsonio import JsonlMemo  # noqa: E402
from codesign.search.algorithms import ALGORITHMS, front_hypervolume, run_search  # noqa: E402
from codesign.rundir.search import baseline_genome  # noqa: E402
from codesign.search.problem import Evaluator, accuracy_function, score_with  # noqa: E402
from codesign.space.joint import load_space  # noqa: E402

BASELINES = ("sequential", "sequential-topk", "random", "hw-only")
HW_FACTORS = {"bit-width": ("bits",), "DRAM": ("dram_type", "dram_bw"), "PE array": ("pe_x", "pe_y"),
              "buffer sizes": ("sizes_kib",), "dataflow": ("dataflow",)}


def floats(text):
    return [float(x) for x in str(text).split(",") if x]


def ints(text):
    return [int(x) for x in str(text).split(",") if x]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10, help="benchmark seeds 0..N-1")
    p.add_argument("--dev-seeds", type=int, default=3, help="development (tuning) seeds 1000..1000+N-1")
    p.add_argument("--budget", type=int, default=200, help="candidate evaluations per run (every method)")
    p.add_argument("--grid-population", default="12,24", help="population values tried on the dev seeds")
    p.add_argument("--grid-mutation", default="0.04,0.12", help="mutation values tried on the dev seeds")
    p.add_argument("--k", type=int, default=3, help="networks of sequential-topk")
    p.add_argument("--hw-only", action="store_true", help="also the hardware-only baseline (largest subnet)")
    p.add_argument("--mapper-budget", type=int, default=1500)
    p.add_argument("--accuracy", default="predictor", choices=("predictor", "macs"))
    p.add_argument("--predictor", metavar="FILE", help="accuracy predictor file (default: the shipped "
                   "codesign/weights/predictor.npz; codesign/weights/predictor_v1.npz reproduces the 2026-12-02 run)")
    p.add_argument("--cost", default="model", choices=("model", "predictor"),
                   help="hardware cost in the searches: the mapped model, or the learned cost predictor (fast)")
    p.add_argument("--space")
    p.add_argument("--out", help="results directory (default runs/bench_cosearch; a temporary one with --smoke)")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many new runs (a chunk)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new run after this many minutes (a chunk that fits a session)")
    p.add_argument("--data", help="CIFAR-10 root: measure accuracy for the EDP comparison (needs torch)")
    p.add_argument("--weights", help="supernet weights (default: the shipped ones)")
    p.add_argument("--measure-images", type=int, default=None, help="seeded subset of validation images")
    p.add_argument("--max-measure", type=int, default=25, help="candidates measured per seed at most")
    p.add_argument("--margin", type=float, default=3.0,
                   help="measure only designs predicted within 0.5 + this many points of the baseline's predicted top-1")
    p.add_argument("--edp-seeds", metavar="LIST", help="the EDP step for these benchmark seeds only (e.g. 5,6,7,8,9): "
                   "a second process measures them beside a first one; measured.jsonl is shared, so a later run "
                   "without it reports every seed from the stored measurements")
    p.add_argument("--floor", action="store_true", help="the EDP step also runs, per EDP seed, a joint search "
                   "(the chosen setting, same budget) with two more constraints: the baseline's search accuracy - 0.5 "
                   "as min_accuracy and the baseline's area as area_mm2, and reports its like-for-like EDP "
                   "(edp_reduction_floor_median:)")
    p.add_argument("--floor-initial", action="store_true", help="--floor runs once more per EDP seed with the "
                   "baseline design in the first generation (codesign search --initial baseline): "
                   "edp_reduction_floor_initial_median:")
    p.add_argument("--throughput", action="store_true", help="also measure cold and screened candidates per "
                   "minute (a 2-worker codesign search from empty caches, with and without --screen 8)")
    p.add_argument("--smoke", action="store_true", help="seconds (CI): macs proxy, cost predictor, budget 8, "
                   "2 seeds + 1 dev seed, a 2-setting grid")
    a = p.parse_args(argv)
    a.floor = a.floor or a.floor_initial
    if a.smoke:
        a.seeds, a.dev_seeds, a.budget, a.mapper_budget = 2, 1, 8, 100
        a.grid_population, a.grid_mutation, a.accuracy, a.cost = "4", "0.05,0.2", "macs", "predictor"
    return a


def settings(a, method) -> list[dict]:
    if method == "random":
        return [{"population": ints(a.grid_population)[-1]}]
    return [{"population": p, "mutation": m} for p in ints(a.grid_population) for m in floats(a.grid_mutation)]


def run_name(phase, seed, method, s) -> str:
    return f"{phase}_s{seed}_{method}_" + "_".join(f"{k[0]}{v}" for k, v in sorted(s.items()))


def run_method(space, ev, method, seed, s, a, initial=None):
    kw = dict(budget=a.budget, seed=seed, population=s["population"])
    if method == "random":
        return run_search(space, ev, algorithm="random", **kw)
    kw["mutation"] = s["mutation"]
    if method == "joint":
        return run_search(space, ev, algorithm="nsga2", initial=initial, **kw)
    if method == "sequential-topk":
        return ALGORITHMS[method].run(space, ev, k=a.k, **kw)
    return ALGORITHMS[method].run(space, ev, **kw)


def compact(rows) -> list[dict]:
    return [{"id": r["id"], "gen": r["generation"], "genome": r["genome"], "metrics": r["metrics"]} for r in rows]


def read_rows(out: Path, name: str) -> list[dict]:
    with gzip.open(out / "rows" / f"{name}.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def main(argv=None) -> int:
    a = parse(argv)
    space = load_space(a.space)
    if a.predictor is not None and not Path(a.predictor).is_file():
        print(f"error: {a.predictor}: --predictor: no such file", file=sys.stderr)
        return 2
    accuracy = accuracy_function({"source": a.accuracy, "predictor": a.predictor})
    if a.out is None:
        import tempfile
        a.out = tempfile.mkdtemp(prefix="bench_cosearch_") if a.smoke else "runs/bench_cosearch"
    out = Path(a.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    methods = ["joint", "sequential", "sequential-topk", "random"] + (["hw-only"] if a.hw_only else [])
    dev_seeds = list(range(1000, 1000 + a.dev_seeds))
    seeds = list(range(a.seeds))
    config = {"budget": a.budget, "dev_seeds": dev_seeds, "methods": methods, "k": a.k,
              "grid": {m: settings(a, m) for m in methods}, "mapper_budget": a.mapper_budget,
              "accuracy": a.accuracy, "cost": a.cost, "space": space.name, "predictor": _digest(a.accuracy, a.cost, a.predictor)}
    cfg_file = out / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()) != config:
        print(f"error: {cfg_file}: another benchmark configuration is in this directory (use another --out)",
              file=sys.stderr)
        return 2
    cfg_file.write_text(json.dumps(config, indent=1) + "\n")
    done, runs_file = {}, out / "runs.jsonl"
    with _runs_lock(out):             # another process on this OUT (--edp-seeds halves) appends under it
        if runs_file.exists():
            for line in runs_file.read_text().splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    break                            # a torn last line (killed mid-write)
                if (out / "rows" / f"{r['run']}.jsonl.gz").is_file():
                    done[r["run"]] = r
            runs_file.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    cache_file = out / "mapping_cache.pkl"
    cache = MappingCache()
    if cache_file.exists():
        with open(cache_file, "rb") as fh:
            cache = pickle.load(fh)
    cost = None
    if a.cost == "predictor":
        from codesign.artifacts import WEIGHTS_DIR
        from codesign.predictors.cost import CostPredictor
        cost = CostPredictor.load(WEIGHTS_DIR / "cost_predictor.npz")
    ev = Evaluator(space, accuracy, mapper_budget=a.mapper_budget, cache=cache, cost=cost)
    exact = Evaluator(space, accuracy, mapper_budget=a.mapper_budget, cache=cache)
    objectives = space.objectives
    ref = space.reference_point(objectives)
    print(f"# space {space.name}: objectives {', '.join(objectives)}, reference point {ref.tolist()}; budget "
          f"{a.budget} per run; accuracy from {a.accuracy}, cost from the {a.cost}; mapper budget {a.mapper_budget}; "
          f"dev seeds {dev_seeds}, benchmark seeds 0..{a.seeds - 1}; methods {', '.join(methods)}", flush=True)
    new, t_start = {"n": 0}, time.perf_counter()

    def get(phase, seed, method, s, sp=space, evaluator=ev, initial=None):
        name = run_name(phase, seed, method, s)
        r = done.get(name)
        if r is not None:
            return r
        if a.max_runs is not None and new["n"] >= a.max_runs:
            return None
        if a.max_minutes is not None and time.perf_counter() - t_start >= 60 * a.max_minutes:
            return None
        t0, n0, e0 = time.perf_counter(), evaluator.count, evaluator.seconds
        res = run_method(sp, evaluator, method, seed, s, a, initial)
        feas = [x for x in res.rows if x["metrics"]["violation"] <= 0]
        r = {"run": name, "phase": phase, "seed": seed, "method": method, "setting": s,
             "hypervolume": front_hypervolume(res.rows, objectives, ref), "candidates": len(res.rows),
             "feasible": len(feas), "evaluations": evaluator.count - n0,
             "eval_seconds": round(evaluator.seconds - e0, 3),
             "seconds": round(time.perf_counter() - t0, 3),
             "stages": [{k: v for k, v in st.items()} for st in res.stages]}
        tmp = out / "rows" / f"{name}.tmp"
        with gzip.open(tmp, "wt") as fh:
            for x in compact(res.rows):
                fh.write(json.dumps(x, separators=(",", ":")) + "\n")
        os.replace(tmp, out / "rows" / f"{name}.jsonl.gz")
        with _runs_lock(out), open(runs_file, "a") as fh:
            fh.write(json.dumps(r) + "\n")
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")      # one per process sharing OUT
        with open(tmp, "wb") as fh:
            pickle.dump(cache, fh)
        os.replace(tmp, cache_file)
        done[name] = r
        new["n"] += 1
        print(f"  {phase} seed {seed} {method:<16} {_fmt(s):<22} hypervolume {r['hypervolume']:12.6g}  "
              f"({r['candidates']} candidates, {r['seconds']:.1f} s)", flush=True)
        return r

    # --- tuning on the development seeds
    chosen, missing = {}, 0
    print("# tuning on the development seeds (median hypervolume per setting)")
    for m in methods:
        best = None
        for s in settings(a, m):
            hv = [r["hypervolume"] for r in (get("dev", sd, m, s) for sd in dev_seeds) if r is not None]
            if len(hv) < len(dev_seeds):
                missing += len(dev_seeds) - len(hv)
                continue
            med = float(np.median(hv))
            print(f"dev {m:<16} {_fmt(s):<22} median hypervolume {med:12.6g}  ({', '.join(f'{h:.5g}' for h in hv)})")
            if best is None or med > best[0]:
                best = (med, s)
        if best is not None and missing == 0:
            chosen[m] = best[1]
    # --- the benchmark seeds
    hv = {m: {} for m in methods}
    if len(chosen) == len(methods):
        print("# chosen settings: " + "; ".join(f"{m} {_fmt(s)}" for m, s in chosen.items()))
        for sd in seeds:
            for m in methods:
                r = get("bench", sd, m, chosen[m])
                if r is None:
                    missing += 1
                else:
                    hv[m][sd] = r["hypervolume"]
    else:
        missing += len(seeds) * len(methods)
    total = sum(len(dev_seeds) * len(settings(a, m)) for m in methods) + len(seeds) * len(methods)
    floor_runs = {}
    if a.floor and not missing:
        floor_space, floor = floor_constraints(space, exact)
        ffile = out / "floor.json"
        if ffile.exists() and json.loads(ffile.read_text()) != floor:
            print(f"error: {ffile}: other floor constraints are in this directory (use another --out)", file=sys.stderr)
            return 2
        ffile.write_text(json.dumps(floor, indent=1) + "\n")
        print(f"# floor runs: joint, {_fmt(chosen['joint'])}, budget {a.budget}, the space's constraints plus "
              f"min_accuracy {floor['min_accuracy']:.4g} (the baseline's search accuracy - 0.5) and area_mm2 "
              f"{floor['area_mm2']:.4g} (the baseline's)", flush=True)
        fev = Evaluator(floor_space, accuracy, mapper_budget=a.mapper_budget, cache=cache, cost=cost)
        base_g = baseline_genome(space)
        variants = [("floor", None)] + ([("floorinit", [base_g])] if a.floor_initial else [])
        for phase, initial in variants:
            floor_runs[phase] = {}
            for sd in _edp_seeds(a, seeds):
                r = get(phase, sd, "joint", chosen["joint"], floor_space, fev, initial)
                if r is None:
                    missing += 1
                else:
                    floor_runs[phase][sd] = r["run"]
            total += len(_edp_seeds(a, seeds))
    print(f"# runs: {len(done)} of {total} done ({new['n']} now)" + (f"; {missing} still to run: rerun the same "
                                                                       f"command to continue" if missing else ""))
    return report(a, space, exact, methods, hv, chosen, out, missing, floor_runs)


def _edp_seeds(a, seeds) -> list:
    return [sd for sd in seeds if sd in ints(a.edp_seeds)] if a.edp_seeds else list(seeds)


def floor_constraints(space, exact):
    """The space with two more constraints, from the baseline (largest subnet on the space's
    baseline accelerator): min_accuracy = its search accuracy - 0.5, area_mm2 = its area (or the
    space's own limit where lower); and those values."""
    import dataclasses
    base_g = baseline_genome(space)
    m = exact_metrics(exact, base_g)
    cons = dict(space.constraints)
    floor = {"min_accuracy": round(m["top1_pct"] - 0.5, 6),
             "area_mm2": round(min(m["area_mm2"], cons.get("area_mm2", float("inf"))), 6)}
    cons.update(floor)
    return dataclasses.replace(space, constraints=tuple(cons.items())), floor


def report(a, space, exact, methods, hv, chosen, out, missing, floor_runs=None) -> int:
    import pandas as pd
    from scipy.stats import wilcoxon
    common = sorted(set.intersection(*(set(hv[m]) for m in methods))) if all(hv[m] for m in methods) else []
    p_values, gain = {}, float("nan")
    if common:
        table = pd.DataFrame({m: [hv[m][s] for s in common] for m in methods}, index=pd.Index(common, name="seed"))
        print("# hypervolume per benchmark seed (chosen settings)")
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))
        q = table.quantile([0.25, 0.5, 0.75])
        summary = pd.DataFrame({"median": q.loc[0.5], "q25": q.loc[0.25], "q75": q.loc[0.75],
                                "iqr": q.loc[0.75] - q.loc[0.25],
                                "joint_wins": [int((table["joint"] > table[m]).sum()) if m != "joint" else np.nan
                                               for m in methods]})
        for m in methods[1:]:
            d = table["joint"] - table[m]
            p_values[m] = float("nan") if not np.any(d != 0) else float(wilcoxon(table["joint"], table[m],
                                                                                   alternative="greater").pvalue)
        summary["wilcoxon_p_joint_greater"] = [p_values.get(m, np.nan) for m in methods]
        print(f"# per method over {len(common)} seeds (one-sided Wilcoxon signed-rank: joint > method)")
        print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
        best_base = max(methods[1:], key=lambda m: summary.loc[m, "median"])
        bmed = summary.loc[best_base, "median"]
        gain = 100.0 * (summary.loc["joint", "median"] - bmed) / bmed if bmed > 0 else float("nan")
        print(f"# best baseline by median hypervolume: {best_base}")
    edp_seeds = common if not missing else sorted(hv["joint"])
    if a.edp_seeds:
        edp_seeds = _edp_seeds(a, edp_seeds)
        print(f"# EDP step for seeds {edp_seeds} only (--edp-seeds): the EDP lines below cover those seeds")
    edp, edp_dram = edp_like_for_like(a, space, exact, out, edp_seeds, floor_runs=floor_runs)
    if a.throughput:
        cold, screened = cold_throughput(a)
        print(f"cold_candidates_per_min: {cold:.0f}")
        print(f"screened_candidates_per_min: {screened:.0f}")
    note = "" if common and not missing else "   (unfinished: fewer seeds than asked; rerun to continue)"
    print(f"joint_vs_sequential_p: {p_values.get('sequential', float('nan')):.4g}{note}")
    print(f"joint_vs_random_p: {p_values.get('random', float('nan')):.4g}{note}")
    print(f"joint_median_hv_gain_pct: {gain:.3g}{note}")
    print(f"edp_reduction_vs_eyeriss_median: {edp[0]:.3g}{edp[1]}")
    print(f"edp_reduction_same_dram_median: {edp_dram[0]:.3g}{edp_dram[1]}")
    return 0


# ---------------------------------------------------------------------- EDP like for like
class Measured:
    """Measured validation top-1 of (network, bits), cached in OUT/measured.jsonl."""

    def __init__(self, a, out: Path):
        from codesign.artifacts import predictor_split, supernet_path
        from codesign.nn.supernet import load_supernet
        from codesign.rundir.verify import VALIDATION_HOLDOUT, protocol_of
        wpath = supernet_path(a.weights)
        self.protocol = protocol_of(wpath, a.measure_images)
        self.memo = JsonlMemo(out / "measured.jsonl",
                              lambda r: ((json.dumps(r["net"], sort_keys=True), r["bits"]), r["top1"])
                              if r["protocol"] == self.protocol else None, keep="last")
        self.net = load_supernet(wpath)
        self.calib, self.val = predictor_split(a.data, VALIDATION_HOLDOUT, eval_images=a.measure_images, seed=0)
        self.count = 0

    def __call__(self, net: dict, bits: int) -> float:
        """(another process of ``--edp-seeds`` may have added to measured.jsonl: a miss re-reads it)"""
        from codesign.nn.measure import measure
        key = (json.dumps(net, sort_keys=True), int(bits))
        top1 = self.memo.get(key)
        if top1 is None:
            t = time.perf_counter()
            top1 = float(measure(self.net, net, int(bits), self.calib, self.val.images, self.val.labels))
            self.count += 1
            from codesign.predictors.accuracy.protocols import verify_protocol_name
            self.memo.put(key, top1, {"net": net, "bits": int(bits), "top1": top1, "protocol": self.protocol,
                                      "protocol_name": verify_protocol_name(self.protocol),
                                      "seconds": round(time.perf_counter() - t, 1)})
        return top1


def exact_metrics(exact, genome) -> dict | None:
    out = score_with(exact, genome)
    return out["metrics"] if out["status"] == "ok" else None


def pick_design(rows, base, base_top1, measured, exact, a, predicted_pct: bool, seen=None):
    """The lowest-EDP row whose measured accuracy is within 0.5 points of ``base_top1`` at an area
    no larger than the baseline's: (row, its exact metrics, its measured top-1) or None. Rows in
    order of their (search) EDP; with a predictor, only those predicted within 0.5 + margin points
    of the baseline's *predicted* accuracy (``base["top1_pct"]``: the predictor's bias cancels)."""
    cand = [r for r in rows if r["metrics"].get("edp_uj_ms") is not None and r["metrics"]["violation"] <= 0
            and r["metrics"]["area_mm2"] <= base["area_mm2"] + 1e-12]
    if predicted_pct:
        cand = [r for r in cand if r["metrics"]["top1_pct"] >= base["top1_pct"] - 0.5 - a.margin]
    tried = 0
    for r in sorted(cand, key=lambda r: (r["metrics"]["edp_uj_ms"], r["id"])):
        if tried >= a.max_measure:
            break
        tried += 1
        top1 = measured(r["genome"]["net"], r["genome"]["hw"]["bits"])
        if seen is not None:
            seen.append((top1, r))
        if top1 >= base_top1 - 0.5:
            m = exact_metrics(exact, r["genome"])
            if m is not None and m["area_mm2"] <= base["area_mm2"] + 1e-12:
                return r, m, top1
    return None


def breakdown(space, exact, base_g, design_g) -> dict:
    """EDP ratio baseline / (the baseline with one factor changed to the design's), exact model."""
    b = exact_metrics(exact, base_g)["edp_uj_ms"]
    out = {}
    for name, keys in HW_FACTORS.items():
        hw = dict(base_g["hw"]) | {k: design_g["hw"][k] for k in keys}
        m = exact_metrics(exact, {"net": base_g["net"], "hw": hw})
        out[name] = b / m["edp_uj_ms"] if m else float("nan")
    m = exact_metrics(exact, {"net": design_g["net"], "hw": base_g["hw"]})
    out["network"] = b / m["edp_uj_ms"] if m else float("nan")
    m = exact_metrics(exact, design_g)
    out["all (the design)"] = b / m["edp_uj_ms"] if m else float("nan")
    return out


def edp_like_for_like(a, space, exact, out: Path, seeds, measured=None, floor_runs=None):
    """((median reduction vs the baseline, note), (median vs the best-DRAM baseline, note))."""
    nan = float("nan")
    if not seeds:
        return ((nan, "   (not computed: no finished joint benchmark run)"),) * 2
    if measured is None:
        if not a.data:
            note = "   (not computed: needs measured accuracy: --data CIFAR10_ROOT and PyTorch)"
            return (nan, note), (nan, note)
        try:
            import torch  # noqa: F401
        except ImportError:
            note = "   (not computed: PyTorch is not installed)"
            return (nan, note), (nan, note)
        measured = Measured(a, out)
    import pandas as pd
    base_g = baseline_genome(space)
    base = exact_metrics(exact, base_g)
    base_top1 = measured(base_g["net"], base_g["hw"]["bits"])
    drams = []
    for t in space.hw.values("dram_type"):
        for bw in space.hw.values("dram_bw"):
            g = {"net": base_g["net"], "hw": dict(base_g["hw"]) | {"dram_type": t, "dram_bw": bw}}
            m = exact_metrics(exact, g)
            if m is not None:
                drams.append((m["edp_uj_ms"], t, bw, g, m))
    _, t, bw, dram_g, dram_m = min(drams, key=lambda x: x[0])
    print(f"# EDP baseline (largest subnet, {space.baseline['dram_type']}@{space.baseline['dram_bw']}, "
          f"{space.baseline['bits']} bit, exact model): measured validation top-1 {base_top1:.2f} (search: "
          f"{base['top1_pct']:.2f}), EDP "
          f"{base['edp_uj_ms']:.4g} uJ*ms, area {base['area_mm2']:.3f} mm2; with the best DRAM ({t}@{bw}): "
          f"EDP {dram_m['edp_uj_ms']:.4g}, area {dram_m['area_mm2']:.3f}")
    per_seed, parts, closest = [], [], []
    for sd in seeds:
        rows = read_rows(out, run_name("bench", sd, "joint", _chosen(out, sd)))
        seen = []
        got = pick_design(rows, base, base_top1, measured, exact, a, a.accuracy == "predictor", seen)
        # the most accurate design the search found at an area no larger than the baseline's (by
        # its search accuracy), measured: how far the front is from the baseline's accuracy at all
        ok = [r for r in rows if r["metrics"]["violation"] <= 0 and r["metrics"].get("top1_pct") is not None
              and r["metrics"]["area_mm2"] <= base["area_mm2"] + 1e-12]
        if ok:
            top = max(ok, key=lambda r: (r["metrics"]["top1_pct"], -r["metrics"]["edp_uj_ms"], r["id"]))
            seen.append((measured(top["genome"]["net"], top["genome"]["hw"]["bits"]), top))
        got_d = pick_design(rows, dram_m, base_top1, measured, exact, a, a.accuracy == "predictor")
        rec = {"seed": sd, "reduction": nan, "reduction_same_dram": nan,
               "best_measured_top1": max(t for t, _ in seen) if seen else nan}
        if seen:
            # the seed's most accurate measured design (ties: the lower EDP): where its EDP goes,
            # whether or not it qualifies
            top1, r = max(seen, key=lambda x: (x[0], -x[1]["metrics"]["edp_uj_ms"], -x[1]["id"]))
            m = exact_metrics(exact, r["genome"])
            if m is not None:
                closest.append({"seed": sd, "top1_measured": top1, "gap": top1 - base_top1,
                                "area_mm2": m["area_mm2"],
                                **breakdown(space, exact, base_g, r["genome"])})
        if got is not None:
            r, m, top1 = got
            rec.update(reduction=base["edp_uj_ms"] / m["edp_uj_ms"], top1_measured=top1,
                       top1_search=r["metrics"]["top1_pct"], area_mm2=m["area_mm2"], bits=r["genome"]["hw"]["bits"],
                       dram=f"{r['genome']['hw']['dram_type']}@{r['genome']['hw']['dram_bw']}")
            parts.append({"seed": sd, **breakdown(space, exact, base_g, r["genome"])})
        if got_d is not None:
            rec["reduction_same_dram"] = dram_m["edp_uj_ms"] / got_d[1]["edp_uj_ms"]
        per_seed.append(rec)
    t = pd.DataFrame(per_seed).set_index("seed")
    print(f"# EDP like for like per seed (measured validation accuracy within 0.5 points, area <= the baseline's; "
          f"{measured.count if hasattr(measured, 'count') else 0} measured now; best_measured_top1: the highest "
          f"measured top-1 among the seed's designs measured, the baseline's is {base_top1:.2f})")
    print(t.to_string(float_format=lambda v: f"{v:.4g}"))
    print_breakdown(parts, "each chosen design")
    if closest:
        c = pd.DataFrame(closest).set_index("seed")
        print(f"# each seed's most accurate measured design (area <= the baseline's; it qualifies only if gap >= -0.5), "
              f"one factor at a time from the baseline: EDP(baseline) / EDP(changed); gap: measured top-1 minus "
              f"the baseline's {base_top1:.2f}")
        print(c.to_string(float_format=lambda v: f"{v:.4g}"))
        f = c.drop(columns=["top1_measured", "gap", "area_mm2"])
        print("# median per factor: " + ", ".join(f"{k} {f[k].median():.3g}" for k in f.columns))
    if a.floor:
        for phase in ("floor",) + (("floorinit",) if a.floor_initial else ()):
            floor_report(a, space, exact, out, seeds, measured, base_g, base, base_top1,
                         (floor_runs or {}).get(phase, {}), phase, dram_m)
    n_ok = int(t["reduction"].notna().sum())
    note = f"   (median over {n_ok} of {len(t)} seeds with a qualifying design)"
    nd = int(t["reduction_same_dram"].notna().sum())
    return ((float(t["reduction"].median()) if n_ok else nan, note),
            (float(t["reduction_same_dram"].median()) if nd else nan,
             f"   (baseline with {dram_g['hw']['dram_type']}@{dram_g['hw']['dram_bw']}; {nd} of {len(t)} seeds)"))


def print_breakdown(parts: list, what: str) -> None:
    """The one-factor-at-a-time table of ``parts`` (rows of ``breakdown`` with their seed) and its medians."""
    if not parts:
        return
    import pandas as pd
    b = pd.DataFrame(parts).set_index("seed")
    print(f"# one factor at a time from the baseline to {what}: EDP(baseline) / EDP(changed)")
    print(b.to_string(float_format=lambda v: f"{v:.3g}"))
    print("# median per factor: " + ", ".join(f"{c} {b[c].median():.3g}" for c in b.columns))


def floor_report(a, space, exact, out, seeds, measured, base_g, base, base_top1, floor_runs,
                 phase: str = "floor", dram_m: dict | None = None) -> None:
    """The like-for-like EDP rule on the floor runs' designs (``--floor``; phase ``floorinit``:
    those of ``--floor-initial``), per seed, and the ``edp_reduction_floor_median:`` line
    (``edp_reduction_floor_initial_median:``)."""
    label = "edp_reduction_floor_median" if phase == "floor" else "edp_reduction_floor_initial_median"
    what = "--floor" if phase == "floor" else "--floor-initial: first generation with the baseline design"
    import pandas as pd
    nan = float("nan")
    per_seed, parts = [], []
    for sd in seeds:
        if sd not in floor_runs:
            continue
        rows = read_rows(out, floor_runs[sd])
        seen = []
        got = pick_design(rows, base, base_top1, measured, exact, a, a.accuracy == "predictor", seen)
        # how near the floor the run came: the best search accuracy at an area no larger than the floor's
        in_area = [r["metrics"]["top1_pct"] for r in rows if r["metrics"].get("top1_pct") is not None
                   and r["metrics"].get("area_mm2") is not None and r["metrics"]["area_mm2"] <= base["area_mm2"] + 1e-12]
        rec = {"seed": sd, "reduction": nan, "feasible": sum(r["metrics"]["violation"] <= 0 for r in rows),
               "best_search_top1_in_area": max(in_area, default=nan),
               "measured": len(seen), "best_measured_top1": max((t for t, _ in seen), default=nan)}
        if got is not None:
            r, m, top1 = got
            rec.update(reduction=base["edp_uj_ms"] / m["edp_uj_ms"], top1_measured=top1, area_mm2=m["area_mm2"],
                       bits=r["genome"]["hw"]["bits"], dram=f"{r['genome']['hw']['dram_type']}@{r['genome']['hw']['dram_bw']}")
            if dram_m is not None and m["area_mm2"] <= dram_m["area_mm2"] + 1e-12:
                # the same design against the baseline given the space's best DRAM
                rec["reduction_vs_best_dram"] = dram_m["edp_uj_ms"] / m["edp_uj_ms"]
            parts.append({"seed": sd, **breakdown(space, exact, base_g, r["genome"])})
        per_seed.append(rec)
    if not per_seed:
        print(f"{label}: nan   (no floor run finished)")
        return
    t = pd.DataFrame(per_seed).set_index("seed")
    print(f"# floor runs ({what}): the same rule on each seed's floor run (feasible: its designs meeting every "
          "constraint; best_search_top1_in_area: the highest search accuracy at an area no larger than the "
          f"baseline's, the floor is {base['top1_pct'] - 0.5:.4g}; measured: how many the rule measured, in EDP order)")
    print(t.to_string(float_format=lambda v: f"{v:.4g}"))
    print_breakdown(parts, "each chosen floor design")
    n_ok = int(t["reduction"].notna().sum())
    med = float(t["reduction"].median()) if n_ok else nan
    if "reduction_vs_best_dram" in t:
        print(f"# against the baseline given the space's best DRAM (the same designs): median "
              f"{float(t['reduction_vs_best_dram'].median()):.3g} over {int(t['reduction_vs_best_dram'].notna().sum())} seeds")
    print(f"{label}: {med:.3g}   (median over {n_ok} of {len(t)} seeds with a qualifying design; "
          f"the seeds without one count as no reduction: "
          f"{float(t['reduction'].fillna(1.0).median()):.3g})")


def cold_throughput(a, population: int = 16, mutation: float = 0.08) -> tuple[float, float]:
    """New candidates per minute as a real run sees them: ``codesign search`` (NSGA-II, the
    benchmark's mapper budget and accuracy source) with 2 worker processes that start with empty
    mapping caches, in a fresh run directory; then the same with ``--screen 8`` (multi-fidelity),
    counting every candidate considered: evaluated exactly or screened out."""
    import tempfile
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space_dict, name = read_space(a.space)
    ev_cfg = evaluator_config(space_dict, name, a.accuracy, predictor=a.predictor, mapper_budget=a.mapper_budget)
    budget = 8 if a.smoke else 64
    out = []
    for screen in (0, 8):
        cfg = search_config(ev_cfg, budget=budget, population=population, seed=100, mutation=mutation, screen=screen)
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            res = start_search(Path(d) / "run", cfg, workers=2)
            dt = time.perf_counter() - t
        n = len(res.rows) + len(res.screened)
        print(f"# {'screened (--screen 8)' if screen else 'cold'}: {len(res.rows)} evaluated exactly"
              + (f" + {len(res.screened)} screened out" if screen else "")
              + f" in {dt:.1f} s, 2 workers, empty caches, mapper budget {a.mapper_budget}")
        out.append(60 * n / dt)
    return out[0], out[1]


@contextmanager
def _runs_lock(out: Path):
    """An exclusive lock on ``OUT/runs.lock`` while ``runs.jsonl`` is rewritten (at start) or
    appended to, so that two processes sharing OUT (``--edp-seeds`` halves) never lose a line."""
    import fcntl
    with open(out / "runs.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _chosen(out: Path, seed: int) -> dict:
    for line in (out / "runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["phase"] == "bench" and r["seed"] == seed and r["method"] == "joint":
            return r["setting"]
    raise KeyError(seed)


def _fmt(s: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in s.items())


def _digest(source: str, cost: str, predictor=None) -> str | None:
    from codesign.artifacts import WEIGHTS_DIR
    files = ([Path(predictor or WEIGHTS_DIR / "predictor.npz")] if source == "predictor" else []) + \
        ([WEIGHTS_DIR / "cost_predictor.npz"] if cost == "predictor" else [])
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()[:16] if files else None


if __name__ == "__main__":
    sys.exit(main())
