#!/usr/bin/env python3
"""Where a cold co-search candidate's time goes, and the most candidates per minute the exact
model alone would allow at the default mapper budget (issue #18's 1,500 cold candidates/min).

    python3 benchmarks/candidate_floor.py [--candidates 24] [--smoke]

A serial ``codesign search`` (the default space, NSGA-II, population 16, seed 100, mutation 0.08,
the shipped accuracy predictor, mapper budget 1,500: ``benchmarks/cosearch.py --throughput``'s
settings) runs from an empty mapping cache with ``mapper.map_layers`` recorded: each candidate's
new (layer shape, accelerator) pairs. The recorded calls are then replayed on one pinned core,
from an empty ``links.choose`` memo, timing the cost model (outermost ``evaluate_batch`` calls)
apart from the rest of the mapper (sampling, mutation, selection, bookkeeping). The floor:
evaluations per candidate / the model's rate on these very calls = the model time of one
candidate; with no mapper overhead at all, 2 cores could score at most 2 x 60 / that per
minute. The last lines are ``model_share``, ``model_evals_per_s``, ``evals_per_candidate`` and
``floor_candidates_per_min_2_cores``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (one pinned core, the repository on sys.path)

import accelerators.mapper as mapper_mod  # noqa: E402
import accelerators.model as model  # noqa: E402
import accelerators.network as network  # noqa: E402


def record(candidates: int, mapper_budget: int) -> list:
    """The ``map_layers`` calls (architecture, layers, constraints, options) of a serial search."""
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space_dict, name = read_space(None)
    ev = evaluator_config(space_dict, name, "predictor", mapper_budget=mapper_budget)
    cfg = search_config(ev, budget=candidates, population=16, seed=100, mutation=0.08, screen=0)
    calls, real = [], network.map_layers

    def rec(arch, works, cons, **kw):
        calls.append((arch, list(works), list(cons), {k: v for k, v in kw.items() if k != "on_done"}))
        return real(arch, works, cons, **kw)
    network.map_layers = rec
    try:
        with tempfile.TemporaryDirectory() as d:
            start_search(Path(d) / "run", cfg, workers=0)
    finally:
        network.map_layers = real
    return calls


def replay(calls) -> tuple[float, float, int]:
    """(wall seconds, seconds in the cost model, evaluations) of mapping the recorded calls."""
    acc = {"t": 0.0, "n": 0, "depth": 0}
    real = model.evaluate_batch

    def timed(arch, work, batch, *a, **kw):
        acc["depth"] += 1
        t = time.perf_counter()
        try:
            return real(arch, work, batch, *a, **kw)
        finally:
            acc["depth"] -= 1
            if acc["depth"] == 0:                 # (the model's own nested calls count once)
                acc["t"] += time.perf_counter() - t
                acc["n"] += len(batch)
    model.evaluate_batch = mapper_mod.evaluate_batch = timed
    try:
        model.clear_choose_memo()
        t = time.perf_counter()
        for arch, works, cons, kw in calls:
            mapper_mod.map_layers(arch, works, cons, **kw)
        wall = time.perf_counter() - t
    finally:
        model.evaluate_batch = mapper_mod.evaluate_batch = real
    return wall, acc["t"], acc["n"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", type=int, default=24)
    ap.add_argument("--mapper-budget", type=int, default=1500)
    ap.add_argument("--smoke", action="store_true", help="3 candidates, mapper budget 300")
    a = ap.parse_args()
    n, budget = (3, 300) if a.smoke else (a.candidates, a.mapper_budget)
    calls = record(n, budget)
    pairs = sum(len(c[1]) for c in calls)
    wall, in_model, evals = replay(calls)
    per = wall / n
    model_per = evals / n / (evals / in_model)
    print(f"# {n} candidates of a serial search (mapper budget {budget}), {pairs} new (layer shape, "
          f"accelerator) pairs mapped in {len(calls)} map_layers calls, replayed on one core")
    print("| per candidate | seconds | share |")
    print("|---|---:|---:|")
    print(f"| mapping (map_layers) | {per:.3f} | 100% |")
    print(f"| cost model (evaluate_batch) | {in_model / n:.3f} | {in_model / wall:.0%} |")
    print(f"| mapper's own Python (sampling, mutation, selection, bookkeeping) | {(wall - in_model) / n:.3f} | "
          f"{1 - in_model / wall:.0%} |")
    print(f"# at this rate 2 cores map {2 * 60 / per:.0f} candidates/min; with no mapper overhead at all, "
          f"{2 * 60 / model_per:.0f}")
    print(f"model_share: {in_model / wall:.3f}")
    print(f"model_evals_per_s: {evals / in_model:.0f}")
    print(f"evals_per_candidate: {evals / n:.0f}")
    print(f"floor_candidates_per_min_2_cores: {2 * 60 / model_per:.0f}")


if __name__ == "__main__":
    main()
