"""A literal, slow re-enactment of Timeloop's nest analysis for one mapping: the yardstick the
closed-form batched model (``accelerators.model``) is tested against.

It follows Timeloop's code function by function (``src/loop-analysis/nest-analysis.cpp`` and
``src/loop-analysis/tiling.cpp`` of NVlabs/timeloop), with explicit point sets and every spatial
child enumerated; the names in the comments are Timeloop's:

* ``ComputeTemporalWorkingSet``: every temporal loop is extrapolated from its iterations #0 and
  #1 (#1 weighted by ``n - 1``, Timeloop's ``num_epochs_``).
* ``ComputeDeltas`` + ``SaveAndSubtractIfSameStride``: a child's delta is its new tile minus its
  previous one, unless the tile's translation changed, then the whole tile.
* ``ComputeSpatialWorkingSet`` / ``FillSpatialDeltas``: the spatial loops of ONE storage level
  form one group; per visit of the loops above it, each child's delta is computed.
* ``ComputeAccurateMulticastedAccesses``: children whose deltas are exactly equal
  (``CheckEquality``) share one access (multicast factor = their number); partially
  overlapping deltas share nothing.
* ``ComputeNetworkLinkTransfers`` / ``CompareSpatioTemporalDeltas``: a child whose delta equals
  the previous delta of a physical neighbour (up/down/left/right in the level's mesh, row-major
  linear index ``v * fanout_x + h``) gets it over a link; the link version is used for a data
  space at a visit only if it needs fewer parent accesses than the multicast-only version.
* ``CollapseDataMovementNest`` -> ``ComputeParentAccessShare`` (fills) -> ``MaskTiles`` (a
  bypassed level's accesses are pushed to the next outer level, scaled by
  ``content_accesses * fanout / WeightedAccesses``) -> ``ResetBackingStorageFillsPlaceHolder``
  -> ``ComputePeerAccesses`` (link transfers become the child's extra reads and fills) ->
  ``ComputeReadUpdateReductionAccesses_Legacy`` (first-read elision for partial sums).

Loop order inside a level (Timeloop's nest): spatial loops innermost (X inside Y; within an axis
the mapping's ``spatial_permutation``, else the workload's dimension order, first innermost),
then the temporal loops. Spatial loops of different levels are separate groups (each level's
block ends at its own temporal boundary loop). Exponential in the number of loops: tests only.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from math import prod

from .arch import Architecture, split_xy
from .mapping import Mapping, level_bits, needs_split, split_mapping
from .workload import Workload


def _box_points(lo, ext):
    return frozenset(itertools.product(*[range(a, a + e) for a, e in zip(lo, ext)]))


def _axis_lo(ds, offsets):
    return tuple(sum(c * offsets.get(d, 0) for c, d in axis) for axis in ds.projection)


def _round(x) -> int:
    """std::round: half away from zero."""
    x = Fraction(x)
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


def spatial_children(work: Workload, lm, inner: dict) -> list:
    """The children of one instance of a level, in Timeloop's linear (FillSpatialDeltas) order:
    [(linear index, {dim: offset})]. X loops are inner, Y loops outer; inside an axis the first
    dimension of ``lm.spatial_permutation`` (else of the workload) is the innermost loop. A
    dimension on both axes steps by ``inner[d]`` along X and by ``inner[d] * its X factor``
    along Y."""
    def axis_loops(fac):
        order = [d for d in lm.spatial_permutation if d in work.dims] + list(work.dims)
        seen = []
        for d in order:
            if int(fac.get(d, 1)) > 1 and d not in seen:
                seen.append(d)
        return seen
    loops = [(d, int(lm.spatial_x[d]), inner[d]) for d in axis_loops(lm.spatial_x)]
    loops += [(d, int(lm.spatial_y[d]), inner[d] * int(lm.spatial_x.get(d, 1)))
              for d in axis_loops(lm.spatial_y)]                 # innermost first
    out = []
    for idx in itertools.product(*[range(n) for _, n, _ in reversed(loops)]):   # outermost first
        lin, off = 0, {}
        for (d, n, step), i in zip(reversed(loops), idx):
            lin = lin * n + i
            off[d] = off.get(d, 0) + i * step
        out.append((lin, off))
    return out


def reference_counts(arch: Architecture, work: Workload, mapping: Mapping,
                     link_transfers: bool = True) -> dict:
    """{(level name, space name): (reads, fills, updates)} per instance, plus '_cycles',
    '_bits' and '_links' {(level name, space name): link transfers per instance}. A mapping that
    splits a dimension across X and Y of one level is evaluated as Timeloop can write it: the Y
    factors on a dummy level below (``arch.split_xy``)."""
    if needs_split(mapping):
        arch2, split = split_xy(arch)
        if split:
            out = reference_counts(arch2, work, split_mapping(mapping, split), link_transfers)
            names = {lv.name for lv in arch.levels}
            out["_bits"] = {k: [b for lv, b in zip(arch2.levels, v) if lv.name in names]
                            for k, v in out["_bits"].items()}
            out["_links"] = {k: v for k, v in out["_links"].items() if k[0] in names}
            return out
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
    fanout = [prod(lm.s(d) for d in work.dims) for lm in lms]
    replication = [prod(fanout[:l]) for l in range(L + 1)]

    def loops_above(l):
        """Temporal loops above level l's tile (levels l-1 .. 0), innermost first, as
        (dimension, iterations, step); loops of one iteration never move and are dropped."""
        out = []
        for k in range(l - 1, -1, -1):
            perm = [d for d in work.dims if d not in lms[k].permutation] + list(lms[k].permutation)
            for d in perm:
                if lms[k].t(d) >= 2:
                    out.append((d, lms[k].t(d), inner[k][d] * lms[k].s(d)))
        return out

    def visits(l):
        """ComputeTemporalWorkingSet's extrapolated walk above level l: (offsets, weight) in
        order; each loop runs iteration #0, then #1 standing for #1..#n-1 (weight n - 1)."""
        loops = loops_above(l)
        out = []

        def walk(i, offsets, weight):          # i indexes loops from the outermost
            if i < 0:
                out.append((offsets, weight))
                return
            d, n, scale = loops[i]
            for idx, w in ((0, 1), (1, n - 1)):
                o = dict(offsets)
                o[d] = o.get(d, 0) + idx * scale
                walk(i - 1, o, weight * w)
        walk(len(loops) - 1, {}, 1)
        return out

    def group_stats(k, ds):
        """ComputeSpatialWorkingSet at level k for data space ds: the accesses its children
        (level k+1 instances, or the MACs) make, over the whole run, per instance of k:
        {multicast factor: accesses}, and the link transfers."""
        c = k + 1
        lm = lms[k]
        kids = spatial_children(work, lm, inner[k])
        F = len(kids)
        fx, fy = arch.fanout(k)
        # links need the children on the mesh: a mapping whose fan-out exceeds it has none
        fits = prod(int(v) for v in lm.spatial_x.values()) <= fx and prod(int(v) for v in lm.spatial_y.values()) <= fy
        at_macs = c == L
        axis_ext = None if at_macs else tuple(sum(co * (ext[c][d] - 1) for co, d in axis) + 1
                                              for axis in ds.projection)
        stats, links = {}, 0
        last = [None] * F            # per child: (point set, lo) of its previous tile
        trans = [None] * F
        prev_deltas = None           # ComputeNetworkLinkTransfers: cur_state.prev_spatial_deltas
        # (at the MACs, FillSpatialDeltas at loop level 0: each MAC's delta is its one operation
        # point, per iteration of every temporal loop of the innermost level and above)
        for offsets, weight in visits(c):
            deltas = []
            for u, (lin, off) in enumerate(kids):
                o = dict(offsets)
                for d, v in off.items():
                    o[d] = o.get(d, 0) + v
                lo = _axis_lo(ds, o)
                if at_macs:
                    deltas.append(frozenset([lo]))
                    continue
                pts = _box_points(lo, axis_ext)
                # ComputeDeltas with SaveAndSubtractIfSameStride
                if last[u] is None:
                    delta, trans[u] = pts, None
                else:
                    t = tuple(a - b for a, b in zip(lo, last[u][1]))
                    if trans[u] is None or t == trans[u]:
                        delta, trans[u] = pts - last[u][0], t
                    else:
                        delta, trans[u] = pts, None
                last[u] = (pts, lo)
                deltas.append(delta)
            lin_of = [lin for lin, _ in kids]
            no_link = _multicast(deltas, range(F))
            chosen, lt = no_link, 0
            if link_transfers and F > 1 and fits and prev_deltas is not None:
                linked = _link_receivers(deltas, prev_deltas, lin_of, fx, fy)
                with_link = _multicast(deltas, [u for u in range(F) if u not in linked])
                if sum(a for a, _ in with_link.values()) < sum(a for a, _ in no_link.values()):
                    chosen, lt = with_link, sum(len(deltas[u]) for u in linked)
            for m, (acc, _) in chosen.items():
                stats[m] = stats.get(m, 0) + acc * weight
            links += lt * weight
            prev_deltas = deltas
        return stats, links, F

    out, links_out = {}, {}
    for ds in work.dataspaces:
        # per level: its own group's stats (CollectWorkingSets -> CollapseDataMovementNest)
        T, W, Fo, LT = {}, {}, {}, {}
        for k in range(L):
            stats, lt, F = group_stats(k, ds)
            T[k] = Fraction(sum(stats.values()))                      # TotalAccesses
            W[k] = Fraction(sum(m * a for m, a in stats.items()))     # WeightedAccesses
            Fo[k], LT[k] = F, lt
        kept = [ds.name in keep[l] for l in range(L)]
        # ComputePartitionSizes: the read-write space's first writes at each level
        part = [ds.extent({d: ext[l][d] * prod(lms[kk].t(d) for kk in range(l)) for d in work.dims})
                for l in range(L)]
        # ComputeParentAccessShare (before masking): a level's share of its arch parent's accesses
        pas = {l: (W[l - 1] * 1 / Fo[l - 1]) for l in range(1, L)}
        # MaskTiles, innermost first: a bypassed level's accesses move to the next outer level
        ca = dict(T)
        for m in range(L - 1, 0, -1):
            if kept[m]:
                continue
            outer = m - 1
            factor = ca[m] * Fo[outer] / W[outer] if W[outer] else Fraction(0)
            ca[outer] = T[outer] * factor
            LT[outer] = 0
        # ComputePeerAccesses: link transfers of level k become reads and fills of level k+1
        peer = {l: 0 for l in range(L)}
        for k in range(L - 1):
            if LT[k] and kept[k + 1]:
                peer[k + 1] += LT[k] // replication[k + 1]
        outermost = next(l for l in range(L) if kept[l])
        for l in range(L):
            if not kept[l]:
                continue
            fill = pas[l] + peer[l] if l > outermost else 0   # ResetBackingStorageFillsPlaceHolder
            if ds.read_write:
                reads = _round(ca[l] + peer[l] - part[l])
                fills = _round(fill - part[l]) if l > outermost else 0
                out[(arch.levels[l].name, ds.name)] = (reads, fills, _round(ca[l]))
            else:
                out[(arch.levels[l].name, ds.name)] = (_round(ca[l] + peer[l]), _round(fill), 0)
            links_out[(arch.levels[l].name, ds.name)] = int(LT[l])
    out["_cycles"] = computes_pe
    out["_bits"] = {ds.name: [level_bits(lv, work, ds) for lv in arch.levels] for ds in work.dataspaces}
    out["_links"] = links_out
    return out


