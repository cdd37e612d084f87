"""Timeloop's link transfers in closed form, vectorized over mappings: neighbour forwarding
between the spatial children of one storage level (``ComputeNetworkLinkTransfers`` in Timeloop's
``nest-analysis.cpp``) and what it does to the counts (``MaskTiles``, ``ComputePeerAccesses``,
``ComputeReadUpdateReductionAccesses_Legacy`` in ``tiling.cpp``).

The rule, as Timeloop runs it (on by default). At each visit of the (extrapolated) loop walk above
a spatial group, every child has a delta: the data it needs that it did not hold at the previous
visit. Children with exactly equal deltas share one parent access (multicast). A child whose
delta equals a mesh neighbour's delta of the previous visit can take it over a link instead; for
each data space, Timeloop uses the links at that visit if that leaves fewer parent accesses
(fewer distinct deltas among the children without a link). The words so received are link
transfers: the receiving level is charged them as extra reads and fills (divided over all its
instances, in integers), and a level that bypasses the space forgets its child group's links.

Closed form. The walk's visits above a level (loops innermost first, ``i1`` the innermost one
that iterates, ``T_i`` the data-space translation when loop ``i`` advances) are of four kinds:
the first visit (whole tile, no predecessor); the first advance of ``i1`` (halo of ``T_i1``,
weight ``n_i1 - 1``, after the whole tile); later advances of ``i1`` after an advance of an outer
loop ``j`` (halo, weight ``(n_i1 - 1) W_j``); and advances of an outer loop ``j`` (weight ``W_j``:
the halo when ``T_j == T_i1``, else the whole tile). Every child's delta is the reference
child's delta moved by its own offset, so a child's delta equals a neighbour's previous one
exactly when both deltas have the same shape (both halos of the same translation, or both
whole tiles: the halo is the whole tile when consecutive tiles do not overlap) and the
translation between them, ``T`` of the visit, is the neighbour's offset minus the child's. At
the MACs every delta is one operation point, so only the translation counts. Children are
numbered as Timeloop's ``FillSpatialDeltas`` numbers them (X loops inside Y loops, dimensions in
the workload's order, the first innermost) and sit in the level's mesh at
``(index % fanout_x, index // fanout_x)``.

:func:`exact_counts` evaluates all of it for a (small) batch; :func:`choose` decides one group's
links per visit kind by enumerating its children; :func:`feasible` is the cheap necessary test
(is the translation the offset between two children?) that ``model._link_queries`` applies
first, so that only the few mappings where a link is possible are enumerated (after
``model._link_pretests``, which rules out whole groups from the factors alone).
``accelerators.reference`` walks the same rule literally; tests hold the three equal.
"""
from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING

from .multicast import distinct_tiles

if TYPE_CHECKING:
    from .arch import Architecture
    from .mapping import MappingBatch
    from .workload import Workload


def space_geometry(work: Workload):
    """Per data space: its axes as ((dimension index, coefficient), ...), the radix of each
    axis in the translation codes and the codes of the dimensions (as in ``model._Plan``)."""
    didx = {d: i for i, d in enumerate(work.dims)}
    bounds = np.array([work.bounds[d] for d in work.dims], np.int64)
    out = []
    for ds in work.dataspaces:
        C = np.zeros((len(ds.projection), len(work.dims)), np.int64)
        for j, axis in enumerate(ds.projection):
            for c, d in axis:
                C[j, didx[d]] += c
        full = C @ (bounds - 1) + 1
        radix = np.concatenate([[1], np.cumprod(2 * full + 1)[:-1]]).astype(np.int64)
        axes = [tuple((int(p), int(row[p])) for p in np.nonzero(row)[0]) for row in C]
        out.append({"C": C, "full": full, "radix": radix, "codes": radix @ C, "axes": axes})
    return out


def decode(code: np.ndarray, geo: dict) -> list:
    """Axis components of translation codes (inverse of ``radix @ v``, balanced digits)."""
    out, rest = [], code.astype(np.int64)
    for f in geo["full"]:
        base = 2 * int(f) + 1
        r = np.mod(rest, base)
        v = np.where(r > f, r - base, r)
        out.append(v)
        rest = (rest - v) // base
    return out


