"""Random mappings of a workload on an architecture, as a batch (for tests, benchmarks and as the
seed population of a mapper). Every random choice comes from the ``seed``."""
from __future__ import annotations

import numpy as np

from .arch import Architecture
from .mapping import MappingBatch, check_batch, default_keep
from .tiles import tile_sizes
from .workload import Workload


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def random_batch(arch: Architecture, work: Workload, n: int, seed: int = 0,
                 spatial_prob: float = 0.3, bypass_prob: float = 0.0,
                 outer_bias: float = 0.0) -> MappingBatch:
    """``n`` random factor-valid mappings: every prime factor of every dimension goes to a random
    level, temporally or (with ``spatial_prob``) spatially over X or Y; loop orders are random.
    ``outer_bias`` > 0 favours outer (larger) levels: level ``l`` (0 = outermost) is drawn with
    weight ``exp(-outer_bias * l)``. Spatial fan-out and capacity are not enforced (see
    :func:`random_valid_batch`)."""
    rng = np.random.default_rng(seed)
    L, D, S = len(arch.levels), len(work.dims), len(work.dataspaces)
    tf = np.ones((n, L, D), np.int64)
    sx = np.ones((n, L, D), np.int64)
    sy = np.ones((n, L, D), np.int64)
    fx = np.array([arch.fanout(i)[0] for i in range(L)])
    fy = np.array([arch.fanout(i)[1] for i in range(L)])
    rows = np.arange(n)
    level_p = np.exp(-outer_bias * np.arange(L))
    level_p /= level_p.sum()
    for j, d in enumerate(work.dims):
        for p in prime_factors(work.bounds[d]):
            lvl = rng.choice(L, size=n, p=level_p)
            kind = rng.random(n)
            to_x = (kind < spatial_prob / 2) & (fx[lvl] > 1)
            to_y = (kind >= spatial_prob / 2) & (kind < spatial_prob) & (fy[lvl] > 1)
            to_t = ~(to_x | to_y)
            tf[rows[to_t], lvl[to_t], j] *= p
            sx[rows[to_x], lvl[to_x], j] *= p
            sy[rows[to_y], lvl[to_y], j] *= p
    perm = np.argsort(rng.random((n, L, D)), axis=2).astype(np.int64)
    keep = np.tile(default_keep(arch, work), (n, 1, 1))
    if bypass_prob > 0:
        drop = rng.random((n, L, S)) < bypass_prob
        drop[:, 0, :] = False                      # the outermost level keeps everything
        keep &= ~drop
    return MappingBatch(tf, sx, sy, perm, keep)


def random_valid_batch(arch: Architecture, work: Workload, n: int, seed: int = 0,
                       max_rounds: int = 50, **kw) -> MappingBatch:
    """Up to ``n`` random mappings that pass validation (fan-out, capacity, keep rules)."""
    out, have = [], 0
    kw.setdefault("outer_bias", 1.0)
    for r in range(max_rounds):
        b = random_batch(arch, work, max(n, 4096), seed=seed * 1000 + r, **kw)
        ok, _ = check_batch(b, arch, work, tile_sizes(b, arch, work))
        if ok.any():
            out.append(b[ok])
            have += int(ok.sum())
        if have >= n:
            break
    if not out:
        raise ValueError(f"no valid random mapping of {work.name} on {arch.name} found")
    return MappingBatch.concat(out)[:n]
