"""The mapper: the best mapping of one layer on one architecture, fast.

Exhaustive when the (constrained, pruned) mapspace fits the budget; otherwise random sampling
followed by an evolutionary local search ((mu + lambda) over factor moves, loop swaps and bypass
flips) on the batched cost model. Deterministic for a seed; stops at its evaluation budget or
time limit; says why when no valid mapping exists.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .arch import Architecture
from .constraints import FREE, Constraints
from .errors import MappingError
from .mapping import Mapping, MappingBatch, check_batch, from_batch
from .mapspace import MapSpace
from .model import Evaluation, evaluate_batch, result_at, tile_sizes
from .workload import Workload

OBJECTIVES = {"edp": (1.0, 1.0), "energy": (1.0, 1e-6), "latency": (1e-6, 1.0),
              "delay": (1e-6, 1.0), "cycles": (1e-6, 1.0)}


def parse_objective(obj) -> tuple[float, float]:
    """'edp' | 'energy' | 'latency' | 'energy=1,latency=2' (minimizes energy^a * cycles^b)."""
    if isinstance(obj, (tuple, list)):
        return float(obj[0]), float(obj[1])
    if obj in OBJECTIVES:
        return OBJECTIVES[obj]
    try:
        parts = dict(p.split("=") for p in str(obj).split(","))
        a = float(parts.pop("energy", 0.0))
        b = float(parts.pop("latency", parts.pop("cycles", 0.0)))
        if parts or (a <= 0 and b <= 0):
            raise ValueError
        return a, b
    except ValueError:
        raise MappingError("objective", f"unknown objective {obj!r} (edp, energy, latency, or "
                           "weights like 'energy=1,latency=2')") from None


def score(res, weights) -> np.ndarray:
    a, b = weights
    s = a * np.log(res.energy_pj) + b * np.log(res.cycles.astype(float))
    return np.where(res.valid, s, np.inf)


@dataclass
class MapResult:
    mapping: Mapping
    evaluation: Evaluation
    evaluated: int
    valid: int
    exhaustive: bool
    seconds: float
    objective: str

    @property
    def edp(self) -> float:
        return self.evaluation.edp


def _rows_key(b: MappingBatch) -> np.ndarray:
    flat = np.concatenate([b.tf.reshape(len(b), -1), b.sx.reshape(len(b), -1), b.sy.reshape(len(b), -1),
                           b.perm.reshape(len(b), -1), b.keep.reshape(len(b), -1).astype(np.int64)], axis=1)
    return np.ascontiguousarray(flat).view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1])))[:, 0]


def map_layer(arch: Architecture, work: Workload, constraints: Constraints = FREE, *,
              objective="edp", budget: int = 30_000, seed: int = 0, time_limit: float | None = None,
              elites: int = 48, exhaustive_limit: int | None = None) -> MapResult:
    """Best mapping of ``work`` on ``arch``. ``budget`` caps cost-model evaluations."""
    t0 = time.perf_counter()
    weights = parse_objective(objective)
    space = MapSpace(arch, work, constraints)
    rng = np.random.default_rng(seed)
    limit = budget if exhaustive_limit is None else exhaustive_limit
    best_b, best_s, evaluated, n_valid = None, np.inf, 0, 0

    size = space.size(limit=limit)
    if size <= limit:
        for chunk in space.enumerate():
            res = evaluate_batch(arch, work, chunk)
            s = score(res, weights)
            evaluated += len(chunk)
            n_valid += int(res.valid.sum())
            i = int(np.argmin(s))
            if s[i] < best_s:
                best_s, best_b = s[i], chunk[i:i + 1]
        exhaustive = True
    else:
        exhaustive = False
        # independent islands (restarts) share the budget: the landscape has many local optima;
        # they evolve in lockstep so that each generation is one large batched evaluation
        islands = 1 if budget < 8000 else 2 if budget < 24_000 else 4
        best_s, best_b, evaluated, n_valid = _evolve(space, arch, work, weights, budget, rng, t0,
                                                     time_limit, elites, islands)
    if best_b is None or not np.isfinite(best_s):
        raise _no_mapping(space, arch, work, evaluated)
    res = evaluate_batch(arch, work, best_b)
    return MapResult(mapping=from_batch(best_b, 0, arch, work), evaluation=result_at(res, 0, arch, work),
                     evaluated=evaluated, valid=n_valid, exhaustive=exhaustive,
                     seconds=time.perf_counter() - t0, objective=str(objective))


def _evolve(space, arch, work, weights, budget, rng, t0, time_limit, elites, islands):
    """Islands of random + array-filling samples, then (mu + lambda) generations of mutants of
    each island's distinct elites, then steepest descent over the one-move neighbourhood of each
    island's best. Returns the best (score, batch of one, evaluations, valid evaluations)."""
    out_of_time = lambda: time_limit is not None and time.perf_counter() - t0 > time_limit
    evaluated = n_valid = 0

    def run(batches):
        nonlocal evaluated, n_valid
        both = MappingBatch.concat(batches)
        res = evaluate_batch(arch, work, both)
        evaluated += len(both)
        n_valid += int(res.valid.sum())
        sc = score(res, weights)
        cuts = np.cumsum([len(b) for b in batches])[:-1]
        return np.split(sc, cuts)

    per = budget // islands
    n0 = max(min(per // 4, 20_000), min(per, 256))
    lam_max = int(np.clip(per // 10, 256, 4096))                  # children per island and generation
    pools = [MappingBatch.concat([space.sample(n0 - n0 // 2, rng), space.sample_filled(n0 // 2, rng)])
             for _ in range(islands)]
    scores = run(pools)
    keys = [_rows_key(p) for p in pools]
    search_budget = budget - budget // 4                          # the last quarter polishes
    while evaluated < search_budget and not out_of_time():
        lam = max(1, min(lam_max, (search_budget - evaluated) // islands))
        news, parents_all = [], []
        for k in range(islands):
            s_, pool = scores[k], pools[k]
            _, first = np.unique(keys[k], return_index=True)      # distinct rows only
            order = first[np.argsort(s_[first], kind="stable")]
            order = order[np.isfinite(s_[order])][:elites]
            if len(order) == 0:                                   # nothing valid yet: resample
                news.append(space.sample(lam, rng))
                parents_all.append(None)
                continue
            idx = rng.integers(0, len(order), lam)                # half from the top quarter
            idx[: lam // 2] = rng.integers(0, max(1, len(order) // 4), lam // 2)
            parents = pool[order]
            news.append(space.mutate(parents[idx], rng, moves=1 + int(rng.random() < 0.3)))
            parents_all.append((parents, s_[order], keys[k][order]))
        new_scores = run(news)
        for k in range(islands):
            if parents_all[k] is None:
                pools[k], scores[k], keys[k] = news[k], new_scores[k], _rows_key(news[k])
            else:
                parents, ps, pk = parents_all[k]
                pools[k] = MappingBatch.concat([parents, news[k]])
                scores[k] = np.concatenate([ps, new_scores[k]])
                keys[k] = np.concatenate([pk, _rows_key(news[k])])
    bests = []
    for k in range(islands):
        i = int(np.argmin(scores[k]))
        if np.isfinite(scores[k][i]):
            bests.append([scores[k][i], pools[k][i:i + 1], True])
    while bests and evaluated < budget and not out_of_time():
        live = [b for b in bests if b[2]]
        if not live:
            break
        nbs = [space.neighbors(b[1]) for b in live]
        room = max(1, (budget - evaluated) // len(nbs))
        nbs = [nb if len(nb) <= room else nb[np.sort(rng.choice(len(nb), room, replace=False))] for nb in nbs]
        for b, nb, ns in zip(live, nbs, run(nbs)):
            k = int(np.argmin(ns))
            if ns[k] < b[0] - 1e-12:
                b[0], b[1] = ns[k], nb[k:k + 1]
            else:
                b[2] = False                                      # a local optimum
    if not bests:
        return np.inf, None, evaluated, n_valid
    best = min(bests, key=lambda b: b[0])
    return best[0], best[1], evaluated, n_valid


def _no_mapping(space: MapSpace, arch, work, evaluated) -> MappingError:
    """Why nothing is valid: the smallest-tile mapping's own reasons, else the budget."""
    m = space.minimal()
    ok, why = check_batch(m, arch, work, tile_sizes(m, arch, work))
    if not ok[0]:
        field, msg = why(0)[0]
        return MappingError(field, f"no valid mapping of {work.name} on {arch.name}: even the smallest "
                            f"tiles fail: {msg}")
    return MappingError("mapping", f"no valid mapping of {work.name} on {arch.name} found in {evaluated} "
                        "evaluations (raise --budget)")