def _multicast(deltas, children) -> dict:
    """ComputeAccurateMulticastedAccesses over ``children``: {multicast factor: (accesses,
    scatter)} where children with exactly equal (non-empty) deltas form one access."""
    groups = {}
    for u in children:
        if deltas[u]:
            groups.setdefault(deltas[u], []).append(u)
    out = {}
    for d, members in groups.items():
        a, s = out.get(len(members), (0, 0))
        out[len(members)] = (a + len(d), s + 1)
    return out


def _link_receivers(deltas, prev, lin_of, fx, fy) -> set:
    """ComputeNetworkLinkTransfers: the children whose (non-empty) delta equals a physical
    neighbour's previous delta. Children sit at h = index % fx, v = index // fx; a neighbour
    must exist in the mesh and be one of the children."""
    where = {lin: u for u, lin in enumerate(lin_of)}
    out = set()
    for u, lin in enumerate(lin_of):
        if not deltas[u]:
            continue
        h, v = lin % fx, lin // fx
        nbrs = []
        if v > 0:
            nbrs.append(lin - fx)
        if v < fy - 1:
            nbrs.append(lin + fx)
        if h > 0:
            nbrs.append(lin - 1)
        if h < fx - 1:
            nbrs.append(lin + 1)
        for j in nbrs:
            if j in where and prev[where[j]] == deltas[u]:
                out.add(u)
                break
    return out