def feasible(tau: np.ndarray, geo: dict, fan: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Whether translation codes ``tau`` (N,) can be the data-space offset between two children
    of a group with per-dimension fan-out ``fan`` and spatial step ``step`` (D, N): per axis,
    ``sum_d coef_d * step_d * delta_d`` must reach the axis component with ``|delta_d| < fan_d``.
    A necessary condition for a link (it ignores which children are neighbours). The cheap
    bound ``|component| <= sum_d coef_d * step_d * (fan_d - 1)`` is tested first, the exact
    test only on what passes it."""
    reach = [sum(c * step[d] * (fan[d] - 1) for d, c in axis) if axis else 0 * tau
             for axis in geo["axes"]]
    # |code| <= sum_a reach_a * radix_a whenever every |component| <= reach_a: a test on the
    # code alone that rejects most translations before they are decoded
    ok = np.abs(tau) <= sum(r * int(R) for r, R in zip(reach, geo["radix"]))
    idx = np.flatnonzero(ok)
    if not idx.size:
        return ok
    comps = decode(tau[idx], geo)
    reach = [r[idx] if np.ndim(r) else r for r in reach]
    keep = np.ones(idx.size, bool)
    for v, r in zip(comps, reach):
        keep &= np.abs(v) <= r
    ok[idx[~keep]] = False
    comps = [v[keep] for v in comps]
    idx = idx[keep]
    if not idx.size:
        return ok
    sel = np.arange(idx.size)                 # positions in comps of the rows still in idx
    for v, axis in zip(comps, geo["axes"]):
        if not axis or not idx.size:
            continue
        v = v[sel]
        if len(axis) == 1:
            (d, c), = axis
            unit = c * step[d, idx]
            good = (v % unit == 0) & (np.abs(v) < unit * fan[d, idx])
        elif len(axis) == 2:
            (p, cp), (r, cr) = axis
            if fan[p, idx].max() > fan[r, idx].max():          # loop over the smaller fan-out
                (p, cp), (r, cr) = (r, cr), (p, cp)
            a, b = cp * step[p, idx], cr * step[r, idx]
            fp, fr = fan[p, idx], fan[r, idx]
            good = np.zeros(idx.size, bool)
            for dp in range(-(int(fp.max()) - 1), int(fp.max())):
                rest = v - a * dp
                good |= (abs(dp) < fp) & (np.abs(rest) < b * fr) & (rest % b == 0)
        else:           # more than two dimensions on one axis: no cheap test (conservative)
            continue
        ok[idx[~good]] = False
        idx, sel = idx[good], sel[good]
    return ok


def may_link(tau: np.ndarray, sx: np.ndarray, sy: np.ndarray, inner: np.ndarray, code_s: np.ndarray,
             fx: int, fy: int, order: np.ndarray | None = None):
    """Whether translation ``tau`` (N,) is among the values ``code(neighbour) - code(child)`` can
    take between two mesh neighbours of a group (the test a link's translation must pass,
    ``_linked``), per row, without enumerating the children. ``sx``, ``sy``, ``inner``: (D, N)
    spatial factors and extents below; ``order``: (N, D) as in :func:`children_codes`. Returns
    (hit (N,), loose (N,)): ``loose`` marks rows where the vertical neighbours do not fall on a
    digit boundary, for which the vertical offsets are not tested (the caller decides them).

    Children are numbered in mixed radix (digits: the X loops, then the Y loops, each radix its
    factor, unit ``code_d * step_d``). The slot to the right is ``i + 1``: incrementing ``i``
    with a carry over its ``t`` lowest digits changes the code by
    ``u_t - sum_{j<t} (n_j - 1) u_j``, one value per digit ``t``; a digit whose place value is a
    multiple of the mesh width only carries into a new mesh row, so it gives no horizontal
    neighbour. The slot below is ``i + fx``: when ``fx`` is the place value of digit ``p`` the
    same carry rule from ``p`` upwards gives its values; the left and upper neighbours give the
    negatives."""
    D, N = sx.shape
    if order is not None:
        sx, sy, inner = (np.take_along_axis(a, order.T, axis=0) for a in (sx, sy, inner))
        codes = np.asarray(code_s)[order.T]
    else:
        codes = np.asarray(code_s)[:, None]
    n = np.concatenate([sx, sy])                                   # (2D, N) radices
    u = np.concatenate([codes * inner, codes * inner * sx])        # (2D, N) units
    live = (n > 1).any(axis=1)                # digits of radix 1 everywhere add nothing: dropped
    n, u = n[live], u[live]
    tau = np.asarray(tau)[None, :]
    hit = np.zeros(N, bool)
    loose = np.zeros(N, bool)
    if not n.shape[0]:
        return hit, loose
    place = np.cumprod(np.concatenate([np.ones((1, N), np.int64), n]), axis=0)   # (T + 1, N)
    carry = (n - 1) * u                        # what a digit gives back when it wraps
    step = u - (np.cumsum(carry, axis=0) - carry)      # u_t - sum over the digits below t
    if fx > 1:          # right neighbour: a carry over the digits below t, not into a new row
        hit = ((n > 1) & (place[:-1] % fx != 0) & ((step == tau) | (step == -tau))).any(axis=0)
    if fy > 1:          # lower neighbour: i + fx, a carry from the digit whose place value is fx
        has_v = place[-1] > fx
        at = place == fx
        aligned = at.any(axis=0)
        loose = has_v & ~aligned
        started = np.logical_or.accumulate(at[:-1], axis=0)
        carry_v = np.where(started, carry, 0)
        step_v = u - (np.cumsum(carry_v, axis=0) - carry_v)
        hit |= has_v & aligned & (started & (n > 1) & ((step_v == tau) | (step_v == -tau))).any(axis=0)
    return hit, loose


def _suffix_products(n: np.ndarray) -> np.ndarray:
    """incl[i] = prod_{k >= i} n[k] over the rows of (R, B); incl[R] = 1."""
    R, B = n.shape
    incl = np.ones((R + 1, B), np.int64)
    for i in range(R - 1, -1, -1):
        incl[i] = incl[i + 1] * n[i]
    return incl


class _Factors:
    """A batch's factors as (B, L, D) arrays and what follows from them alone."""

    def __init__(self, arch: Architecture, work: Workload, batch: MappingBatch):
        self.tf, self.sx, self.sy, self.perm, self.keep = batch.tf, batch.sx, batch.sy, batch.perm, batch.keep
        self.sorder = batch.spatial_order()
        self.B, self.L, self.D = batch.tf.shape
        self.sf = self.sx * self.sy
        f = self.tf * self.sf
        incl = np.ones((self.B, self.L + 1, self.D), np.int64)
        for l in range(self.L - 1, -1, -1):
            incl[:, l] = incl[:, l + 1] * f[:, l]
        self.inner_incl = incl                                  # extents of levels >= l
        self.inner = incl[:, 1:]                                # extents of levels > l
        self.inst = np.ones((self.B, self.L + 1), np.int64)     # instances used of level l
        for l in range(self.L):
            self.inst[:, l + 1] = self.inst[:, l] * self.sf[:, l].prod(axis=1)

    def sequence(self, l: int, code: np.ndarray):
        """The temporal loops above level ``l`` (levels l-1 .. 0, innermost first): iterations
        (R, B) and data-space steps as codes (R, B) (0 for loops of one iteration)."""
        if l == 0:
            return np.ones((0, self.B), np.int64), np.zeros((0, self.B), np.int64)
        ks = np.arange(l - 1, -1, -1)
        dims = self.perm[:, ks, :]                                   # (B, l, D)
        n = np.take_along_axis(self.tf[:, ks, :], dims, axis=2)
        step = np.take_along_axis(self.inner[:, ks, :] * self.sf[:, ks, :], dims, axis=2)
        st = np.where(n >= 2, code[dims] * step, 0)
        return n.reshape(self.B, -1).T.copy(), st.reshape(self.B, -1).T.copy()


def _visit_kinds(n, s, tile, kept, at_macs):
    """The visit kinds of the walk above a level (see the module docstring), per mapping:
    the whole delta sum D and a list of (translation code, weight x words, shape ok) queries.
    ``n``, ``s``: (R, B) iterations and step codes; ``tile``, ``kept``: (B,) words of the tile
    and words a tile keeps across the innermost iterating loop (ignored at the MACs)."""
    R, B = n.shape
    incl = _suffix_products(n)
    W = incl[:R] - incl[1:]                                      # (n_i - 1) prod_{k>i} n_k
    prefix = np.zeros((R + 1, B), np.int64)
    for i in range(R):
        prefix[i + 1] = prefix[i] + s[i]
    T = s - prefix[:R]                                           # T_i = s_i - sum_{k<i} s_k
    active = n >= 2
    has = active.any(axis=0)
    g = np.where(has, np.argmax(active, axis=0), 0)
    col = np.arange(B)
    n1 = np.where(has, n[g, col], 1)
    T1 = T[g, col]
    after = (np.arange(R)[:, None] > g) & active                 # outer loops that iterate
    match = after & (T == T1)
    if at_macs:
        halo = full = np.ones(B, np.int64)
        nov = np.ones(B, bool)
    else:
        full, halo = tile, tile - kept
        nov = kept == 0
    E = match | (after & nov)                                    # same-shape consecutive deltas
    D = (full + (n1 - 1) * halo + (n1 - 1) * halo * (W * after).sum(0)
         + (W * after * np.where(match, halo, full)).sum(0))
    ws1 = (n1 - 1) * halo * (nov + (W * E).sum(0)) + halo * (W * match).sum(0)
    queries = [(T1, ws1)]
    for i in range(R):
        sel = after[i] & ~match[i] & nov
        if sel.any():
            queries.append((T[i], np.where(sel, W[i] * full, 0)))
    return D, queries


def children_codes(sx: np.ndarray, sy: np.ndarray, inner: np.ndarray, code_s: np.ndarray, size: int,
                   order: np.ndarray | None = None):
    """Data-space codes (n, size) of one level's children for n mappings, in Timeloop's
    numbering (X loops inside Y loops; on one axis the dimensions in ``order``, (n, D), the first
    innermost, else in the given order), and which of the ``size`` slots exist. ``sx``, ``sy``:
    (n, D) spatial factors of the level; ``inner``: (n, D) extents below it; ``code_s``: (D,)
    translation codes of the dimensions."""
    n_rows, D = sx.shape
    if order is not None and not (order == np.arange(D)).all():
        sx, sy, inner = (np.take_along_axis(a, order, axis=1) for a in (sx, sy, inner))
        codes_d = np.asarray(code_s)[order]                        # (n, D)
    else:
        codes_d = np.broadcast_to(np.asarray(code_s), (n_rows, D))
    lin = np.arange(size)[None, :]
    codes = np.zeros((n_rows, size), np.int64)
    radix = np.ones(n_rows, np.int64)
    for n_all, step_all in ((sx, inner), (sy, inner * sx)):
        for d in np.flatnonzero((n_all > 1).any(axis=0)):
            n = n_all[:, d]
            idx = (lin // radix[:, None]) % n[:, None]
            codes += idx * (codes_d[:, d] * step_all[:, d])[:, None]
            radix = radix * n
    return codes, lin < radix[:, None]


def choose(sx, sy, inner, code_s, tau, fx: int, fy: int, G=None, order=None, memo=None,
           context: bytes = b"", _distinct_rows: bool = False):
    """Per query (one mapping's group and one visit kind, translation ``tau``): the children's
    distinct deltas ``G``, their number ``F``, and, with links, ``G2`` distinct deltas and ``F2``
    children among those without a link (``ComputeAccurateMulticastedAccesses`` after
    ``ComputeNetworkLinkTransfers``). Links are used where ``G2 < G``. Arrays as in
    :func:`children_codes`, one row per query; queries are bucketed by padded width. ``G`` may be
    given (``multicast.distinct_tiles``); then only queries with a linked child are sorted.
    ``memo``: a dict that keeps each distinct query's answer for the next call (the caller's,
    for one data space; ``context`` tells apart what else the answer depends on); a query met
    before is not enumerated again (the answer is a function of the query's row alone)."""
    D = sx.shape[1]
    if order is None:
        order = np.broadcast_to(np.arange(D), sx.shape)
    if not _distinct_rows:
        # identical queries (same spatial factors, steps of the fanned dimensions, order and
        # translation: common in a mapper's population) are worked out once
        step = np.where((sx > 1) | (sy > 1), inner, 0)
        key = np.concatenate([sx, sy, step, order, tau[:, None]], axis=1)
        first, inv = _unique_rows(key)
        Gf = None if G is None else np.asarray(G)[first]
        if memo is not None:
            ctx = b"%d,%d,%d,%d|" % (fx, fy, G is not None, D) + context + \
                np.asarray(code_s, np.int64).tobytes() + b"|"
            names = [ctx + r.tobytes() for r in key[first]]
            got = [memo.get(x) for x in names]
            res = np.empty((len(first), 4), np.int64)
            miss = [i for i, a in enumerate(got) if a is None]
            hit = [i for i, a in enumerate(got) if a is not None]
            if hit:
                res[hit] = [got[i] for i in hit]
            if miss:
                m = first[miss]
                new = np.stack(choose(sx[m], sy[m], inner[m], code_s, tau[m], fx, fy,
                                      None if G is None else Gf[miss], order[m],
                                      _distinct_rows=True), axis=1)
                res[miss] = new
                if len(memo) > 200_000:
                    memo.clear()
                memo.update(zip([names[i] for i in miss], map(tuple, new.tolist())))
            res = res[inv]
            return res[:, 0], res[:, 1], res[:, 2], res[:, 3]
        if len(first) < len(key):
            G1, F1, G21, F21 = choose(sx[first], sy[first], inner[first], code_s, tau[first], fx, fy,
                                      Gf, order[first], _distinct_rows=True)
            return G1[inv], F1[inv], G21[inv], F21[inv]
    F = (sx * sy).prod(axis=1)
    size = 1 << np.ceil(np.log2(np.maximum(F, 1))).astype(np.int64)
    known = G is not None
    G = np.array(G, np.int64) if known else np.zeros(F.size, np.int64)
    G2, F2 = G.copy(), F.copy()
    for P, q in ((P, q[i:i + max(1, _ENUM_WORDS // int(P))]) for P in np.unique(size)
                 for q in [np.flatnonzero(size == P)] for i in range(0, q.size, max(1, _ENUM_WORDS // int(P)))):
        # (queries in slices of at most _ENUM_WORDS enumerated children: bounded memory)
        codes, valid = children_codes(sx[q], sy[q], inner[q], code_s, int(P), order[q])
        lk = _linked(codes, valid, tau[q], fx, fy)
        if not known:
            G[q] = _distinct(codes, valid)
            G2[q] = G[q]
        some = np.flatnonzero(lk.any(axis=1))
        if some.size:
            free = valid[some] & ~lk[some]
            G2[q[some]] = _distinct(codes[some], free)
            F2[q[some]] = free.sum(axis=1)
    return G, F, G2, F2


_ENUM_WORDS = 1 << 21         # children enumerated at once by choose (x 8 bytes per array)
_MIX = np.random.default_rng(12345).integers(1, 2 ** 62, 64, dtype=np.int64) | 1


def _unique_rows(key: np.ndarray):
    """(first, inverse) of the distinct rows of the int64 array ``key`` (n, m), as
    ``np.unique(key, axis=0, return_index=True, return_inverse=True)`` gives them, up to the order
    of the distinct rows: a 64-bit mixing hash per row, then a check that every row equals its
    representative (``np.unique`` itself where two rows collide)."""
    n, m = key.shape
    if m > _MIX.size:
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        return first, inv.ravel()
    with np.errstate(over="ignore"):
        h = (key * _MIX[:m]).sum(axis=1)
        h ^= h >> 29
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    if not (key[first][inv] == key).all():
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return first, inv.ravel()


def _distinct(codes, mask) -> np.ndarray:
    """Distinct values of ``codes`` (B, F) where ``mask``, per row."""
    big = np.iinfo(np.int64).max
    srt = np.sort(np.where(mask, codes, big), axis=1)
    new = np.ones(srt.shape, bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    return (new & (srt != big)).sum(axis=1)


_NEIGHBOURS = {}


def _neighbours(F: int, fx: int, fy: int):
    """For slots 0..F-1 of a mesh ``fx`` wide and ``fy`` high (row-major): the four neighbour
    slots (up to F - 1) and whether each exists (``ComputeNetworkLinkTransfers``' directions)."""
    key = (F, fx, fy)
    if key not in _NEIGHBOURS:
        lin = np.arange(F)
        h, v = lin % fx, lin // fx
        out = []
        for shift, edge in ((1, h < fx - 1), (-1, h > 0), (fx, v < fy - 1), (-fx, v > 0)):
            j = lin + shift
            inside = edge & (j >= 0) & (j < F)
            out.append((np.where(inside, j, 0), inside))
        _NEIGHBOURS[key] = out
    return _NEIGHBOURS[key]


def _linked(codes, valid, tau, fx: int, fy: int) -> np.ndarray:
    """Children whose code plus ``tau`` (B,) is a mesh neighbour's code
    (``CompareSpatioTemporalDeltas`` over ``ComputeNetworkLinkTransfers``' four directions)."""
    want = codes + tau[:, None]
    out = np.zeros(codes.shape, bool)
    for jj, inside in _neighbours(codes.shape[1], fx, fy):
        out |= inside & valid[:, jj] & (codes[:, jj] == want)
    return out & valid


def _group_links(fac, arch, k, geo, queries, F, G, Tk, Wk, fan, step):
    """Apply ``ComputeNetworkLinkTransfers``' choice to group ``k``'s totals: for each visit
    kind (translation ``tau``, words x weight ``ws``) where the link version leaves fewer
    distinct deltas among the children without a link, subtract what those children no longer
    take from the parent. Returns (TotalAccesses, WeightedAccesses, link transfers) per mapping."""
    B = F.size
    qrow, qtau, qws = [], [], []
    fx, fy = arch.fanout(k)
    fits = (fac.sx[:, k].prod(axis=1) <= fx) & (fac.sy[:, k].prod(axis=1) <= fy)
    for tau, ws in queries:
        rows = np.flatnonzero((ws > 0) & (F > 1) & fits)
        if rows.size:
            rows = rows[feasible(tau[rows], geo, fan[:, rows], step[:, rows])]
            qrow.append(rows), qtau.append(tau[rows]), qws.append(ws[rows])
    LT = np.zeros(B, np.int64)
    if not qrow or not sum(r.size for r in qrow):
        return Tk, Wk, LT
    qrow, qtau, qws = np.concatenate(qrow), np.concatenate(qtau), np.concatenate(qws)
    _, _, G2, F2 = choose(fac.sx[qrow, k], fac.sy[qrow, k], fac.inner[qrow, k], geo["codes"], qtau, fx, fy,
                          order=fac.sorder[qrow, k])
    use = G2 < G[qrow]
    r, w = qrow[use], qws[use].astype(np.float64)
    dT = np.bincount(r, weights=w * (G[r] - G2[use]), minlength=B)
    moved = w * (F[r] - F2[use])
    dW = np.bincount(r, weights=moved, minlength=B)
    LT += np.rint(dW).astype(np.int64)
    return Tk - dT, Wk - dW, LT


def exact_counts(arch: Architecture, work: Workload, batch: MappingBatch, link_transfers: bool = True,
                 spaces=None):
    """(reads, fills, updates, links) as (B, L, S) int64 arrays, per instance, by Timeloop's rules
    including link transfers; ``links`` are the link transfers each level's group takes
    (per instance of the level). ``spaces``: the data space indices to compute (default all;
    the others are left 0)."""
    fac = _Factors(arch, work, batch)
    B, L, D = fac.B, fac.L, fac.D
    geos = space_geometry(work)
    S = len(geos)
    todo = set(range(S) if spaces is None else spaces)
    reads = np.zeros((B, L, S), np.int64)
    fills = np.zeros((B, L, S), np.int64)
    updates = np.zeros((B, L, S), np.int64)
    links = np.zeros((B, L, S), np.int64)
    col = np.arange(B)
    for s, (ds, geo) in enumerate(zip(work.dataspaces, geos)):
        if s not in todo:
            continue
        code = geo["codes"]
        # per level k: its group's TotalAccesses T, WeightedAccesses W, fan-out F, links LT
        T = np.zeros((L, B))
        Wt = np.zeros((L, B))
        Fo = np.ones((L, B))
        LT = np.zeros((L, B), np.int64)
        for k in range(L):
            c = k + 1
            at_macs = c == L
            n, st = fac.sequence(c, code)
            F = fac.sf[:, k].prod(axis=1)
            if not at_macs and (F == 1).all() and not fac.keep[:, c, s].any():
                # no fan-out and children that bypass the space: T = W (MaskTiles' factor is
                # 1 whatever D is) and no fills to share out
                T[k], Wt[k] = 1.0, 1.0
                continue
            if at_macs:
                tile = kept = np.ones(B, np.int64)
            else:
                ext = fac.inner_incl[:, c]                        # (B, D)
                ax = [sum(co * (ext[:, d] - 1) for d, co in a) + 1 for a in geo["axes"]]
                tile = np.prod(ax, axis=0) if ax else np.ones(B, np.int64)
                # words kept across the innermost iterating loop: each axis shrinks by that
                # loop's step along it
                act = n >= 2
                has = act.any(axis=0)
                g = np.where(has, np.argmax(act, axis=0), 0)
                T1 = st[g, col] if len(n) else np.zeros(B, np.int64)
                comp = decode(T1, geo)
                kept = np.prod([np.maximum(0, a - np.abs(v)) for a, v in zip(ax, comp)], axis=0) \
                    if ax else np.ones(B, np.int64)
                kept = np.where(has, kept, tile)
            Dsum, queries = _visit_kinds(n, st, tile, kept, at_macs)
            Tk = Dsum.astype(np.float64)
            Wk = Dsum.astype(np.float64) * F
            if (F > 1).any():
                fan, step = fac.sf[:, k].T, fac.inner[:, k].T
                G = distinct_tiles(geo["axes"], fan, lambda d, rows: step[d, rows])
                Tk = Dsum * G.astype(np.float64)
                if link_transfers:
                    Tk, Wk, LT[k] = _group_links(fac, arch, k, geo, queries, F, G, Tk, Wk, fan, step)
            T[k], Wt[k], Fo[k] = Tk, Wk, F
        kept_l = fac.keep[:, :, s].T                               # (L, B)
        # ComputePartitionSizes: the read-write space's first writes
        part = np.zeros((L, B), np.int64)
        above = np.ones((B, D), np.int64)
        for l in range(L):
            ext = fac.inner_incl[:, l] * above
            ax = [sum(co * (ext[:, d] - 1) for d, co in a) + 1 for a in geo["axes"]]
            part[l] = np.prod(ax, axis=0) if ax else 1
            above = above * fac.tf[:, l]
        pas = np.zeros((L, B))
        pas[1:] = Wt[:L - 1] / Fo[:L - 1]                            # ComputeParentAccessShare
        ca = T.copy()
        lt = LT.copy()
        for m in range(L - 1, 0, -1):                                # MaskTiles, innermost first
            masked = ~kept_l[m]
            factor = np.divide(ca[m] * Fo[m - 1], Wt[m - 1], out=np.zeros(B), where=Wt[m - 1] > 0)
            ca[m - 1] = np.where(masked, T[m - 1] * factor, ca[m - 1])
            lt[m - 1] = np.where(masked, 0, lt[m - 1])
        peer = np.zeros((L, B), np.int64)                            # ComputePeerAccesses
        for k in range(L - 1):
            peer[k + 1] = np.where(kept_l[k + 1], lt[k] // fac.inst[:, k + 1], 0)
        has_parent = np.zeros((L, B), bool)
        for l in range(1, L):
            has_parent[l] = has_parent[l - 1] | kept_l[l - 1]
        rnd = lambda x: np.floor(x + 0.5).astype(np.int64)          # std::round (x >= 0)
        for l in range(L):
            k = kept_l[l]
            fill = np.where(has_parent[l], pas[l] + peer[l], 0.0)
            if ds.read_write:
                reads[:, l, s] = np.where(k, rnd(ca[l] + peer[l] - part[l]), 0)
                fills[:, l, s] = np.where(k & has_parent[l], rnd(fill - part[l]), 0)
                updates[:, l, s] = np.where(k, rnd(ca[l]), 0)
            else:
                reads[:, l, s] = np.where(k, rnd(ca[l] + peer[l]), 0)
                fills[:, l, s] = np.where(k, rnd(fill), 0)
            links[:, l, s] = np.where(k, lt[l], 0)
    return reads, fills, updates, links
