"""A literal, slow re-enactment of Timeloop's nest analysis for one mapping: the yardstick the
closed-form batched model (``accelerators.model``) is tested against.

It walks the loops above each storage level the way Timeloop's ``ComputeDeltas`` does (every
loop extrapolated from its iterations #0 and #1, the tile's residue discarded when its stride
changes), keeps the tiles as explicit sets of points, and enumerates the spatial children to
count distinct (multicast / reduced) tiles. Exponential in the number of loops: tests only.
"""
from __future__ import annotations

import itertools
from math import prod

from .arch import Architecture
from .mapping import Mapping, level_bits
from .workload import Workload


def _box_points(lo, ext):
    return set(itertools.product(*[range(a, a + e) for a, e in zip(lo, ext)]))


def _axis_lo(ds, offsets):
    return tuple(sum(c * offsets.get(d, 0) for c, d in axis) for axis in ds.projection)


def reference_counts(arch: Architecture, work: Workload, mapping: Mapping) -> dict:
    """{(level name, space name): (reads, fills, updates)} per instance, plus '_cycles'."""
    L = len(arch.levels)
    lms = mapping.levels
    f = [{d: lm.t(d) * lm.s(d) for d in work.dims} for lm in lms]
    inner = [{d: prod(f[k][d] for k in range(l + 1, L)) for d in work.dims} for l in range(L)]
    ext = [{d: inner[l][d] * f[l][d] for d in work.dims} for l in range(L)]
    keep = []
    for lv, lm in zip(arch.levels, lms):
        allowed = [] if lv.is_dummy else [ds.name for ds in work.dataspaces
                                          if lv.keeps is None or ds.name in lv.keeps]
        keep.append(set(allowed) if lm.keep is None else set(lm.keep))
    computes_pe = prod(lm.t(d) for lm in lms for d in work.dims)

    def loops_above(l):
        out = []
        for k in range(l - 1, -1, -1):
            perm = [d for d in work.dims if d not in lms[k].permutation] + list(lms[k].permutation)
            for d in perm:
                out.append((d, lms[k].t(d), inner[k][d] * lms[k].s(d)))
        return out

    def deltas(l, ds):
        axis_ext = tuple(sum(c * (ext[l][d] - 1) for c, d in axis) + 1 for axis in ds.projection)
        loops = [lp for lp in loops_above(l) if lp[1] >= 2]
        state = {"prev": None, "trans": None, "prev_lo": None}
        total = 0

        def visit(lo, weight):
            nonlocal total
            pts = _box_points(lo, axis_ext)
            if state["prev"] is None:
                delta, state["trans"] = len(pts), None
            else:
                t = tuple(a - b for a, b in zip(lo, state["prev_lo"]))
                if state["trans"] is None or t == state["trans"]:
                    delta = len(pts - state["prev"])
                    state["trans"] = t
                else:
                    delta, state["trans"] = len(pts), None
            state["prev"], state["prev_lo"] = pts, lo
            total += weight * delta

        def walk(i, offsets, weight):      # i indexes loops from the outermost
            if i < 0:
                visit(_axis_lo(ds, offsets), weight)
                return
            d, n, scale = loops[i]
            for idx, w in ((0, 1), (1, n - 1)):
                o = dict(offsets)
                o[d] = o.get(d, 0) + idx * scale
                walk(i - 1, o, weight * w)

        walk(len(loops) - 1, {}, 1)
        return total, prod(axis_ext)

    def distinct(l, c, ds):
        spatial = []
        for k in range(l, c):
            for d in work.dims:
                if lms[k].s(d) > 1:
                    spatial.append((d, lms[k].s(d), inner[k][d]))
        los = set()
        for idx in itertools.product(*[range(n) for _, n, _ in spatial]):
            offs = {}
            for (d, _, sc), i in zip(spatial, idx):
                offs[d] = offs.get(d, 0) + i * sc
            los.add(_axis_lo(ds, offs))
        return len(los)

    out = {}
    Dl = {}
    for ds in work.dataspaces:
        for l in range(L):
            Dl[(l, ds.name)] = deltas(l, ds)[0]
        Dl[(L, ds.name)] = computes_pe
    for ds in work.dataspaces:
        for l, lv in enumerate(arch.levels):
            if ds.name not in keep[l]:
                continue
            c = next((k for k in range(l + 1, L) if ds.name in keep[k]), L)
            has_parent = any(ds.name in keep[k] for k in range(l))
            demand = Dl[(c, ds.name)] * distinct(l, c, ds)
            part = ds.extent({d: ext[l][d] * prod(lms[k].t(d) for k in range(l)) for d in work.dims})
            if ds.read_write:
                out[(lv.name, ds.name)] = (demand - part,
                                           Dl[(l, ds.name)] - part if has_parent else 0, demand)
            else:
                out[(lv.name, ds.name)] = (demand, Dl[(l, ds.name)] if has_parent else 0, 0)
    out["_cycles"] = computes_pe
    out["_bits"] = {ds.name: [level_bits(lv, work, ds) for lv in arch.levels] for ds in work.dataspaces}
    return out
