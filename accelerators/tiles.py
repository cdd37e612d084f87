"""Tile geometry: the words of each data space's tile at each level, from the factors alone.
Shared by the cost model and by mapping validation (capacity), so it depends on neither."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .arch import Architecture
    from .workload import Workload


def coef_matrices(work: Workload):
    """Per data space, a (J, D) matrix of projection coefficients."""
    didx = {d: i for i, d in enumerate(work.dims)}
    mats = []
    for ds in work.dataspaces:
        m = np.zeros((len(ds.projection), len(work.dims)), dtype=np.int64)
        for j, axis in enumerate(ds.projection):
            for c, d in axis:
                m[j, didx[d]] += c
        mats.append(m)
    return mats


def _box(ext: np.ndarray, C: np.ndarray, sizes_only: bool = False):
    """Axis extents (..., J, B) and size (..., B) of the box spanned by per-dimension extents
    ``ext`` (..., D, B) (batch-last layout)."""
    axes = []
    for row in C:
        acc = None
        for p in np.nonzero(row)[0]:
            term = (ext[..., p, :] - 1) * row[p] if row[p] != 1 else ext[..., p, :] - 1
            acc = term if acc is None else acc + term
        axes.append(acc + 1 if acc is not None else np.ones(ext[..., 0, :].shape, ext.dtype))
    size = axes[0].copy()
    for a in axes[1:]:
        size *= a
    return size if sizes_only else (np.stack(axes, axis=-2), size)


def tile_sizes(batch, arch: Architecture, work: Workload) -> np.ndarray:
    """(B, L, S) words of each data space's tile at each level (kept or not), for a
    ``mapping.MappingBatch`` (its tf, sx, sy; not imported here: mapping imports this module)."""
    f = (batch.tf * batch.sx * batch.sy).transpose(1, 2, 0)        # (L, D, B)
    inner_incl = np.flip(np.cumprod(np.flip(f, 0), axis=0), 0)      # prod over levels >= l
    out = np.empty((f.shape[2], f.shape[0], len(work.dataspaces)), dtype=np.int64)
    for s, C in enumerate(coef_matrices(work)):
        out[..., s] = _box(inner_incl, C)[1].T
    return out
