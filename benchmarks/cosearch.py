"""Joint co-search against its baselines at the same evaluation budget, over several seeds.

For every seed: NSGA-II on the joint genome, the sequential design (NAS on the fixed Eyeriss-like
accelerator with half the budget, then hardware search for the chosen network), and random search,
all scored by the same evaluator (accuracy from the shipped predictor, latency / energy from the
accelerator model with every layer mapped). Hypervolume of each run's feasible evaluated points
against the space's reference point (moocore).

Then the EDP reduction against the fixed baseline design (the Eyeriss-like point at 16 bits
running the largest subnet): its EDP over that of the lowest-EDP joint design whose accuracy is at
most 0.5 points below the baseline's; and the scoring throughput with the predictor and a warm
mapping cache (every candidate of the runs scored again), next to the cold rate of the searches.

    python3 benchmarks/cosearch.py                      # 5 seeds, budget 150 (about an hour)
    python3 benchmarks/cosearch.py --smoke              # seconds: proxy accuracy, tiny budget

Resumable: every finished (seed, method) run is appended to ``--out DIR/runs.jsonl`` and the
mapping cache is saved beside it (``mapping_cache.pkl``); the same command continues where a
killed one stopped (a different configuration in DIR is refused).

The last lines are ``joint_beats_sequential: k/S``, ``joint_beats_random: k/S``,
``edp_reduction_vs_eyeriss: X``, ``candidates_per_min: N`` (warm: every candidate re-scored on
a warm mapping cache), ``cold_candidates_per_min: N`` (new candidates, a 2-worker search from
empty caches) and ``screened_candidates_per_min: N`` (the same with ``--screen 8``)."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accelerators.network import MappingCache  # noqa: E402
from codesign.search.algorithms import front_hypervolume, run_search, run_sequential  # noqa: E402
from codesign.search.problem import Evaluator, accuracy_function  # noqa: E402
from codesign.space.joint import load_space  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--mapper-budget", type=int, default=1500)
    p.add_argument("--mutation", type=float, default=0.08, help="per-gene mutation probability (every method)")
    p.add_argument("--accuracy", default="predictor", choices=("predictor", "macs"))
    p.add_argument("--space")
    p.add_argument("--out", help="results directory (default: runs/bench_cosearch, or a fresh temporary one with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny settings (CI): macs proxy, budget 8, 2 seeds")
    a = p.parse_args(argv)
    if a.smoke:
        a.seeds, a.budget, a.population, a.mapper_budget, a.accuracy = 2, 8, 4, 100, "macs"
    space = load_space(a.space)
    accuracy = accuracy_function({"source": a.accuracy})
    if a.out is None:
        import tempfile
        a.out = tempfile.mkdtemp(prefix="bench_cosearch_") if a.smoke else "runs/bench_cosearch"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"seeds_budget_pop_mapper": [a.budget, a.population, a.mapper_budget], "accuracy": a.accuracy,
              "mutation": a.mutation, "space": space.name, "predictor": _digest_predictor(a.accuracy)}
    cfg_file = out / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()) != config:
        print(f"error: {cfg_file}: another benchmark configuration is in this directory (use another --out)",
              file=sys.stderr)
        return 2
    cfg_file.write_text(json.dumps(config))
    done = {}
    runs_file = out / "runs.jsonl"
    if runs_file.exists():
        for line in runs_file.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                break                                # a torn last line (killed mid-write)
            done[(r["seed"], r["method"])] = r
        runs_file.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    cache = MappingCache()
    cache_file = out / "mapping_cache.pkl"
    if cache_file.exists():
        with open(cache_file, "rb") as fh:
            cache = pickle.load(fh)
    ev = Evaluator(space, accuracy, mapper_budget=a.mapper_budget, cache=cache)
    objectives = space.objectives
    ref = space.reference_point(objectives)
    print(f"# space {space.name}: objectives {', '.join(objectives)}; budget {a.budget} per run, population "
          f"{a.population}, mutation {a.mutation}, mapper budget {a.mapper_budget}, accuracy from {a.accuracy}; reference point {ref.tolist()}")
    methods = {
        "joint": lambda s: run_search(space, ev, algorithm="nsga2", budget=a.budget, population=a.population, seed=s,
                                    mutation=a.mutation),
        "sequential": lambda s: run_sequential(space, ev, budget=a.budget, population=a.population, seed=s,
                                               mutation=a.mutation),
        "random": lambda s: run_search(space, ev, algorithm="random", budget=a.budget, population=a.population, seed=s),
    }
    hv = {m: [] for m in methods}
    rows = {m: [] for m in methods}
    cold_s, cold_n = 0.0, 0
    for s in range(a.seeds):
        for m, run in methods.items():
            r = done.get((s, m))
            if r is None:
                t0, n0 = ev.seconds, ev.count
                res = run(s)
                r = {"seed": s, "method": m, "hypervolume": front_hypervolume(res.rows, objectives, ref),
                     "rows": res.rows, "seconds": res.seconds, "eval_seconds": ev.seconds - t0,
                     "evaluations": ev.count - n0}
                with open(runs_file, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
                tmp = cache_file.with_suffix(".tmp")
                with open(tmp, "wb") as fh:
                    pickle.dump(cache, fh)
                os.replace(tmp, cache_file)
            cold_s, cold_n = cold_s + r["eval_seconds"], cold_n + r["evaluations"]
            hv[m].append(r["hypervolume"])
            rows[m] += r["rows"]
            print(f"seed {s} {m:<11} hypervolume {hv[m][-1]:12.6g}  ({len(r['rows'])} candidates, "
                  f"{r['seconds']:6.1f} s){'  (from ' + str(runs_file) + ')' if (s, m) in done else ''}", flush=True)
    print(f"{'method':<12}{'hypervolume mean':>18}{'std':>12}")
    for m in methods:
        print(f"{m:<12}{np.mean(hv[m]):>18.6g}{np.std(hv[m]):>12.4g}")

    # EDP against the fixed Eyeriss-like design at 16 bits running the largest subnet
    base = {"net": space.net.canonical(space.net.max_genome()), "hw": space.baseline}
    bm = ev(base)
    ok = [r for r in rows["joint"] if r["metrics"]["violation"] <= 0
          and r["metrics"]["top1_pct"] >= bm["top1_pct"] - 0.5]
    best = min(ok, key=lambda r: r["metrics"]["edp_uj_ms"]) if ok else None
    print(f"# baseline (Eyeriss-like, 16 bit, largest subnet): top-1 {bm['top1_pct']:.2f}, latency "
          f"{bm['latency_ms']:.4g} ms, energy {bm['energy_uj']:.4g} uJ, EDP {bm['edp_uj_ms']:.4g} uJ*ms")
    if best:
        m = best["metrics"]
        print(f"# best joint design within 0.5 points: top-1 {m['top1_pct']:.2f}, latency {m['latency_ms']:.4g} ms, "
              f"energy {m['energy_uj']:.4g} uJ, EDP {m['edp_uj_ms']:.4g} uJ*ms; genome {best['genome']}")

    # throughput: every candidate of the runs scored again, with the predictor and the warm cache
    genomes = [r["genome"] for m in methods for r in rows[m]]
    warm = Evaluator(space, accuracy, mapper_budget=a.mapper_budget, cache=cache)
    t = time.perf_counter()
    for g in genomes:
        warm(g)
    warm_s = time.perf_counter() - t
    print(f"# cold: {cold_n} candidates in {cold_s:.1f} s ({60 * cold_n / max(cold_s, 1e-9):.0f} per min, "
          f"mapping every new layer shape x architecture); warm: {len(genomes)} in {warm_s:.2f} s")
    # the learned cost predictor (opt-in fast path) against the model on every candidate of the runs
    from codesign.artifacts import WEIGHTS_DIR
    from codesign.predictors.cost import CostPredictor
    cp_path = WEIGHTS_DIR / "cost_predictor.npz"
    if cp_path.is_file():
        cp = CostPredictor.load(cp_path)
        ok_rows = [r for m in methods for r in rows[m] if r["metrics"].get("latency_ms") is not None]
        lat, en = cp.predict([r["genome"] for r in ok_rows])
        ml = np.array([r["metrics"]["latency_ms"] for r in ok_rows])
        me = np.array([r["metrics"]["energy_uj"] for r in ok_rows])
        t = time.perf_counter()
        cp.predict(genomes)
        cp_s = time.perf_counter() - t
        print(f"# cost predictor vs model on the {len(ok_rows)} searched candidates: latency within 10%: "
              f"{np.mean(np.abs(lat / ml - 1) <= 0.1):.1%}, energy within 10%: {np.mean(np.abs(en / me - 1) <= 0.1):.1%}; "
              f"{60 * len(genomes) / cp_s:.0f} candidates/min (batched, no mapping)"
              + ("" if a.mapper_budget in (cp.meta.get("mapper_budget") or []) else
                 f"; NOT comparable: trained on mapper budget {cp.meta.get('mapper_budget')}, searched with {a.mapper_budget}"))
    cold, screened = cold_throughput(a)
    wins = lambda other: sum(j > o for j, o in zip(hv["joint"], hv[other]))
    print(f"joint_beats_sequential: {wins('sequential')}/{a.seeds}")
    print(f"joint_beats_random: {wins('random')}/{a.seeds}")
    print(f"edp_reduction_vs_eyeriss: {bm['edp_uj_ms'] / best['metrics']['edp_uj_ms'] if best else float('nan'):.3g}")
    print(f"candidates_per_min: {60 * len(genomes) / warm_s:.0f}   (warm: re-scored, every layer a cache hit)")
    print(f"cold_candidates_per_min: {cold:.0f}")
    print(f"screened_candidates_per_min: {screened:.0f}")
    return 0


def cold_throughput(a) -> tuple[float, float]:
    """New candidates per minute as a real run sees them: ``codesign search`` (population-based
    NSGA-II, the run's mapper budget, accuracy from the run's source) with 2 worker processes that
    start with empty mapping caches, in a fresh run directory; then the same with ``--screen 8``
    (multi-fidelity), counting every candidate considered: evaluated exactly or screened out."""
    import tempfile
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space_dict, name = read_space(a.space)
    ev_cfg = evaluator_config(space_dict, name, a.accuracy, mapper_budget=a.mapper_budget)
    budget = 8 if a.smoke else 64
    out = []
    for screen in (0, 8):
        cfg = search_config(ev_cfg, budget=budget, population=a.population, seed=100, mutation=a.mutation,
                            screen=screen)
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


def _digest_predictor(source: str) -> str | None:
    if source != "predictor":
        return None
    from codesign.artifacts import WEIGHTS_DIR
    f = WEIGHTS_DIR / "predictor.npz"
    return hashlib.sha256(f.read_bytes()).hexdigest()[:16] if f.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
