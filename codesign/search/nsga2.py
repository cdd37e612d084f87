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


def first_front(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """The indices (ascending) of ``non_dominated_fronts(F, violation)[0]`` without the (N, N)
    dominance matrix: O(N log N + N * front size), so a run's front out of tens of thousands of
    candidates takes milliseconds. Under constrained domination the first front is the feasible
    non-dominated points, or, when none is feasible, every point of the smallest violation."""
    F = np.asarray(F, float)
    n = len(F)
    if n == 0:
        return np.zeros(0, int)
    idx = np.arange(n)
    if violation is not None:
        v = np.asarray(violation, float)
        feas = v <= 0
        if not feas.any():
            return idx[v == v.min()]
        idx = idx[feas]
    G = F[idx]
    # lexicographic order: a point can only be dominated by one before it, and if it is, then by
    # a point of the front kept so far (domination is transitive)
    order = np.lexsort(G.T[::-1])
    G, idx = G[order], idx[order]
    m = G.shape[1]
    keep = []
    if m == 2:
        best = np.inf                            # smallest second objective so far
        last = None                              # the last kept point (equal points all stay)
        for i in range(len(G)):
            a, b = G[i]
            if b < best or (last is not None and a == last[0] and b == last[1]):
                keep.append(i)
                if b < best:
                    best = b
                last = (a, b)
    else:
        kept = np.empty((0, m))
        for i in range(len(G)):
            x = G[i]
            if len(kept) and np.any(np.all(kept <= x, axis=1) & np.any(kept < x, axis=1)):
                continue
            keep.append(i)
            kept = np.vstack([kept, x])
    return np.sort(idx[np.array(keep, int)])


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
