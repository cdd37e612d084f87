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
from .model import Evaluation, evaluate_batch, evaluate_group, group_key, result_at, tile_sizes
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


def _first_distinct(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys, return_index=True)[1]`` for the row keys of :func:`_rows_key`: the first
    occurrence of each distinct key, in the keys' byte order (a stable sort of Python bytes
    compares as numpy's void keys do; several times faster than numpy's sort of wide voids)."""
    bs = keys.tolist()
    first, prev = [], None
    for i in sorted(range(len(bs)), key=bs.__getitem__):
        if bs[i] != prev:
            first.append(i)
            prev = bs[i]
    return np.array(first, np.int64)


def map_layer(arch: Architecture, work: Workload, constraints: Constraints = FREE, *,
              objective="edp", budget: int = 30_000, seed: int = 0, time_limit: float | None = None,
              elites: int = 48, exhaustive_limit: int | None = None) -> MapResult:
    """Best mapping of ``work`` on ``arch``. ``budget`` caps cost-model evaluations."""
    return map_layers(arch, [work], [constraints], objective=objective, budget=budget, seeds=[seed],
                      time_limit=time_limit, elites=elites, exhaustive_limit=exhaustive_limit)[0]


def map_layers(arch: Architecture, works, constraints=None, *, objective="edp", budget: int = 30_000,
               seeds=None, time_limit: float | None = None, elites: int = 48,
               exhaustive_limit: int | None = None, on_done=None,
               return_errors: bool = False) -> list:
    """:func:`map_layer` for many layers on one architecture, run in lockstep: each round, the
    batches every layer's search asks for are evaluated together, one model call per group of
    layers of one structure (``model.evaluate_group``) instead of one small call per layer.
    Each layer's search is the one :func:`map_layer` runs alone (its own random stream,
    ``seeds[i]``, default 0; its own budget), so the mappings found are identical.
    ``constraints``: one per layer (default free). ``seconds`` of each result is the lockstep
    run's wall time divided evenly over its layers. ``on_done(i)``, when given, is called as
    layer ``i``'s search finishes (for progress bars; searches end in different rounds).
    A layer without a valid mapping raises its ``MappingError`` once every search has ended
    (the first such layer's); with ``return_errors`` that error takes its place in the list
    instead, so that a caller keeps the other layers' results."""
    t0 = time.perf_counter()
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise MappingError("budget", f"must be a positive integer number of evaluations, got {budget!r}")
    if isinstance(elites, bool) or not isinstance(elites, (int, np.integer)) or elites < 1:
        raise MappingError("elites", f"must be a positive integer, got {elites!r}")
    works = list(works)
    n = len(works)
    constraints = [FREE] * n if constraints is None else list(constraints)
    seeds = [0] * n if seeds is None else list(seeds)
    weights = parse_objective(objective)
    spaces = [MapSpace(arch, w, c) for w, c in zip(works, constraints)]
    searches = [_search(sp, weights, budget, np.random.default_rng(sd), t0, time_limit, elites,
                        exhaustive_limit) for sp, sd in zip(spaces, seeds)]
    keys = [group_key(w) for w in works]
    asks = {i: next(g) for i, g in enumerate(searches)}             # first batch of each search
    done = {}
    while asks:
        answers = _evaluate_asks(arch, works, keys, asks)
        nxt = {}
        for i, ans in answers.items():
            try:
                nxt[i] = searches[i].send(ans)
            except StopIteration as stop:
                done[i] = stop.value
                if on_done is not None:
                    on_done(i)
        asks = nxt
    finals, failed, out = {}, {}, []
    for i in range(n):
        best_s, best_b, evaluated, n_valid, exhaustive = done[i]
        if best_b is None or not np.isfinite(best_s):
            failed[i] = _no_mapping(spaces[i], arch, works[i], evaluated)
            if not return_errors:
                raise failed[i]
        else:
            finals[i] = best_b
    res = _evaluate_asks(arch, works, keys, finals, full=True) if finals else {}
    for r in res.values():                       # one row each: its own layer's scalars
        if isinstance(r.computes, np.ndarray):
            r.computes, r.mac_energy_pj = int(r.computes[0]), float(r.mac_energy_pj[0])
    seconds = (time.perf_counter() - t0) / max(n, 1)
    for i in range(n):
        if i in failed:
            out.append(failed[i])
            continue
        _, best_b, evaluated, n_valid, exhaustive = done[i]
        out.append(MapResult(mapping=from_batch(best_b, 0, arch, works[i]),
                             evaluation=result_at(res[i], 0, arch, works[i]), evaluated=evaluated,
                             valid=n_valid, exhaustive=exhaustive, seconds=seconds, objective=str(objective)))
    return out


def _evaluate_asks(arch, works, keys, asks: dict, full: bool = False) -> dict:
    """Evaluate every search's requested batch, the layers of one structure in one model call.
    Returns, per search, (scores, valid) or, with ``full``, its rows of the BatchResult."""
    by_key: dict = {}
    for i in asks:
        by_key.setdefault(keys[i], []).append(i)
    out = {}
    for members in by_key.values():
        if len(members) == 1:
            i = members[0]
            res = evaluate_batch(arch, works[i], asks[i])
            parts = {i: res}
        else:
            idx = {w: j for j, w in enumerate(dict.fromkeys(works[i].key() for i in members))}
            uniq = {works[i].key(): works[i] for i in members}
            group = [uniq[k] for k in idx]
            both = MappingBatch.concat([asks[i] for i in members])
            which = np.repeat([idx[works[i].key()] for i in members], [len(asks[i]) for i in members])
            res = evaluate_group(arch, group, both, which)
            cuts = np.cumsum([0] + [len(asks[i]) for i in members])
            parts = {i: _rows_of(res, slice(cuts[j], cuts[j + 1])) for j, i in enumerate(members)}
        for i, r in parts.items():
            out[i] = r if full else (r.valid, r)
    return out


def _rows_of(res, sl):
    """The rows ``sl`` of a BatchResult (per-row scalars of a group result sliced too)."""
    kw = {}
    for k, v in vars(res).items():
        kw[k] = v[sl] if isinstance(v, np.ndarray) else v
    return type(res)(**kw)


def _search(space, weights, budget, rng, t0, time_limit, elites, exhaustive_limit):
    """One layer's search as a generator: it yields the batch it wants evaluated and receives
    (valid, BatchResult) for it; it returns (best score, best batch of one, evaluations, valid
    evaluations, exhaustive). Exhaustive when the mapspace fits the budget, else :func:`_evolve`."""
    limit = budget if exhaustive_limit is None else exhaustive_limit
    size = space.size(limit=limit)
    if size <= limit:
        best_b, best_s, evaluated, n_valid = None, np.inf, 0, 0
        for chunk in space.enumerate():
            valid, res = yield chunk
            s = score(res, weights)
            evaluated += len(chunk)
            n_valid += int(valid.sum())
            i = int(np.argmin(s))
            if s[i] < best_s:
                best_s, best_b = s[i], chunk[i:i + 1]
        return best_s, best_b, evaluated, n_valid, True
    # independent islands (restarts) share the budget: the landscape has many local optima;
    # they evolve in lockstep so that each generation is one large batched evaluation
    islands = 1 if budget < 8000 else 2 if budget < 24_000 else 4
    best_s, best_b, evaluated, n_valid = yield from _evolve(space, weights, budget, rng, t0, time_limit,
                                                            elites, islands)
    return best_s, best_b, evaluated, n_valid, False


def _evolve(space, weights, budget, rng, t0, time_limit, elites, islands):
    """Islands of random + array-filling samples, then (mu + lambda) generations of mutants of
    each island's distinct elites, then steepest descent over the one-move neighbourhood of each
    island's best. A generator (see :func:`_search`); returns the best (score, batch of one,
    evaluations, valid evaluations)."""
    out_of_time = lambda: time_limit is not None and time.perf_counter() - t0 > time_limit
    evaluated = n_valid = 0

    def run(batches):
        nonlocal evaluated, n_valid
        both = MappingBatch.concat(batches)
        valid, res = yield both
        evaluated += len(both)
        n_valid += int(valid.sum())
        sc = score(res, weights)
        cuts = np.cumsum([len(b) for b in batches])[:-1]
        return np.split(sc, cuts)

    per = budget // islands
    n0 = max(min(per // 4, 20_000), min(per, 256))
    lam_max = int(np.clip(per // 10, 256, 4096))                  # children per island and generation
    pools = [MappingBatch.concat([space.sample(n0 - n0 // 2, rng)]
                                 + ([space.sample_filled(n0 // 2, rng)] if n0 >= 2 else []))
             for _ in range(islands)]
    scores = yield from run(pools)
    keys = [_rows_key(p) for p in pools]
    search_budget = budget - budget // 4                          # the last quarter polishes
    while evaluated < search_budget and not out_of_time():
        lam = max(1, min(lam_max, (search_budget - evaluated) // islands))
        news, parents_all = [], []
        for k in range(islands):
            s_, pool = scores[k], pools[k]
            first = _first_distinct(keys[k])                      # distinct rows only
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
        new_scores = yield from run(news)
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
        for b, nb, ns in zip(live, nbs, (yield from run(nbs))):
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
