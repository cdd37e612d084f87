"""Timeloop's multicast count for one spatial group: how many distinct tiles its children need
(children whose deltas are exactly equal share one parent access,
``ComputeAccurateMulticastedAccesses`` in Timeloop's ``nest-analysis.cpp``), in closed form over
a batch of mappings.

Pinned by Timeloop's outputs (``tests/test_timeloop_reference.py``): ``ispass2020_04`` cp (inputs
multicast to 16 global buffers) and kp (partial sums reduced), ``example_designs_simple_weight_
stationary`` (inputs multicast over M on the rows) and ``example_designs_eyeriss_like`` (no
sharing between the column group and the row group: 1,354,752 global-buffer Inputs reads)."""
from __future__ import annotations

import numpy as np


def distinct_tiles(axes: list, fac: np.ndarray, step) -> np.ndarray:
    """Number of distinct tiles (of the data space with axes ``axes``, each
    ((dimension, coefficient), ...)) among the children reached through spatial loops with
    per-dimension fan-out ``fac`` (D, B); ``step(d, rows)`` gives the step of dimension d's
    innermost spatial loop at those mappings (needed for the axes that sum several
    dimensions). Children whose tiles coincide (the loop does not index the space, or two
    indices slide onto the same window, e.g. PE (p, r) and (p+1, r-1) need the same input row)
    share one multicast access; reduction of partial sums is counted the same way."""
    B = fac.shape[1]
    out = np.ones(B, np.int64)
    for axis in axes:
        if len(axis) == 1:
            out *= fac[axis[0][0]]
        elif len(axis) == 2:
            # {alpha*i + beta*k : i < a, k < b} has a*b - max(0, a - beta')*max(0, b - alpha')
            # distinct values, alpha' = alpha/g, beta' = beta/g, g = gcd(alpha, beta).
            # With a == 1 or b == 1 that is a * b (alpha', beta' >= 1), so only the mappings
            # with fan-out in both dimensions need the correction.
            (p, cp), (r, cr) = axis
            a, b = fac[p], fac[r]
            n = a * b
            rows = np.flatnonzero((a > 1) & (b > 1))
            if len(rows):
                a, b = a[rows], b[rows]
                alpha, beta = cp * step(p, rows), cr * step(r, rows)
                g = np.gcd(alpha, beta)
                n[rows] -= np.maximum(0, a - beta // g) * np.maximum(0, b - alpha // g)
            out *= n
        else:                                               # general projections: enumerate
            vals = []
            steps = {p: c * step(p, np.arange(B)) for p, c in axis}
            for i in range(B):
                pts = {0}
                for p, _ in axis:
                    st = int(steps[p][i])
                    pts = {x + st * t for x in pts for t in range(int(fac[p, i]))}
                vals.append(len(pts))
            out *= np.array(vals, np.int64)
    return out
