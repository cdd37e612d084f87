"""NSGA-II's two ranking operators (Deb et al., IEEE TEC 2002), on minimization objectives:
fast non-dominated sorting with constrained domination (a feasible point beats an infeasible one;
of two infeasible points the smaller violation wins) and crowding distance; plus the survivor
selection that combines them. Hypervolume comes from moocore, not from here."""
from __future__ import annotations

import numpy as np


def dominates(F: np.ndarray) -> np.ndarray:
    """(N, N) boolean: i dominates j (all <=, one <)."""
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    return le & lt


def non_dominated_fronts(F: np.ndarray, violation: np.ndarray | None = None) -> list[np.ndarray]:
    """Fronts (lists of indices), best first."""
    F = np.asarray(F, float)
    n = len(F)
    if n == 0:
        return []
    dom = dominates(F)
    if violation is not None:
        v = np.asarray(violation, float)
        feas = v <= 0
        # constrained domination
        dom = np.where(feas[:, None] & ~feas[None, :], True, dom)
        dom = np.where(~feas[:, None] & feas[None, :], False, dom)
        both_inf = ~feas[:, None] & ~feas[None, :]
        dom = np.where(both_inf, v[:, None] < v[None, :], dom)
    count = dom.sum(axis=0)                      # how many dominate j
    fronts, assigned = [], np.zeros(n, bool)
    current = np.nonzero(count == 0)[0]
    while len(current):
        fronts.append(current)
        assigned[current] = True
        count = count - dom[current].sum(axis=0)
        current = np.nonzero((count == 0) & ~assigned)[0]
    return fronts


def crowding_distance(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, float)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    d = np.zeros(n)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return d


def rank_and_crowding(F, violation=None) -> tuple[np.ndarray, np.ndarray]:
    F = np.asarray(F, float)
    rank = np.empty(len(F), int)
    crowd = np.empty(len(F))
    for r, front in enumerate(non_dominated_fronts(F, violation)):
        rank[front] = r
        crowd[front] = crowding_distance(F[front])
    return rank, crowd


def select_survivors(F, violation, n: int) -> np.ndarray:
    """Indices of the ``n`` best by (rank, -crowding)."""
    rank, crowd = rank_and_crowding(F, violation)
    order = np.lexsort((-crowd, rank))
    return order[:n]


def binary_tournament(rank, crowd, rng, n: int) -> np.ndarray:
    a = rng.integers(0, len(rank), n)
    b = rng.integers(0, len(rank), n)
    better = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
    return np.where(better, a, b)


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of the points of ``F`` (minimization) that dominate ``ref`` (moocore)."""
    import moocore
    F = np.asarray(F, float)
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(moocore.hypervolume(F, ref=np.asarray(ref, float)))
