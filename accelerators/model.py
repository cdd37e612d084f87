"""The analytical cost model: Timeloop's access-count semantics in closed form, over a batch.

For every storage level ``l`` and data space ``d`` it keeps, the model counts per instance:

* **fills**: words written into ``l`` from its parent. Timeloop walks the loops above ``l`` and
  charges, at each step, the part of the new tile not in the previous one, but it discards that
  residue (charges the whole tile) when the tile's translation differs from the previous step's
  translation (``SaveAndSubtractIfSameStride``), and it extrapolates every loop from its
  iterations #0 and #1. Walking that sequence gives, with loops ``i`` above ``l`` (innermost
  first, only those with ``n_i >= 2``), ``T_i = s_i - sum_{k<i} s_k`` the data-space translation
  when loop ``i`` advances, ``i1`` the innermost such loop and ``ov(T)`` the words a translated
  tile does not share with the old one::

      D = N_out * (tile + (n_i1 - 1) * ov(T_i1)) - (tile - ov(T_i1)) * sum_{i > i1, T_i == T_i1} W_i
      W_i = (n_i - 1) * prod_{k > i} n_k,   N_out = prod_{k > i1} n_k

  i.e. stationarity and sliding-window (halo) reuse across the innermost loop, a full refetch at
  every advance of an outer loop unless it moves the tile exactly as the inner loop does.
* **reads**: words its child level (or the MACs) takes: ``D_child`` times, for each level ``k``
  from ``l`` down to the child's parent that has spatial loops, the number of distinct child
  tiles among level ``k``'s own children. Timeloop compares the children's deltas within one
  spatial group only (``ComputeAccurateMulticastedAccesses``: exactly equal deltas share one
  access; deltas that merely overlap share nothing), and a level that bypasses the space passes
  its group's count on to the next kept level (``MaskTiles``); children in different levels'
  groups never share, even where their input windows coincide.
* **updates** (read-write space only): partial sums written back by the children, spatially
  reduced the same way; reads of partial sums are ``updates`` minus first writes (the level's
  distinct outputs), fills likewise exclude the first writes.

Energy is charged per vector (``ceil(count / words_per_vector)``), leakage per utilized
instance-cycle; cycles are the compute cycles or, if slower, the most bandwidth-bound level.

Which Timeloop output pins each rule (all in ``../shared/reference/timeloop``, held exactly by
``tests/test_timeloop_reference.py``):

* per-instance counts, vector energy, leakage: ``ispass2020_00-model-conv1d-1level``;
* a tile stationary across an outer loop, parent reads = child fills: ``ispass2020_01`` (os, ws);
* sliding-window (halo) fills, refetch on a stride change: ``ispass2020_02`` (tiling vs
  no-tiling: 288 vs 576 Buffer Inputs fills);
* bypass (a level keeping nothing of a space): ``ispass2020_03`` (bypass vs no-bypass);
* spatial multicast and spatial reduction of partial sums, first-write elision:
  ``ispass2020_04`` (cp: inputs multicast to 16 buffers, kp: outputs reduced);
* multicast within one group over bypassed dummy levels: ``example_designs_simple_weight_
  stationary`` (M multicast over the rows) and ``example_designs_eyeriss_like`` (Q over the
  columns, C and S over the rows in another group: 126 x 10,752 = 1,354,752 GLB Inputs reads,
  no sharing between groups).

Link transfers (Timeloop's neighbour forwarding, ``ComputeNetworkLinkTransfers``, on by default
as in Timeloop): ``accelerators.links`` has the rule; :func:`_link_queries` finds the mappings
and visit kinds where a link is possible (a necessary test on translations) and
:func:`_apply_links` corrects their counts (``link_transfers=False`` turns it off); before
them, :func:`_link_pretests` (the window test, the rigid cut, zero translations, bypassing
children with distinct tiles) rules out, per group and data space, the mappings where no link
can change a count, and split mappings go to the split architecture only where a group's link
does (:func:`_links_used`). Pinned by
``tests/test_links.py`` (worked by hand from Timeloop's source) and the property tests against
``accelerators.reference``; no public Timeloop output uses a link.

A mapping that splits one dimension across X and Y of a level is evaluated as Timeloop can
write it, with the Y loops on a dummy level below (``arch.split_xy``): two spatial groups.

The batched code evaluates ``D`` in the equivalent integer form ``D = tile * N_above - kept * Y``
(``N_above = N_out * n_i1``: all iterations above ``l``; ``kept = tile - ov(T_i1)``;
``Y = W_i1 + sum_{i > i1, T_i == T_i1} W_i``), over chunks of mappings in batch-last arrays. Per
chunk it skips only work that is exactly trivial (dimensions whose factors are all 1, levels
without spatial factors, the per-mapping keep chain when all keep the same spaces) and uses int32
for the loop-sequence arrays where the factors bound them below 2^31. The factor arrays are
transposed to batch-last in cache-sized blocks of mappings, loop orders are renumbered before
their (then int8) transposition, results that depend only on the chunk's uniform properties
(spatial reuse per spatial level) are computed once per chunk, and when the chunk keeps
uniformly, ``Y`` is formed only where a level keeps the space (elsewhere it is unused). Factors are positive
integers (``to_batch`` enforces it); the shortcuts rely on that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from .arch import Architecture, split_xy
from .errors import MappingError
from .links import choose, exact_counts, feasible, may_link, space_geometry
from .multicast import distinct_tiles
from .mapping import Mapping, MappingBatch, check_batch, default_keep, level_bits, to_batch
from .tiles import coef_matrices as _coef_matrices, tile_sizes  # noqa: F401  (tile_sizes: public here too)
from .workload import Workload


# ----------------------------------------------------------------------------- geometry helpers

# ----------------------------------------------------------------------------- results

@dataclass
class BatchResult:
    """Arrays over a batch of B mappings (counts per instance, energies in pJ)."""
    valid: np.ndarray          # (B,)
    reads: np.ndarray          # (B, L, S)
    fills: np.ndarray
    updates: np.ndarray
    link_transfers: np.ndarray  # (B, L, S) words level l's children take over links, per instance of l
    tiles: np.ndarray          # (B, L, S) words kept (0 where bypassed)
    instances_used: np.ndarray  # (B, L)
    energy_action_pj: np.ndarray  # (B, L, S, 3) read / fill / update energy, all instances
    leak_pj: np.ndarray        # (B, L)
    level_energy_pj: np.ndarray  # (B, L) incl. leakage
    mac_energy_pj: float       # (or (B,) from evaluate_group: each row's layer)
    energy_pj: np.ndarray      # (B,)
    compute_cycles: np.ndarray  # (B,)
    cycles: np.ndarray         # (B,)
    utilization: np.ndarray    # (B,)
    macs_used: np.ndarray      # (B,) MAC instances with work
    computes: int              # (or (B,) from evaluate_group)

    @property
    def edp(self) -> np.ndarray:
        """Energy-delay product in pJ*cycles."""
        return self.energy_pj * self.cycles


CHUNK = 32_768      # mappings per chunk: see evaluate_batch


def evaluate_batch(arch: Architecture, work: Workload, batch: MappingBatch,
                   chunk: int = CHUNK, link_transfers: bool = True, _rows=None) -> BatchResult:
    """Evaluate B mappings of ``work`` on ``arch`` at once. Invalid ones get ``valid=False``
    (their figures are still computed, but meaningless). Large batches are processed in chunks
    that bound the temporaries; each chunk writes its rows of the result in place. (32,768 per
    chunk: 4-15% more evaluations/s than 8,192 on both templates and mixes of
    ``benchmarks/cost_model.py``, 2026-12-03, for about 90 MB more peak memory; the figures do
    not depend on it.)
    ``link_transfers``: Timeloop's neighbour forwarding (on by default, as in Timeloop; see
    ``accelerators.links``); off, every child's delta comes from its parent."""
    B, L, S = len(batch), len(arch.levels), len(work.dataspaces)
    _check_arrays(batch, L, len(work.dims), S)
    # the count and energy arrays are only written where they are not zero; the others in full
    full = ("valid", "instances_used", "leak_pj", "level_energy_pj", "energy_pj",
            "compute_cycles", "cycles", "utilization", "macs_used")
    # stored batch-last, (..., B), and handed out as (B, ...) views: the chunks write one
    # contiguous row per (level, space) instead of a strided column
    out = {k: np.moveaxis((np.empty if k in full else np.zeros)(shape + (B,), dtype), -1, 0)
           for k, (shape, dtype) in _result_arrays(L, S).items()}
    plan = _plan(arch, work, link_transfers)
    # ``_rows``: (bounds (B, D), macs (B,)) per mapping, for evaluate_group (``work`` is then
    # the group's envelope)
    rb = (lambda sl: None) if _rows is None else (lambda sl: (_rows[0][sl], _rows[1][sl]))
    deferred = []
    for i in range(0, B, chunk):
        rows = _evaluate_chunk(plan, batch[i:i + chunk], {k: v[i:i + chunk] for k, v in out.items()},
                               defer=B > chunk, rows=rb(slice(i, i + chunk)))
        if rows.size:
            deferred.append(rows + i)
    if deferred:
        # the few mappings whose link transfers need the exact route, gathered from every chunk
        # and evaluated again together (that route's cost is mostly per call, not per mapping)
        rows = np.concatenate(deferred)
        for j in range(0, rows.size, chunk):
            r = rows[j:j + chunk]
            part = {k: np.zeros_like(v[r]) for k, v in out.items()}
            _evaluate_chunk(plan, batch[r], part, defer=False, rows=rb(r))
            for k, v in part.items():
                out[k][r] = v
    macs = work.macs if _rows is None else _rows[1]
    return BatchResult(**out, mac_energy_pj=macs * arch.compute.energy_pj, computes=macs)


def group_key(work: Workload) -> tuple:
    """Layers with the same key (dimensions, data-space projections with their coefficients,
    bit-widths; any bounds) can be evaluated together by :func:`evaluate_group`."""
    k = work.key()
    return (k[0], k[2], k[3])


_ENVELOPES: dict = {}


def _envelope(works) -> Workload:
    """One workload of the group with every dimension's largest bound: its data-space codes
    (radices wider than any member's offsets) are exact for every member. Kept, so that the
    model's plan cache finds it again."""
    w0 = works[0]
    bounds = {d: max(w.bounds[d] for w in works) for d in w0.dims}
    key = (group_key(w0), tuple(bounds[d] for d in w0.dims))
    env = _ENVELOPES.get(key)
    if env is None:
        if len(_ENVELOPES) >= 256:
            _ENVELOPES.pop(next(iter(_ENVELOPES)))
        env = _ENVELOPES[key] = Workload(f"group({w0.name})", w0.dims, bounds, w0.dataspaces, dict(w0.bits))
    return env


def evaluate_group(arch: Architecture, works, batch: MappingBatch, which: np.ndarray,
                   chunk: int = CHUNK, link_transfers: bool = True) -> BatchResult:
    """Evaluate mappings of several layers of one structure (:func:`group_key`) at once: row
    ``i`` of ``batch`` maps ``works[which[i]]``. Every figure is the one :func:`evaluate_batch`
    gives for that layer alone (the shape enters only through validity and the MAC count;
    ``computes`` and ``mac_energy_pj`` are per row). A mapper that runs many layers in lockstep
    feeds the model one large batch instead of one small batch per layer."""
    works = list(works)
    keys = {group_key(w) for w in works}
    if len(keys) != 1:
        raise ValueError("evaluate_group: the layers differ in more than their bounds")
    which = np.asarray(which, np.int64)
    env = _envelope(works)
    bounds = np.array([[w.bounds[d] for d in env.dims] for w in works], np.int64)[which]
    macs = np.array([w.macs for w in works], np.int64)[which]
    return evaluate_batch(arch, env, batch, chunk=chunk, link_transfers=link_transfers, _rows=(bounds, macs))


def _split_batch(batch: MappingBatch, split: list) -> MappingBatch:
    """``batch`` on ``split_xy(arch)``: after each level in ``split`` a dummy level that takes its
    Y spatial factors (``mapping.split_mapping`` for arrays)."""
    B, L, D = batch.tf.shape
    parts = {k: [] for k in ("tf", "sx", "sy", "perm", "keep")}
    for l in range(L):
        sy = batch.sy[:, l:l + 1]
        parts["tf"].append(batch.tf[:, l:l + 1])
        parts["sx"].append(batch.sx[:, l:l + 1])
        parts["sy"].append(np.ones_like(sy) if l in split else sy)
        parts["perm"].append(batch.perm[:, l:l + 1])
        parts["keep"].append(batch.keep[:, l:l + 1])
        if l in split:
            parts["tf"].append(np.ones_like(sy))
            parts["sx"].append(np.ones_like(sy))
            parts["sy"].append(sy)
            parts["perm"].append(np.broadcast_to(np.arange(D), (B, 1, D)))
            parts["keep"].append(np.zeros_like(batch.keep[:, l:l + 1]))
    # (the spatial order is dropped, as mapping.split_mapping drops it: Timeloop cannot write
    # these mappings otherwise, so none of them comes with an order of its own)
    return MappingBatch(*(np.ascontiguousarray(np.concatenate(parts[k], axis=1))
                          for k in ("tf", "sx", "sy", "perm", "keep")))


def _result_arrays(L: int, S: int) -> dict:
    """Shape (after the batch axis) and dtype of each array field of :class:`BatchResult`."""
    i8, f8 = np.int64, np.float64
    return {"valid": ((), bool), "reads": ((L, S), i8), "fills": ((L, S), i8),
            "updates": ((L, S), i8), "link_transfers": ((L, S), i8), "tiles": ((L, S), i8), "instances_used": ((L,), i8),
            "energy_action_pj": ((L, S, 3), f8), "leak_pj": ((L,), f8),
            "level_energy_pj": ((L,), f8), "energy_pj": ((), f8), "compute_cycles": ((), i8),
            "cycles": ((), i8), "utilization": ((), f8), "macs_used": ((), i8)}


_PLANS: dict = {}
# links.choose's answers, one dict for every plan and call (a mapper's populations repeat the same
# spatial groups, call after call, and so do the chunks of one call), bounded by links.choose
# (emptied past 200,000 entries). A query's answer is a function of its row and of the context the
# callers pass: the mesh, the space's translation codes and _Plan.choose_context.
_CHOOSE_MEMO: dict = {}


def clear_choose_memo() -> None:
    """Empty ``links.choose``'s memo (kept across calls): a benchmark that times a batch from
    scratch calls this first."""
    _CHOOSE_MEMO.clear()


def _plan(arch: Architecture, work: Workload, link_transfers: bool) -> "_Plan":
    """The :class:`_Plan` of (arch, work), kept for the next call with the same two objects (a
    mapper evaluates one layer on one architecture many times): identity, not equality, so a
    changed object never finds a stale plan."""
    key = (id(arch), id(work), link_transfers)
    hit = _PLANS.get(key)
    if hit is not None and hit.arch is arch and hit.work is work:
        return hit
    if len(_PLANS) >= 64:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[key] = plan = _Plan(arch, work, link_transfers)
    return plan


class _Plan:
    """What evaluating mappings of ``work`` on ``arch`` needs that no mapping changes."""

    def choose_context(self, ch, s: int) -> bytes:
        """What a ``links.choose`` answer on space ``s`` depends on beyond its row and the mesh:
        the chunk's kept dimensions and the space's axes (its distinct-tile count ``G``)."""
        return ch.kd.tobytes() + repr(ch.spaces[s]["axes"]).encode()

    def split_xy(self):
        """``arch.split_xy(self.arch)``, computed once."""
        if not hasattr(self, "_split"):
            self._split = split_xy(self.arch)
        return self._split

    def __init__(self, arch: Architecture, work: Workload, link_transfers: bool = True):
        self.arch, self.work, self.link_transfers = arch, work, link_transfers
        self.geo = space_geometry(work)
        self.bounds = np.array([work.bounds[d] for d in work.dims], np.int64)
        self.coef = _coef_matrices(work)
        # Translations are compared as exact integer codes: a data-space vector v is encoded as
        # sum_j v_j * R_j with radices wider than any |v_j| can be, so the code is injective and
        # linear, and T_i = s_i - sum_{k<i} s_k becomes a cumulative sum of scalars.
        self.codes = np.empty((len(self.coef), len(work.dims)), np.int64)
        for s, C in enumerate(self.coef):
            full_axis = C @ (self.bounds - 1) + 1
            radix = np.concatenate([[1], np.cumprod(2 * full_axis + 1)[:-1]]).astype(np.int64)
            self.codes[s] = radix @ C
        self.rw = [ds.read_write for ds in work.dataspaces]
        self.allowed = default_keep(arch, work)
        self.bits = [[level_bits(lv, work, ds) for ds in work.dataspaces] for lv in arch.levels]
        self.block = [[None if lv.is_dummy else lv.block_words(b) for b in bits]
                      for lv, bits in zip(arch.levels, self.bits)]
        self._spaces = {}
        self._seq_base = {}

    def seq_base(self, L: int, Dk: int, Db: int, k0: int, B: int) -> np.ndarray:
        """(M, B) flat offsets into an (L, Db, B) array of row k * Dk + j of the loop sequence
        (level L-2-k, dimension k0 + (its kept dimension), mapping b), less dimension * B: the
        same for every chunk of B mappings, so cached."""
        key = (L, Dk, Db, k0, B)
        if key not in self._seq_base:
            lev = np.repeat(np.arange(L - 2, -1, -1) * (Db * B), Dk) + k0 * B
            self._seq_base[key] = lev[:, None] + np.arange(B)
        return self._seq_base[key]

    def spaces(self, kd: tuple) -> list:
        """Per data space, over the kept dimensions ``kd`` (renumbered 0..): its axes as tuples of
        (dimension, coefficient), skipping axes no dimension indexes (extent 1), and as rows of
        ``C``; which axes have a single dimension with a positive coefficient (``single``); per
        dimension, whether no such axis has it (``untouched``); its translation codes."""
        if kd not in self._spaces:
            out = []
            for s, C in enumerate(self.coef):
                C = C[:, list(kd)]
                C = C[(C != 0).any(axis=1)]
                axes = [tuple((int(p), int(row[p])) for p in np.nonzero(row)[0]) for row in C]
                single = [len(a) == 1 and a[0][1] > 0 for a in axes]
                in_single = np.zeros(len(kd), bool)
                for a, one in zip(axes, single):
                    if one:
                        in_single[a[0][0]] = True
                # for the link pre-tests (:func:`_link_pretests`): the dimensions on axes that sum
                # several dimensions (sliding windows), those the space does not depend on, and
                # whether every coefficient is positive (the pre-tests' proof needs it)
                window = sorted({p for a in axes if len(a) > 1 for p, _ in a})
                other = [p for p in range(len(kd)) if not C[:, p].any()]
                out.append({"axes": axes, "C": C, "single": single, "untouched": ~in_single,
                            "codes": self.codes[s, list(kd)], "window": window, "other": other,
                            "lut": {a[0][0]: np.isin(np.arange(len(kd)), [p for p, _ in a])
                                    for a in axes if len(a) > 1},
                            "positive": bool((C >= 0).all())})
            self._spaces[kd] = out
        return self._spaces[kd]


def _check_arrays(batch: MappingBatch, L: int, D: int, S: int) -> None:
    """The batch's array shapes and kinds (a ValueError naming the field otherwise; the values,
    positive factors and loop orders that are permutations, are checked per chunk by
    :func:`_chunk_factors`, on arrays it builds anyway)."""
    B = len(batch)
    want = {"tf": (B, L, D), "sx": (B, L, D), "sy": (B, L, D), "perm": (B, L, D), "keep": (B, L, S)}
    if batch.sorder is not None:
        want["sorder"] = (B, L, D)
    for name, shape in want.items():
        a = getattr(batch, name)
        if not isinstance(a, np.ndarray) or a.shape != shape:
            raise ValueError(f"MappingBatch.{name}: shape {getattr(a, 'shape', type(a).__name__)}, expected "
                             f"{shape} (mappings, levels, {'data spaces' if name == 'keep' else 'dimensions'})")
        if name == "keep" and a.dtype != bool:
            raise ValueError(f"MappingBatch.keep: dtype {a.dtype}, expected bool")
        if name != "keep" and a.dtype.kind not in "iu":
            raise ValueError(f"MappingBatch.{name}: dtype {a.dtype}, expected integers")


def _bad_values(batch: MappingBatch, what: str) -> ValueError:
    """The first offending entry of a chunk that failed :func:`_chunk_factors`' value checks."""
    B, L, D = batch.tf.shape
    if what == "factors":
        for name in ("tf", "sx", "sy"):
            a = getattr(batch, name)
            bad = np.argwhere(a < 1)
            if bad.size:
                b, l, d = bad[0]
                return ValueError(f"MappingBatch.{name}[{b}, {l}, {d}]: factors must be positive integers, "
                                  f"got {a[b, l, d]}")
    for b, l in np.ndindex(B, L - 1):
        if sorted(batch.perm[b, l].tolist()) != list(range(D)):
            return ValueError(f"MappingBatch.perm[{b}, {l}]: {batch.perm[b, l].tolist()} is not a "
                              f"permutation of the {D} dimensions' indices")
    return ValueError("MappingBatch.perm: a loop order is not a permutation")


def _evaluate_chunk(plan: _Plan, batch: MappingBatch, out: dict, defer: bool = False, rows=None) -> np.ndarray:
    """Evaluate a chunk into ``out``: zero-initialised (B, ...) arrays, the fields of BatchResult.
    With ``defer``, the mappings whose link transfers take the exact route (split mappings, and
    those :func:`_apply_links` sends to ``links.exact_counts``), when they are a small part of
    the chunk, are returned instead of finished: their rows of ``out`` are to be evaluated again
    without ``defer``. ``rows``: (bounds (B, D), macs (B,)) of each mapping's own layer, where
    the plan's workload is a group's envelope (:func:`evaluate_group`).
    The stages, in order: the chunk's factors batch-last (:func:`_chunk_factors`), the loop
    sequence above each level (:func:`_loop_sequence`), tiles and per-instance demand
    (:func:`_tiles_and_demand`), reads / fills / updates along the keep chain
    (:func:`_access_counts`), cycles, energy and validity.

    Internally every array is batch-last, (..., B), so that numpy's loops run contiguously over
    the mappings and the per-level / per-loop recurrences are short Python loops. Work that the
    data makes trivial is skipped, never approximated: dimensions whose factors are all 1 (bound
    1, e.g. N=1), levels without spatial factors in this chunk, the loops of the innermost level
    (they are above no level), and the keep chain when the whole chunk keeps the same data spaces
    (the usual case) is resolved in Python instead of per mapping."""
    ch = _chunk_factors(plan, batch)
    if rows is None:
        ch.bounds, ch.macs = plan.bounds[ch.kd, None], plan.work.macs
    else:
        ch.bounds, ch.macs = np.ascontiguousarray(rows[0][:, ch.kd].T), rows[1]
    # A dimension split across X and Y of one level: Timeloop can only write (and evaluate) that
    # with a dummy level below taking the Y fan-out (``arch.split_xy``), which makes the X and Y
    # loops two spatial groups; such mappings are evaluated that way (``ch.split``).
    split_levels = plan.split_xy()[1]
    ch.split = np.zeros(ch.B, bool)
    for l in split_levels:                      # (elsewhere no level fans out in both X and Y)
        if ch.spatial[l]:
            for d in range(ch.Dk):
                ch.split |= (ch.sx[l][d] > 1) & (ch.sy[l][d] > 1)
    ch.split_levels = split_levels if ch.split.any() else []
    seq = _loop_sequence(plan, ch)
    d1, sc1, N_above, Y = seq["d1"], seq["sc1"], seq["N_above"], seq["Y"]
    tiles, Dl, part, computes_pe, kept = _tiles_and_demand(plan, ch, d1, sc1, N_above, Y)
    counts, rsum, wsum = _access_counts(plan, ch, tiles, Dl, part, out)
    deferred = np.zeros(0, np.int64)
    if plan.link_transfers and any(ch.spatial):
        defer = defer and ch.B >= 64
        pre = _link_pretests(plan, ch, seq, kept)
        skip = None
        if defer and ch.split_levels:
            # split mappings whose groups may link (with the pre-tests: their split masks), when
            # few: later, together with other chunks'; the others take no link, finished here
            maybe = ch.split.copy()
            if pre:
                maybe[:] = False
                for l in ch.split_levels:
                    for m in (pre[l][1] if l in pre else [None]):
                        maybe |= ch.split if m is None else ch.split & m
            if maybe.sum() <= ch.B // 8:
                deferred = np.flatnonzero(maybe)
                if pre:         # the others stay: the split branch skips them, other levels not
                    skip = maybe
                else:
                    skip = ch.split
                    ch.split_levels = []
        full, full_split, queries = _link_queries(plan, ch, seq, tiles, kept, skip, batch.sorder, pre)
        if defer and full_split.any() and full_split.sum() <= ch.B // 8:
            # split mappings that use a link (with the pre-tests: only those), when few: to the
            # split architecture later, together with other chunks' (that route's cost is mostly
            # per call); the others are finished here
            deferred = np.union1d(deferred, np.flatnonzero(full_split))
            full_split = np.zeros_like(full_split)
        if defer and 0 < full.sum() <= ch.B // 8:
            deferred = np.union1d(deferred, np.flatnonzero(full))
            full = np.zeros_like(full)
        if full.any() or full_split.any() or queries:
            rsum, wsum, late = _apply_links(plan, ch, batch, full, queries, counts, out, full_split,
                                            ch.B // 8 - deferred.size if defer else 0)
            deferred = np.union1d(deferred, late)
    cycles = _cycles(plan.arch, computes_pe, rsum, wsum)
    leak, level_energy, energy = _energy(plan, ch, counts, cycles, out)
    ok = _validity(plan, ch, tiles)
    arch, inst_used = plan.arch, ch.inst_used
    out["valid"][:] = ok
    out["instances_used"][:] = inst_used[:ch.L].T
    out["leak_pj"][:] = leak.T
    out["level_energy_pj"][:] = level_energy.T
    out["energy_pj"][:] = energy
    out["compute_cycles"][:] = computes_pe
    out["cycles"][:] = cycles
    out["utilization"][:] = ch.macs / (cycles * arch.compute.instances)
    out["macs_used"][:] = inst_used[ch.L]
    return deferred


@dataclass
class _Chunk:
    """A chunk's factors, batch-last, restricted to the kept dimensions ``kd`` (see
    :func:`_chunk_factors`), and what follows from them alone."""
    B: int                      # mappings
    L: int                      # storage levels
    S: int                      # data spaces
    kd: np.ndarray              # the kept workload dimensions
    Dk: int                     # how many
    k0: int                     # tf = tf_base[:, k0:k0 + Dk]
    tf_base: np.ndarray         # (L, Db, B) temporal factors
    tf: np.ndarray              # (L, Dk, B) temporal factors of the kept dimensions
    sx: np.ndarray              # (L, Dk, B) spatial factors
    sy: np.ndarray
    order: np.ndarray           # (L - 1, Dk, B) loop orders of levels L-2 .. 0, innermost first
    spaces: list                # plan.spaces(kd)
    keep: np.ndarray            # (L, S, B) bool
    uniform: bool               # every mapping keeps the same spaces
    spatial: list               # per level: any spatial factor in the chunk
    sx_min: list                # per level: least spatial factors (1 where not spatial)
    sy_min: list
    tf_min: int                 # least temporal factor of the kept dimensions
    sf: list                    # per level: (Dk, B) sx * sy, or None where not spatial
    inner_incl: np.ndarray      # (L + 1, Dk, B) extents: product over levels >= l
    inner: np.ndarray           # (L, Dk, B) product over levels > l
    inst_used: np.ndarray       # (L + 1, B) instances used: spatial product over levels < l
    split: np.ndarray = None    # (B,) one dimension on both X and Y of a level (see _evaluate_chunk)
    split_levels: list = field(default_factory=list)   # levels that fan out in X and Y
    n_distinct: dict = field(default_factory=dict)    # (level, space) -> (B,) distinct child tiles
    bounds: np.ndarray = None   # (Dk, 1) the workload's bounds, or (Dk, B) each mapping's layer's
    macs: object = None         # the MACs: an int, or (B,) each mapping's layer's


def _chunk_factors(plan: _Plan, batch: MappingBatch) -> _Chunk:
    """The chunk's factors batch-last, over the dimensions that are not trivially 1, with the
    extents and instance counts they imply."""
    work, bounds = plan.work, plan.bounds
    B, L, D = batch.tf.shape
    S = len(work.dataspaces)

    # -- the factors, batch-last: (B, L, D) -> (L, D, B) int64, by a blocked transposition
    # (see _batch_last); every later step reads these contiguous rows.
    tf_all, sx_all, sy_all = (_batch_last(a, L * D).reshape(L, D, B)
                              for a in (batch.tf, batch.sx, batch.sy))
    # -- workload dimensions: drop those whose factors are all 1 (all their loops are trivial,
    # they add 1 to no extent; validity then needs bound 1, which is what selects them).
    kd = [d for d in range(D) if bounds[d] != 1
          or any((a[:, d] != 1).any() for a in (tf_all, sx_all, sy_all))] or [0]
    # Loop orders of levels L-2 .. 0 (level L-1's loops are above no storage level), batch-last,
    # renumbered to the kept dimensions (-1: dropped), then the dropped ones squeezed out of each
    # order: after a dropped entry (``gone``) every position takes its successor's value
    # (x + (next - x) * gone, in int8 without overflow as ids are > -2 and < 127: faster than where).
    # Renumbering first (batch-first, contiguous) makes the transposed copy one of int8s.
    renum = np.full(D, -1, np.int8 if D < 128 else np.int64)       # int8: less memory traffic
    renum[kd] = np.arange(len(kd))
    prow = (np.arange(L - 2, -1, -1)[:, None] * D + np.arange(D)).ravel()
    try:
        order = renum.take(batch.perm).reshape(B, L * D).T[prow].reshape(L - 1, D, B)
    except IndexError:
        raise _bad_values(batch, "perm") from None
    # loop orders must be permutations: every kept dimension exactly once per level (checked on
    # the renumbered orders, batch-last: the bits 1 << (index + 1) of the entries OR to all kept
    # ones, and the entries + 1 sum to 1 + ... + Dk, so no kept index comes twice; the dropped
    # dimensions, all of whose loops are trivial, may come in any order; level L-1's order is
    # above no level and never read)
    Dk = len(kd)
    if Dk < 15:
        dt = np.int8 if Dk < 7 else np.int16
        seen = np.zeros((L - 1, B), dt)
        total = np.zeros((L - 1, B), np.int16)
        one = dt(1)
        for j in range(D):
            up = order[:, j] + one if order.dtype == dt else order[:, j].astype(dt) + one
            seen |= np.left_shift(one, up, dtype=dt)
            total += up
        if ((seen | one) != (1 << (Dk + 1)) - 1).any() or (total != Dk * (Dk + 1) // 2).any():
            raise _bad_values(batch, "perm")
    elif any(sorted(batch.perm[b, l].tolist()) != list(range(D)) for b in range(B) for l in range(L - 1)):
        raise _bad_values(batch, "perm")
    permutations = True
    for n in range(D, len(kd), -1):
        gone = order[:, 0] < 0
        squeezed = np.empty((L - 1, n - 1, B), order.dtype)
        for j in range(n - 1):
            if j:
                gone |= order[:, j] < 0
            out_j = np.subtract(order[:, j + 1], order[:, j], out=squeezed[:, j])
            out_j *= gone
            out_j += order[:, j]
        permutations &= bool((gone | (order[:, n - 1] < 0)).all())   # one dropped entry each
        order = squeezed
    if not permutations or (order < 0).any():    # not permutations: keep every dimension
        kd = list(range(D))
        order = np.ascontiguousarray(batch.perm).reshape(B, L * D).T[prow].reshape(L - 1, D, B)
    spaces = plan.spaces(tuple(kd))
    Dk = len(kd)
    # The kept dimensions' rows: a view when they are consecutive (e.g. all but N), else a copy.
    # ``tf_base`` (L, Db, B) is contiguous and tf = tf_base[:, k0:k0 + Dk].
    if kd[-1] - kd[0] + 1 == Dk:
        k0, tf_base = kd[0], tf_all
        sel = slice(kd[0], kd[0] + Dk)
        tf, sx, sy = tf_all[:, sel], sx_all[:, sel], sy_all[:, sel]
    else:
        k0, tf_base = 0, tf_all[:, kd]
        tf, sx, sy = tf_base, sx_all[:, kd], sy_all[:, kd]
    kd = np.array(kd)
    keep = np.ascontiguousarray(batch.keep).reshape(B, L * S).T.reshape(L, S, B)
    uniform = bool((batch.keep == batch.keep[:1]).all())   # every mapping keeps the same spaces

    # Levels with spatial factors in this chunk (elsewhere sx = sy = 1: no fan-out, no reuse).
    # (over all dimensions: the dropped ones are all 1, which changes neither this nor the
    # minima used below)
    not_one = sx_all != 1
    not_one |= sy_all != 1
    spatial = not_one.reshape(L, -1).any(1)
    # their least spatial factors (1 elsewhere), for the int32 bound below
    sx_min = [int(sx_all[l].min()) if spatial[l] else 1 for l in range(L)]
    sy_min = [int(sy_all[l].min()) if spatial[l] else 1 for l in range(L)]
    tf_min = int(tf.min())
    if tf_min < 1 or min(sx_min) < 1 or min(sy_min) < 1:
        raise _bad_values(batch, "factors")
    sf = [sx[l] * sy[l] if spatial[l] else None for l in range(L)]
    inner_incl = np.empty((L + 1, Dk, B), np.int64)                   # prod over levels >= l
    inner_incl[L] = 1
    for l in range(L - 1, -1, -1):
        np.multiply(inner_incl[l + 1], tf[l], out=inner_incl[l])
        if spatial[l]:
            inner_incl[l] *= sf[l]
    inner = inner_incl[1:]                                            # prod over levels > l
    inst_used = np.ones((L + 1, B), np.int64)                         # spatial over levels < l
    for l in range(L):
        inst_used[l + 1] = inst_used[l]
        if spatial[l]:
            for d in range(Dk):
                inst_used[l + 1] *= sf[l][d]
    return _Chunk(B=B, L=L, S=S, kd=kd, Dk=Dk, k0=k0, tf_base=tf_base, tf=tf, sx=sx, sy=sy,
                  order=order, spaces=spaces, keep=keep, uniform=uniform, spatial=spatial,
                  sx_min=sx_min, sy_min=sy_min, tf_min=tf_min, sf=sf, inner_incl=inner_incl, inner=inner,
                  inst_used=inst_used)


def _loop_sequence(plan: _Plan, ch: _Chunk):
    """Over the loops above the storage levels, per level ``l`` (1..L-1): the dimension ``d1`` and
    step ``sc1`` of its innermost non-trivial loop, ``N_above`` (all iterations above it) and, per
    data space, ``Y`` (see the module docstring); each (L-1, ...) batch-last."""
    B, L, S, Dk, k0 = ch.B, ch.L, ch.S, ch.Dk, ch.k0
    tf, tf_base, order, spaces, keep, uniform = ch.tf, ch.tf_base, ch.order, ch.spaces, ch.keep, ch.uniform
    sx_min, sy_min, sf, inner_incl, inner = ch.sx_min, ch.sy_min, ch.sf, ch.inner_incl, ch.inner
    col = np.arange(B)
    # The loop-sequence arrays (iteration products, W, translation codes and their prefix sums)
    # are int32 when this chunk's factors bound them below 2^31, else int64; the values are the
    # same. With positive factors, a dimension's loop steps sum to at most (product of its
    # factors) - 1 (telescoping), so |code sums| <= sum_d |code_d| * (max product_d - 1), and
    # products of iterations are at most the product over dimensions of those maxima.
    codes = np.array([sp["codes"] for sp in spaces])                  # (S, Dk)
    mx = [int(v) for v in inner_incl[0].max(axis=1)]
    narrow = (ch.tf_min >= 1
              and prod(mx) < 2 ** 31 and int(np.abs(codes).max()) < 2 ** 31
              and all(sum(abs(int(c)) * (m - 1) for c, m in zip(row, mx)) < 2 ** 31 for row in codes))
    it = np.int32 if narrow else np.int64

    # -- the loops above the storage levels, in one sequence, innermost first: level L-2 .. 0
    # (row k * Dk + j is the j-th innermost loop of level L-2-k), M of them.
    M = (L - 1) * Dk
    d_seq = order.reshape(M, B)
    # loop scale (step of the loop's dimension), zero for trivial loops (they never move)
    # (in tf_base's layout (L - 1, Db, B), so that one flat index addresses both; the rows of
    # dropped dimensions are never addressed)
    sc_full = np.empty((L - 1, tf_base.shape[1], B), it)
    sc = sc_full[:, k0:k0 + Dk]
    for l in range(L - 1):
        if sf[l] is None:
            sc[l] = inner[l]
        else:
            np.multiply(inner[l], sf[l], out=sc[l])
    sc *= tf[:L - 1] >= 2
    idx = np.multiply(d_seq, B, dtype=np.int64)
    idx += plan.seq_base(L, Dk, tf_base.shape[1], k0, B)              # flat index into (L, Db, B)
    n_seq = tf_base.ravel().take(idx)                                 # (M, B)
    sc_seq = sc_full.ravel().take(idx)
    # incl_i = prod_{k >= i} n_k; W_i = (n_i - 1) * prod_{k > i} n_k = incl_i - incl_{i+1}
    incl = np.empty((M + 1, B), it)
    incl[M] = 1
    for i in range(M - 1, -1, -1):
        np.multiply(incl[i + 1], n_seq[i], out=incl[i])
    W = incl[:M] - incl[1:]
    # Level l (1..L-1) has the loops of rows start_l.. above it; g_l is its innermost
    # non-trivial one (i1), or the last row if none (then every W above l is 0).
    starts = [(L - 1 - l) * Dk for l in range(1, L)]
    # first non-trivial row of each level's block (M - 1 if none), then a running minimum
    # from the outermost block inwards: g[l - 1] = first non-trivial row >= start_l
    # (counting each block's leading trivial loops with 0/1 arithmetic; np.where is slower)
    act = (n_seq >= 2).reshape(L - 1, Dk, B)
    run = ~act[:, 0]                                                  # still trivial so far
    lead = run.astype(np.int64)
    for j in range(1, Dk):
        np.greater(run, act[:, j], out=run)                           # run & ~act
        lead += run
    first = np.where(lead < Dk, lead + np.arange(L - 1)[:, None] * Dk, M - 1)
    g = first[::-1].copy()                                            # g[l - 1] <-> level l
    for r in range(1, L - 1):
        np.minimum(g[r], g[r - 1], out=g[r])
    N_above = incl[starts]                                            # (L-1, B) iterations above l
    gi = g * B + col
    d1, sc1 = d_seq.ravel().take(gi), sc_seq.ravel().take(gi)          # (L-1, B) loop i1's dim/step

    # -- D_l per data space (see the module docstring), in the exact integer form
    # D = tile * N_above - kept * Y  (from D = N_out * (tile + (n1 - 1) * ov1) - (tile - ov1) * X
    # with N_out * n1 = N_above, Y = X + W_i1, kept = tile - ov1), where
    # kept = prod_j max(0, ax_j - C[j, d1] * sc1) and Y = sum_{i >= i1, T_i == T_i1} W_i.
    s_code = np.take(codes.astype(it), d_seq, axis=1)                 # (S, M, B)
    s_code *= sc_seq
    # U_i = s_i - sum_{k<i} s_k: for the loops above level l, T_i = U_i + (sum_{k<start} s_k),
    # so T_i == T_i1 exactly when U_i == U_i1 (the loops of level L-1 only add a constant).
    U = np.empty_like(s_code)                                         # prefix sums first
    U[:, :1] = 0
    for i in range(M - 1):
        np.add(U[:, i], s_code[:, i], out=U[:, i + 1])
    np.subtract(s_code, U, out=U)
    Uflat = U.reshape(S, M * B)
    # Y of level l = r + 1 is only used where l keeps the space (its fills, and the demand of
    # its parent): when the chunk keeps uniformly, the others are left 0.
    Y = np.zeros((L - 1, S, B), it)
    for r, st in enumerate(starts):
        need = [s for s in range(S) if not uniform or keep[r + 1, s, 0]]
        if len(need) == S:
            match = U[:, st:] == Uflat.take(gi[r], axis=1)[:, None, :]
            Y[r] = np.einsum("srb,rb->sb", match, W[st:])         # loops inside i1 have W = 0
        else:
            for s in need:
                match = U[s, st:] == Uflat[s].take(gi[r])
                Y[r, s] = np.einsum("rb,rb->b", match, W[st:])
    return {"d1": d1, "sc1": sc1, "N_above": N_above, "Y": Y, "U": U, "s_code": s_code, "W": W,
            "g": g, "starts": starts, "n_seq": n_seq}


def _tiles_and_demand(plan: _Plan, ch: _Chunk, d1, sc1, N_above, Y):
    """Per level and data space: tile sizes, ``Dl`` (words each instance of a level takes from its
    parent; row L is the MACs' operand demand), the read-write space's first writes (``part``),
    and the compute cycles per PE."""
    B, L, S, Dk = ch.B, ch.L, ch.S, ch.Dk
    tf, spaces, inner_incl = ch.tf, ch.spaces, ch.inner_incl
    # partition extents (the read-write space's first writes): levels >= l plus temporal above
    part_ext = np.empty((L, Dk, B), np.int64)
    part_ext[0] = inner_incl[0]
    above_t = tf[0].copy()
    for l in range(1, L):
        np.multiply(inner_incl[l], above_t, out=part_ext[l])
        above_t *= tf[l]                                              # all temporal factors
    computes_pe = above_t[0].copy()
    for d in range(1, Dk):
        computes_pe *= above_t[d]

    # kept: an axis of one dimension p (coefficient c > 0) keeps nothing when d1 = p, because
    # sc1, the step of a loop above level l, is at least the level's extent e of p (factors are
    # >= 1): c * (e - 1) + 1 - c * sc1 <= 1 - c <= 0; other such axes keep their extent. Only the
    # axes that sum several dimensions (sliding windows) need max(0, ax_j - C[j, d1] * sc1).
    tiles = np.empty((L, S, B), np.int64)
    Dl = np.empty((L + 1, S, B), np.int64)            # row 0 (level 0's D) is tiles[0]: not set
    kept_out = np.empty((L - 1, S, B), np.int64)       # words kept across loop i1 (link candidates)
    part = [None] * S
    for s, sp in enumerate(spaces):
        axes = _axes(inner_incl[:L], sp["axes"])                      # J x (L, B)
        _product(axes, tiles[:, s])
        kept = sp["untouched"].take(d1)                    # 0 where d1 is a single axis, else 1
        if all(sp["single"]):
            kept = np.multiply(tiles[1:, s], kept)
        else:                       # (int64 products are exact in any order: start with the mask)
            for a, C_j, one in zip(axes, sp["C"], sp["single"]):
                if one:
                    f = a[1:]
                else:
                    f = a[1:] - C_j.take(d1) * sc1
                    np.maximum(f, 0, out=f)
                kept = np.multiply(f, kept) if kept.dtype == bool else np.multiply(kept, f, out=kept)
        np.multiply(tiles[1:, s], N_above, out=Dl[1:L, s])
        kept_out[:, s] = kept
        kept *= Y[:, s]
        Dl[1:L, s] -= kept
        if plan.rw[s]:
            part[s] = _product(_axes(part_ext, sp["axes"]), np.empty((L, B), np.int64))
    Dl[L] = computes_pe
    return tiles, Dl, part, computes_pe, kept_out


def _access_counts(plan: _Plan, ch: _Chunk, tiles, Dl, part, out: dict):
    """Reads, fills and updates of every kept (level, space) along the keep chain, written into
    ``out``; returns them per (level, space) and the per-level read / write totals (for the
    bandwidth-bound cycles)."""
    arch, B, L, S = plan.arch, ch.B, ch.L, ch.S
    keep, uniform, spatial, sf, inner, spaces = ch.keep, ch.uniform, ch.spatial, ch.sf, ch.inner, ch.spaces
    # -- parent / child of each (level, space) along the keep chain: Python ints when the chunk
    # keeps uniformly, else (B,) arrays
    if uniform:
        kp = keep[:, :, 0]
        has_parent = np.zeros((L, S), bool)
        for l in range(1, L):
            has_parent[l] = has_parent[l - 1] | kp[l - 1]
        child = np.empty((L, S), np.int64)
        nxt = np.full(S, L, np.int64)
    else:
        has_parent = np.zeros((L, S, B), bool)
        for l in range(1, L):
            has_parent[l] = has_parent[l - 1] | keep[l - 1]
        child = np.empty((L, S, B), np.int64)
        nxt = np.full((S, B), L, np.int64)
    for l in range(L - 1, -1, -1):
        child[l] = nxt
        nxt = np.where(keep[l, :, 0] if uniform else keep[l], l, nxt)

    reads_o, fills_o, updates_o, tiles_o = (out[k] for k in ("reads", "fills", "updates", "tiles"))
    counts = {}                                                        # (l, s) -> (reads, fills, updates)
    rsum = np.zeros((L, B), np.int64)                                  # per-level totals for bandwidth
    wsum = np.zeros((L, B), np.int64)
    n_distinct = {}

    def distinct(l, c, s):
        """Child tiles of space s that one instance of l serves per child delta (None: 1, no
        fan-out): the product, over the levels k in [l, c) with spatial loops, of the distinct
        tiles among level k's own children. Timeloop compares deltas only inside one spatial
        group (``ComputeAccurateMulticastedAccesses``, equal deltas share an access) and chains
        the groups of bypassed levels by ``MaskTiles``; children of different levels' groups
        never share, even where their windows coincide. Cached per (level, space)."""
        out = None
        for k in range(l, c):
            if not spatial[k]:
                continue
            if (k, s) not in n_distinct:
                n_distinct[(k, s)] = distinct_tiles(spaces[s]["axes"], sf[k],
                                               lambda p, rows, k=k: inner[k, p, rows])
                if k in ch.split_levels:       # X and Y as two groups: Y below, X stepping over it
                    r = np.flatnonzero(ch.split)
                    sx_r, sy_r, in_r = ch.sx[k][:, r], ch.sy[k][:, r], inner[k][:, r]
                    gx = distinct_tiles(spaces[s]["axes"], sx_r, lambda p, rr: (in_r[p] * sy_r[p])[rr])
                    gy = distinct_tiles(spaces[s]["axes"], sy_r, lambda p, rr: in_r[p][rr])
                    g = n_distinct[(k, s)].copy()
                    g[r] = gx * gy
                    n_distinct[(k, s)] = g
            out = n_distinct[(k, s)] if out is None else out * n_distinct[(k, s)]
        return out

    for l in range(L):
        for s in range(S):
            if uniform:
                if not kp[l, s]:
                    continue
                c = int(child[l, s])
                dist = distinct(l, c, s)
                demand = Dl[c, s] if dist is None else Dl[c, s] * dist
                k_mask = None
                f_mask = None if has_parent[l, s] else False
            else:
                k_mask = keep[l, s]
                if not k_mask.any():
                    continue
                demand = np.zeros(B, np.int64)
                for c in range(l + 1, L + 1):
                    sel = (child[l, s] == c) & k_mask
                    if sel.any():
                        dist = distinct(l, c, s)
                        demand = np.where(sel, Dl[c, s] if dist is None else Dl[c, s] * dist, demand)
                f_mask = k_mask & has_parent[l, s]
            D_l = Dl[l, s] if l else tiles[0, s]
            if plan.rw[s]:
                r = demand - part[s][l]
                u = demand if k_mask is None else demand * k_mask
                f = D_l - part[s][l]
            else:
                r, u, f = demand, None, D_l
            if k_mask is not None:
                r = r * k_mask
            if f_mask is False:
                f = None
            elif f_mask is not None:
                f = f * f_mask
            counts[(l, s)] = (r, f, u)
            reads_o[:, l, s] = r
            if arch.levels[l].read_bw:                                 # (totals only where used)
                rsum[l] += r
            if f is not None:
                fills_o[:, l, s] = f
                if arch.levels[l].write_bw:
                    wsum[l] += f
            if u is not None:
                updates_o[:, l, s] = u
                if arch.levels[l].write_bw:
                    wsum[l] += u
            tiles_o[:, l, s] = tiles[l, s] if k_mask is None else tiles[l, s] * k_mask
    ch.n_distinct = n_distinct
    return counts, rsum, wsum


def _cycles(arch: Architecture, computes_pe, rsum, wsum) -> np.ndarray:
    # cycles: compute-bound unless a level's bandwidth is the bottleneck
    cycles = computes_pe.astype(np.float64)
    for l, lv in enumerate(arch.levels):
        if lv.read_bw:
            cycles = np.maximum(cycles, rsum[l] / lv.read_bw)
        if lv.write_bw:
            cycles = np.maximum(cycles, wsum[l] / lv.write_bw)
    cycles = np.ceil(cycles - 1e-9).astype(np.int64)
    return cycles


def _energy(plan: _Plan, ch: _Chunk, counts: dict, cycles, out: dict):
    """Per-action energy written into ``out``; per-level leakage and energy and the total."""
    arch, B, L, S, inst_used = plan.arch, ch.B, ch.L, ch.S, ch.inst_used
    # energy, charged per vector; a level's energy sums its (space, action) terms in order
    e_act = out["energy_action_pj"]
    leak = np.zeros((L, B))
    level_energy = np.zeros((L, B))
    for l, lv in enumerate(arch.levels):
        if lv.is_dummy:
            continue
        en = lv.energy
        pj_inst = [None] * 3                          # energy per action and instance, when needed
        for s in range(S):
            if (l, s) not in counts:
                continue                                               # not kept: all zero
            bw = plan.block[l][s]
            for a, (cnt, pj) in enumerate(zip(counts[(l, s)], (en.read_pj, en.write_pj, en.update_pj))):
                if pj and cnt is not None:
                    if pj_inst[a] is None:
                        pj_inst[a] = pj * inst_used[l]
                    k = pj_inst[a]
                    if bw == 1:
                        v = cnt
                    elif bw & (bw - 1) == 0:       # ceil(cnt / 2^k) = (cnt + 2^k - 1) >> k
                        v = cnt + (bw - 1)
                        v >>= bw.bit_length() - 1
                    else:
                        v = -(-cnt // bw)
                    e = v * k
                    e_act[:, l, s, a] = e
                    level_energy[l] += e
        if en.leak_pj:             # (else leak stays 0.0 = 0.0 * cycles * instances, both > 0)
            leak[l] = en.leak_pj * cycles * inst_used[l]
            level_energy[l] += leak[l]
    mac_energy = ch.macs * arch.compute.energy_pj
    energy = level_energy.sum(0) + mac_energy
    return leak, level_energy, energy


def _validity(plan: _Plan, ch: _Chunk, tiles) -> np.ndarray:
    """Which mappings are legal: factors multiply to the bounds, fan-out, capacity, keep rules."""
    arch, B, S, Dk = plan.arch, ch.B, ch.S, ch.Dk
    sx, sy, keep, uniform, spatial, inner_incl = ch.sx, ch.sy, ch.keep, ch.uniform, ch.spatial, ch.inner_incl
    kp = keep[:, :, 0]
    ok = np.all(inner_incl[0] == ch.bounds, axis=0)
    for l, lv in enumerate(arch.levels):
        if spatial[l]:
            fx, fy = arch.fanout(l)
            px, py = sx[l, 0].copy(), sy[l, 0].copy()
            for d in range(1, Dk):
                px *= sx[l, d]
                py *= sy[l, d]
            ok &= (px <= fx) & (py <= fy)
        if lv.capacity_bits is not None:
            used = np.zeros(B, np.int64)
            for s in range(S):
                if not uniform or kp[l, s]:
                    used += tiles[l, s] * (plan.bits[l][s] * (1 if uniform else keep[l, s]))
            ok &= used <= lv.capacity_bits + 1e-9
    if uniform:
        if (kp & ~plan.allowed).any() or not kp[0].all():
            ok[:] = False
    else:
        ok &= ~np.any(keep & ~plan.allowed[:, :, None], axis=(0, 1)) & np.all(keep[0], axis=0)
    return ok


def _batch_last(a: np.ndarray, R: int, block: int = 512) -> np.ndarray:
    """(B, ...) -> (R, B) int64 copy, R = the product of the trailing axes. A transposed copy
    reads the source with a stride; done in blocks of ``block`` mappings, each block stays in
    cache while its R rows are read (one copy of the whole array re-reads it R times)."""
    a = a.reshape(len(a), R)
    out = np.empty((R, len(a)), np.int64)
    for b in range(0, len(a), block):
        out[:, b:b + block] = a[b:b + block].T
    return out


def _axes(ext: np.ndarray, axes: list) -> list:
    """Axis extents of the box spanned by per-dimension extents ``ext`` (..., D, B): one (..., B)
    array per axis, an axis given as ((dimension, coefficient), ...); an axis of one dimension
    with coefficient 1 is a view of ``ext``."""
    out = []
    for axis in axes:
        if len(axis) == 1 and axis[0][1] == 1:
            out.append(ext[..., axis[0][0], :])                       # (e - 1) * 1 + 1 = e
            continue
        # sum_p c_p (e_p - 1) + 1 = sum_p c_p e_p + (1 - sum_p c_p), exactly in integers
        terms = [ext[..., p, :] if c == 1 else ext[..., p, :] * c for p, c in axis]
        acc = terms[0] + terms[1] if len(terms) > 1 else terms[0].copy()
        for tm in terms[2:]:
            acc += tm
        const = 1 - sum(c for _, c in axis)
        if const:
            acc += const
        out.append(acc)
    return out


def _product(arrays: list, out: np.ndarray) -> np.ndarray:
    """``out`` = the product of ``arrays`` (1 if there are none)."""
    if not arrays:
        out[...] = 1
        return out
    np.copyto(out, arrays[0])
    for a in arrays[1:]:
        out *= a
    return out


_LINK_PRETESTS = True     # off: every group goes through the query route, every query is
                          # enumerated (no memo); the tests hold both routes bit-identical


def _link_pretests(plan: _Plan, ch: _Chunk, seq: dict, kept) -> dict:
    """Per spatial level ``k`` above storage children: ``(masks, split_masks)``, lists over data
    spaces. ``masks[s]``: ``(may, zero)``, (B,) masks of the mappings whose group at ``k`` may
    take a link for space ``s`` and, among them, those where only a zero translation can be a
    link's (``None``: all may). ``split_masks[s]``: the same test for a split mapping's two
    groups (``None`` where ``k`` has no split mappings). The others provably take no link that
    changes a count, so the query route (:func:`_group_queries`, ``links.choose``, the split
    architecture) is skipped for them. Sound, never approximate; held bit-identical to the route
    without them by ``tests/test_link_prefilter.py``. Only rows whose factors multiply to the
    bounds are decided (there every translation and offset lies in the codes' injective range).
    ``kept``: (L - 1, S, B) words a child keeps across loop i1 (``_tiles_and_demand``).

    Why. Child offsets within the group are, per axis, ``sum_d c_d * inner_d * delta_d`` with
    ``|delta_d| < fan_d``; every loop above the group steps a dimension ``d`` by a multiple of
    ``inner_d * fan_d``, and only the dimensions with an iterating loop above it move at all, so
    a visit's translation ``T`` has on each axis a component in the lattice ``g Z``, ``g`` the
    gcd over the axis' iterating dimensions of ``c_d * inner_d * fan_d``. A link needs ``T`` to
    equal the offset between two mesh neighbours. On an axis of one dimension both must then be
    0 (the *rigid cut*: a space without sliding-window axes never links). On a window axis a
    nonzero match needs a fanned and an iterating dimension on it, and with one fanned
    dimension ``f`` an offset ``c_f * inner_f * delta`` in ``g Z`` with ``0 < |delta| < fan_f``:
    the least one has ``|delta| = g / gcd(g, c_f * inner_f)`` (the *window test*; two fanned
    dimensions on one axis are taken as a possible match). Where no axis passes it, a link
    needs ``T = 0`` between children with equal tiles (apart only along fanned dimensions the
    space ignores, or along two fanned dimensions of one window axis). ``T = 0`` (coefficients
    positive) is never a halo query's (``T`` is loop i1's step, nonzero where the tile moves,
    else it is no query); a whole-tile query needs loop i1 to move the tile off itself
    (``kept == 0``), and ``T_i = s_i - sum_{k<i} s_k = 0`` on loop i1's axis needs two of that
    axis' dimensions iterating above the group: a loop's step exceeds the sum of the inner
    steps of its own dimension (they at least double outwards), so another dimension of the
    axis must make up the rest; if i1's dimension is on an axis of its own, no outer loop's
    ``T`` is 0 there at all. Such rows (``zero``) are queried for ``T = 0`` only. Bypassing
    children: where the children keep nothing of the space and all their tiles are distinct
    (no fanned dimension the space ignores, at most one fanned dimension per axis: G == F),
    any links give G - G2 == F - F2, which :func:`_apply_links` shows changes nothing (the
    proportional case)."""
    B, L = ch.B, ch.L
    out = {}
    if not _LINK_PRETESTS:
        return out
    undecided = ~np.all(ch.inner_incl[0] == ch.bounds, axis=0)      # factors off the bounds
    moves = np.zeros((ch.Dk, B), bool)     # dimensions with an iterating loop above the group
    for k in range(L - 1):
        moves |= ch.tf[k] > 1                  # (level k's temporal loops are above its children)
        if not ch.spatial[k]:
            continue
        fan, inner = ch.sf[k], ch.inner[k]                           # (Dk, B)
        d1 = seq["d1"][k]
        split = k in ch.split_levels and ch.split.any()
        masks, split_masks = [], []
        for s, sp in enumerate(ch.spaces):
            if not sp["positive"]:
                masks.append(None), split_masks.append(None)
                continue
            ck = ch.keep[k + 1, s, 0] if ch.uniform else ch.keep[k + 1, s]
            masks.append(_may_link(sp, fan, inner, moves, d1, ck, undecided, kept[k, s] == 0, True))
            if not split:
                split_masks.append(None)
                continue
            # a split mapping's two groups, on its columns: X over the dummy (children that keep
            # nothing; their extents inner * sy), Y over level k + 1
            r = np.flatnonzero(ch.split)
            sx, sy, inn = ch.sx[k][:, r], ch.sy[k][:, r], inner[:, r]
            mv, dd, un = moves[:, r], d1[r], undecided[r]
            m = np.zeros(B, bool)
            m[r] = (_may_link(sp, sx, inn * sy, mv, dd, False, un)
                    | _may_link(sp, sy, inn, mv, dd, ck if np.ndim(ck) == 0 else ck[r], un, kept[k, s, r] == 0))
            split_masks.append(m)
        out[k] = (masks, split_masks)
    return out


def _may_link(sp: dict, fan, inner, moves, d1, child_keep, undecided, moved=True, with_zero=False):
    """The pre-tests of :func:`_link_pretests` for one spatial group and data space ``sp``:
    ``fan``, ``inner`` (Dk, B): the group's fan-out per dimension and its children's extents
    (every loop above steps dimension ``d`` by a multiple of ``inner_d * fan_d``); ``moves``
    (Dk, B): the dimensions with an iterating loop above the group; ``d1`` (B,): loop i1's
    dimension; ``child_keep``: whether the children keep the space; ``moved`` (B,): where
    loop i1 moves the children's tile off itself (keeps nothing: whole-tile deltas; True where
    not known). Returns (B,): where a link may change the counts; with ``with_zero`` also
    (B,): those of them where only a translation T = 0 can be a link's."""
    cand = undecided.copy()
    if not sp["window"]:
        return (cand, cand & False) if with_zero else cand              # the rigid cut
    B = cand.size
    fans = fan > 1
    # the window test, per window axis: a nonzero component of T can equal a nonzero offset
    # only if a dimension of the axis fans out and one iterates above the group. T's component
    # is a multiple of g = gcd over the iterating dimensions e of c_e * inner_e * fan_e; with
    # one fanned dimension f the offsets are c_f * inner_f * delta, 0 < |delta| < fan_f, and
    # the least such multiple of g has |delta| = g / gcd(g, c_f * inner_f)
    many = np.zeros(B, bool)              # an axis with two fanned dimensions (equal tiles)
    two = np.zeros(B, bool)               # loop i1 on an axis with two iterating dimensions
    for axis in sp["axes"]:
        if len(axis) < 2:
            continue
        dims = [p for p, _ in axis]
        ni = moves[dims].sum(axis=0)
        two |= sp["lut"][dims[0]].take(d1) & (ni > 1)
        if len(axis) == 2:
            (p, cp), (r, cr) = axis
            both = fans[p] & fans[r]
            many |= both
            cand |= both & (ni > 0)
            one = np.flatnonzero((fans[p] ^ fans[r]) & (ni > 0))
            if one.size:
                fp, mp, mr = fans[p, one], moves[p, one], moves[r, one]
                ip, ir, np_, nr = inner[p, one], inner[r, one], fan[p, one], fan[r, one]
                g = np.gcd(np.where(mp, cp * ip * np_, 0), np.where(mr, cr * ir * nr, 0))
                u = np.where(fp, cp * ip, cr * ir)
                cand[one] |= g // np.gcd(g, u) < np.where(fp, np_, nr)
        else:           # more dimensions: a fanned one and an iterating one, not the same alone
            nf = fans[dims].sum(axis=0)
            many |= nf > 1
            alone = (nf == 1) & (ni == 1) & (fans[dims] & moves[dims]).any(axis=0)
            cand |= (nf > 0) & (ni > 0) & ~alone
    shared = fans[sp["other"]].any(axis=0) if sp["other"] else np.zeros(B, bool)
    # else only T = 0 between children with equal tiles, in a whole-tile delta (loop i1 keeps
    # nothing of the tile), where T_i = 0 balances loop i1's step on its axis with an outer
    # loop's on the same axis: two of the axis' dimensions iterate above the group
    zero = (shared | many) & two & moved & ~cand
    cand |= zero
    if not np.all(child_keep):
        # bypassing children with all tiles distinct: nothing changes
        cand &= child_keep | shared | many | undecided
    return (cand, zero & cand) if with_zero else cand


def _link_queries(plan: _Plan, ch: _Chunk, seq: dict, tiles, kept, skip=None, sorder=None, pre=None):
    """Where Timeloop's link transfers (``accelerators.links``) may change the counts. Returns
    the mappings to evaluate by the exact route (a fan-out to the MACs, where every mapping may
    link), the split mappings with a possible link (evaluated on the split architecture) and
    the queries [(level k, space s, rows, translation, words x weight)] of the visit kinds
    above the other groups whose translation is the code offset between two mesh neighbours
    (:func:`_group_queries`). Rows in ``skip`` (B,) are left out (deferred). ``pre``: the
    pre-tests' masks (:func:`_link_pretests`); a (level, space) group outside them is left out."""
    B, L = ch.B, ch.L
    pre = {} if pre is None else pre
    full = np.zeros(B, bool)
    full_split = np.zeros(B, bool)
    queries = []
    for k in range(L):
        if not ch.spatial[k]:
            continue
        # children that exist on the mesh (a mapping whose fan-out exceeds it, invalid anyway, has
        # no links)
        fx, fy = plan.arch.fanout(k)
        multi = (ch.sf[k].prod(axis=0) > 1) & (ch.sx[k].prod(axis=0) <= fx) & (ch.sy[k].prod(axis=0) <= fy)
        if skip is not None:
            multi &= ~skip
        if k == L - 1:
            full |= multi
            continue
        after = None                            # (computed by _group_queries on its columns)
        if k in ch.split_levels:
            # split mappings: two groups, X (level k over the dummy's instances, a row of fx,
            # children that keep nothing) and Y (the dummy over level k + 1's, a column of fy)
            sm = multi & ch.split & ~full
            smask = pre[k][1] if k in pre else [None] * ch.S
            if sm.any():
                one = np.ones_like(ch.sx[k])
                ext = ch.inner[k] * ch.sy[k]                   # the dummy's extents
                for s, sp in enumerate(ch.spaces):
                    ms = sm if smask[s] is None else sm & smask[s]
                    if not ms.any():
                        continue
                    ax = [sum(c * (ext[d] - 1) for d, c in axis) + 1 for axis in sp["axes"]]
                    tile_x = np.prod(ax, axis=0) if ax else np.ones(B, np.int64)
                    shift = [np.abs(row).take(seq["d1"][k]) * seq["sc1"][k] for row in sp["C"]]
                    kept_x = np.prod([np.maximum(0, a - v) for a, v in zip(ax, shift)], axis=0) \
                        if ax else np.ones(B, np.int64)
                    for group in ((ch.sx[k], one, ext, fx, 1, tile_x, kept_x, False),
                                  (one, ch.sy[k], ch.inner[k], 1, fy, tiles[k + 1, s], kept[k, s],
                                   ch.keep[k + 1, s, 0] if ch.uniform else ch.keep[k + 1, s])):
                        cols, taus, _ = _group_queries(plan, ch, seq, k, s, ms & ~full_split, after, *group)
                        if cols.size and _LINK_PRETESTS:
                            # only where a link is used (G2 < G: the one condition under
                            # which the split architecture's route changes anything)
                            cols = cols[_links_used(plan, ch, s, cols, taus, *group[:5], group[7])]
                        full_split[cols] = True
            multi = multi & ~ch.split
        if not multi.any():
            continue
        order = None
        if sorder is not None:                  # the spatial order, over the chunk's dimensions
            order = np.argsort(np.argsort(sorder[:, k], axis=1)[:, ch.kd], axis=1)
        masks = pre[k][0] if k in pre else [None] * ch.S
        for s in range(ch.S):
            ms, zero = (multi, None) if masks[s] is None else (multi & masks[s][0], masks[s][1])
            if not ms.any():
                continue
            cols, taus, wss = _group_queries(plan, ch, seq, k, s, ms, after, ch.sx[k], ch.sy[k],
                                             ch.inner[k], fx, fy, tiles[k + 1, s], kept[k, s],
                                             ch.keep[k + 1, s, 0] if ch.uniform else ch.keep[k + 1, s],
                                             order, zero)
            if cols.size:
                queries.append((k, s, cols, taus, wss))
    if ch.split.any():
        # a split mapping with any candidate goes the exact way, on the split architecture
        full_split |= full & ch.split
        for _, _, rows, _, _ in queries:
            full_split[rows[ch.split[rows]]] = True
        full &= ~full_split
        queries = [(k, s, rows[~full_split[rows]], tau[~full_split[rows]], ws[~full_split[rows]])
                   for k, s, rows, tau, ws in queries]
        queries = [q for q in queries if q[2].size]
    return full, full_split, queries


def _links_used(plan: _Plan, ch: _Chunk, s: int, cols, taus, sx, sy, inner, fx: int, fy: int,
                child_keep) -> np.ndarray:
    """Which queries (chunk columns ``cols``, translations ``taus``) of a spatial group (``sx``,
    ``sy``, ``inner``: (Dk, B); a mesh ``fx`` x ``fy``; the workload's spatial order, as the split
    architecture has it; ``child_keep``: whether the children keep the space) change counts on
    :func:`_apply_links`' terms: links used (``links.choose``'s G2 < G) where the children keep
    the space, or not in proportion where they bypass it."""
    sp = ch.spaces[s]
    fan = (sx * sy)[:, cols]
    inn = inner[:, cols]
    G = distinct_tiles(sp["axes"], fan, lambda d, rr: inn[d, rr])
    _, F, G2, F2 = choose(sx[:, cols].T, sy[:, cols].T, inn.T, sp["codes"], taus, fx, fy, G=G,
                          memo=_CHOOSE_MEMO, context=plan.choose_context(ch, s))
    keeps = child_keep if np.ndim(child_keep) == 0 else np.asarray(child_keep)[cols]
    return (G2 < G) & (keeps | ((G - G2) * F != (F - F2) * G))


def _group_queries(plan: _Plan, ch: _Chunk, seq: dict, k: int, s: int, mask, after, sx, sy, inner,
                   fx: int, fy: int, tl, kp, child_keep, order=None, zero=None):
    """The visit kinds above a spatial group of level ``k`` (the mappings in ``mask``; ``sx``,
    ``sy``, ``inner``: (Dk, B) its factors and the extents below; a mesh ``fx`` x ``fy``;
    ``tl``, ``kp``: (B,) words of a child's tile of space ``s`` and words it keeps across the
    innermost iterating loop; ``child_keep``: whether the children keep ``s``) whose translation
    can be the code offset between two mesh neighbours (``links.feasible``, ``links.may_link``:
    necessary conditions), as (mappings, translations, words x weight): the innermost iterating
    loop's translation T_i1 (halo deltas), and, where consecutive tiles do not overlap
    (whole-tile deltas), every outer loop's translation. Computed on the columns (mappings)
    that may matter only, gathered from the chunk's arrays; returned as chunk columns.
    ``zero`` (B,): mappings where only a zero translation can be a link's (``_may_link``)."""
    D = len(plan.work.dims)
    d1, sc1, U, s_code, W, g, starts, n_seq = (seq[x] for x in ("d1", "sc1", "U", "s_code", "W", "g",
                                                              "starts", "n_seq"))
    sp, geo = ch.spaces[s], plan.geo[s]
    none = (np.zeros(0, np.int64),) * 3
    # mappings that may matter: where the children keep the space, or, where they bypass it,
    # where they need more than one distinct tile (with one, links replace whole groups and
    # leave MaskTiles' ratio, hence every count, unchanged)
    live = np.zeros(ch.B, bool)
    for p in {p for axis in sp["axes"] for p, _ in axis}:
        live |= sx[p] > 1
        live |= sy[p] > 1
    live |= child_keep
    live &= mask
    idx = np.flatnonzero(live)
    if not idx.size:
        return none
    B = idx.size
    sx, sy, inner, tl, kp = sx[:, idx], sy[:, idx], inner[:, idx], tl[idx], kp[idx]
    fan = np.ones((D, B), np.int64)
    fan[ch.kd] = sx * sy
    step = np.ones((D, B), np.int64)
    step[ch.kd] = inner
    # the largest code two children's offsets can differ by (links.feasible's first test)
    bound = np.zeros(B, np.int64)
    for axis, R in zip(geo["axes"], geo["radix"]):
        for d, c in axis:
            bound += int(R) * c * step[d] * (fan[d] - 1)
    st, gk = starts[k], g[k][idx]
    Wst = W[st:][:, idx]
    # outer loops that iterate (``after`` of the caller, on these columns)
    after = (np.arange(Wst.shape[0])[:, None] > gk - st) & (Wst > 0)
    nov = kp == 0
    some = None if zero is None else ~zero[idx]        # columns where T != 0 may link
    Us = U[s]
    Ust = Us[st:][:, idx]
    match = after & (Ust == Us[gk, idx])
    cols, taus, wss = [], [], []
    # halo deltas: the innermost iterating loop's translation
    tau1 = sp["codes"].take(d1[k][idx]) * sc1[k][idx].astype(np.int64)
    q = (kp < tl) & (np.abs(tau1) <= bound)
    q = np.flatnonzero(q if some is None else q & some)
    if q.size:
        Wq, mq = Wst[:, q].astype(np.int64), match[:, q]
        E = mq | (after[:, q] & nov[q])
        n1 = n_seq[gk[q], idx[q]].astype(np.int64)
        halo = (tl - kp)[q]
        ws1 = (n1 - 1) * halo * (nov[q] + (Wq * E).sum(0)) + halo * (Wq * mq).sum(0)
        ok = ws1 > 0
        cols.append(q[ok]), taus.append(tau1[q[ok]]), wss.append(ws1[ok])
    # whole-tile deltas (consecutive tiles do not overlap): every outer loop's translation
    if nov.any():
        tau = Ust + (s_code[s, st, idx] - Us[st, idx])       # (in U's dtype: no overflow, see seq)
        near = np.abs(tau) <= bound.astype(tau.dtype) if tau.dtype == bound.dtype else \
            np.abs(tau) <= np.minimum(bound, np.iinfo(tau.dtype).max).astype(tau.dtype)
        near &= after
        near &= ~match
        near &= nov
        if some is not None:
            near &= some | (tau == 0)
        qi, qj = np.nonzero(near)
        if qi.size:
            cols.append(qj), taus.append(tau[qi, qj].astype(np.int64))
            wss.append(Wst[qi, qj].astype(np.int64) * tl[qj])
    if not cols:
        return none
    cols, taus, wss = np.concatenate(cols), np.concatenate(taus), np.concatenate(wss)
    at = _neighbourly(taus, cols, geo, fan, step, sx, sy, inner, sp["codes"], fx, fy,
                      None if order is None else order[idx[cols]])
    return idx[cols[at]], taus[at], wss[at]


def _neighbourly(taus, cols, geo, fan, step, sx, sy, inner, code_s, fx, fy, order=None) -> np.ndarray:
    """Positions of the translations ``taus`` that can be the code offset between two mesh
    neighbours of the group of column ``cols`` (``links.may_link``; where it gives no
    set, ``links.feasible``: between any two children). ``fan``, ``step``: (D, .) over every
    workload dimension; ``sx``, ``sy``, ``inner``: (Dk, .) over the chunk's; ``order``: per
    translation."""
    pre = taus.size > 1024              # many: the cheaper-per-element test first
    pos = np.arange(taus.size)
    if pre:
        pos = np.flatnonzero(feasible(taus, geo, fan[:, cols], step[:, cols]))
        taus, cols = taus[pos], cols[pos]
        order = None if order is None else order[pos]
    ok, loose = may_link(taus, sx[:, cols], sy[:, cols], inner[:, cols], code_s, fx, fy, order)
    loose = np.flatnonzero(loose & ~ok)
    if loose.size:
        c = cols[loose]
        ok[loose] = True if pre else feasible(taus[loose], geo, fan[:, c], step[:, c])
    return pos[ok]


def _distinct_at(ch: _Chunk, k: int, s: int, rows) -> np.ndarray:
    """``multicast.distinct_tiles`` of level ``k``'s group for space ``s`` at ``rows``: taken from
    what :func:`_access_counts` computed for the chunk where it has it (at a level without split
    mappings, where it is that function's value), else computed."""
    have = ch.n_distinct.get((k, s)) if k not in ch.split_levels else None
    if have is not None:
        return have[rows]
    return distinct_tiles(ch.spaces[s]["axes"], ch.sf[k][:, rows], lambda d, rr: ch.inner[k][d, rows[rr]])


def _apply_links(plan: _Plan, ch: _Chunk, batch: MappingBatch, full, queries, counts: dict, out: dict,
                 full_split=None, max_late: int = 0):
    """Correct the counts for Timeloop's link transfers; returns the per-level read / write
    totals. For each query the children are enumerated (``links.choose``); where links are used
    and the group's children keep the space, the parent serves fewer words (``MaskTiles``
    passes the reduction up through bypassing levels, times their multicast counts), the
    children's fills from the parent drop by the weighted words / fan-out, and the link
    transfers return as the children's extra reads and fills (``ComputePeerAccesses``). Where
    the children bypass the space, links that keep the group's accesses-to-weighted ratio change
    nothing; the other mappings (and those in ``full``) go through ``links.exact_counts``, or,
    when there are at most ``max_late`` of them, are returned (third value) to be evaluated
    again later, their rows left unfinished."""
    arch, L, B = plan.arch, ch.L, ch.B
    keep = ch.keep
    full_spaces = set(range(ch.S)) if full.any() else set()   # a fan-out to the MACs: all spaces
    full = full.copy()
    dT, dW = {}, {}                                  # (k, s) -> (B,) float
    for k, s, rows, tau, ws in queries:
        fx, fy = arch.fanout(k)
        G = _distinct_at(ch, k, s, rows)
        order = None
        if batch.sorder is not None:            # the spatial order, over the chunk's dimensions
            rank = np.argsort(batch.sorder[rows, k], axis=1)[:, ch.kd]
            order = np.argsort(rank, axis=1)
        G, F, G2, F2 = choose(ch.sx[k][:, rows].T, ch.sy[k][:, rows].T, ch.inner[k][:, rows].T,
                              ch.spaces[s]["codes"], tau, fx, fy, G=G, order=order,
                              memo=_CHOOSE_MEMO if _LINK_PRETESTS else None,
                              context=plan.choose_context(ch, s))
        use = G2 < G
        if not use.any():
            continue
        r = rows[use]
        w = ws[use].astype(np.float64)
        t = w * (G - G2)[use]
        m = w * (F - F2)[use]
        child_kept = keep[k + 1, s, r]
        proportional = (G - G2)[use] * F[use] == (F - F2)[use] * G[use]
        if (~child_kept & ~proportional).any():
            full[r[~child_kept & ~proportional]] = True
            full_spaces.add(s)
        sel = child_kept
        if sel.any():
            dT[(k, s)] = dT.get((k, s), np.zeros(B)) + np.bincount(r[sel], weights=t[sel], minlength=B)
            dW[(k, s)] = dW.get((k, s), np.zeros(B)) + np.bincount(r[sel], weights=m[sel], minlength=B)
    patch = {}                                       # (l, s) -> [reads, fills, updates] float deltas

    def add(l, s, a, v):
        patch.setdefault((l, s), [np.zeros(B), np.zeros(B), np.zeros(B)])[a] += v
    for (k, s), t in dT.items():
        rows = np.flatnonzero((t != 0) & ~full)
        if not rows.size:
            continue
        t, wd = t[rows], dW[(k, s)][rows]
        # the parent along the keep chain (the nearest level <= k keeping s) and the multicast
        # counts of the bypassing levels between it and k
        par = np.full(rows.size, -1)
        for j in range(k + 1):
            par = np.where(keep[j, s, rows], j, par)
        factor = np.ones(rows.size)
        for j in range(k):
            if ch.spatial[j]:
                Gj = _distinct_at(ch, j, s, rows)
                factor = np.where(j >= par, factor * Gj, factor)
        dt = np.zeros(B)
        dt[rows] = t * factor
        Fk = ch.sf[k][:, rows].prod(axis=0)
        lt = np.rint(wd).astype(np.int64)
        peer = lt // ch.inst_used[k + 1, rows]
        for p in np.unique(par):
            sel = np.zeros(B, bool)
            sel[rows[par == p]] = True
            add(int(p), s, 0, np.where(sel, -dt, 0))
            if plan.rw[s]:
                add(int(p), s, 2, np.where(sel, -dt, 0))
        fill = np.zeros(B)
        fill[rows] = -wd / Fk + peer
        add(k + 1, s, 1, fill)
        rd = np.zeros(B)
        rd[rows] = peer
        add(k + 1, s, 0, rd)
        if keep[k, s, rows].any():
            out["link_transfers"][rows, k, s] = np.where(keep[k, s, rows], lt, 0)
    names = ("reads", "fills", "updates")
    for (l, s), deltas in patch.items():
        old = counts.get((l, s))
        if old is None:
            continue
        new = []
        for a, (cnt, dv) in enumerate(zip(old, deltas)):
            if cnt is None or not dv.any():
                new.append(cnt)
                continue
            v = np.floor(np.broadcast_to(cnt, (B,)) + dv + 0.5).astype(np.int64)
            out[names[a]][:, l, s] = v
            new.append(v)
        counts[(l, s)] = tuple(new)
    rows = np.flatnonzero(full)
    late = np.zeros(0, np.int64)
    if 0 < rows.size <= max_late and not (full_split is not None and full_split.any()):
        late, rows = rows, late
    if full_split is not None and full_split.any():
        # split mappings: evaluated on the split architecture (its own link route), every space
        srows = np.flatnonzero(full_split)
        split_arch, split = plan.split_xy()
        res = evaluate_batch(split_arch, plan.work, _split_batch(batch[srows], split),
                             link_transfers=plan.link_transfers)
        r2, f2, u2, lk2 = res.reads, res.fills, res.updates, res.link_transfers
        levels = [l + sum(1 for j in split if j < l) for l in range(L)]
        full_spaces = set(range(ch.S))
        rows = np.union1d(rows, srows)
    else:
        srows = np.zeros(0, np.int64)
    if rows.size:
        sp = sorted(full_spaces | {s for _, s in dT})     # every space a link touched
        plain = np.setdiff1d(rows, srows)
        r = np.zeros((rows.size, L, ch.S), np.int64)
        f, u, lk = r.copy(), r.copy(), r.copy()
        if plain.size:
            at = np.searchsorted(rows, plain)
            r[at], f[at], u[at], lk[at] = exact_counts(arch, plan.work, batch[plain], spaces=sp)
        if srows.size:
            at = np.searchsorted(rows, srows)
            r[at], f[at], u[at], lk[at] = (a[:, levels] for a in (r2, f2, u2, lk2))
        for a, name in ((r, "reads"), (f, "fills"), (u, "updates"), (lk, "link_transfers")):
            for s in sp:
                out[name][rows, :, s] = a[:, :, s]
        for (l, s), (cr, cf, cu) in list(counts.items()):
            if s not in sp:
                continue
            cr = np.array(np.broadcast_to(cr, (B,)), np.int64)
            cr[rows] = r[:, l, s]
            if cf is not None:
                cf = np.array(np.broadcast_to(cf, (B,)), np.int64)
                cf[rows] = f[:, l, s]
            if cu is not None:
                cu = np.array(np.broadcast_to(cu, (B,)), np.int64)
                cu[rows] = u[:, l, s]
            counts[(l, s)] = (cr, cf, cu)
    rsum = np.zeros((L, B), np.int64)
    wsum = np.zeros((L, B), np.int64)
    for (l, s), (cr, cf, cu) in counts.items():
        lv = arch.levels[l]
        if lv.read_bw:
            rsum[l] += cr
        if lv.write_bw:
            for c in (cf, cu):
                if c is not None:
                    wsum[l] += c
    return rsum, wsum, late


# ----------------------------------------------------------------------------- scalar wrapper

@dataclass
class LevelStats:
    name: str
    instances: int
    instances_used: int
    energy_pj: float
    leak_pj: float
    dataspaces: dict = field(default_factory=dict)   # name -> {reads, fills, updates, tile, energy_pj}


@dataclass
class Evaluation:
    computes: int
    cycles: int
    compute_cycles: int
    utilization: float
    energy_pj: float
    mac_energy_pj: float
    area_um2: float
    levels: list
    macs_used: int

    @property
    def edp(self) -> float:
        return self.energy_pj * self.cycles

    @property
    def energy_per_mac_pj(self) -> float:
        return self.energy_pj / self.computes

    def to_dict(self) -> dict:
        return {
            "computes": int(self.computes), "cycles": int(self.cycles),
            "compute_cycles": int(self.compute_cycles), "utilization": float(self.utilization),
            "energy_pj": float(self.energy_pj), "mac_energy_pj": float(self.mac_energy_pj),
            "edp_pj_cycles": float(self.edp), "fj_per_compute": 1000.0 * self.energy_per_mac_pj,
            "area_um2": float(self.area_um2), "macs_used": int(self.macs_used),
            "levels": [{"name": lv.name, "instances": lv.instances, "instances_used": lv.instances_used,
                        "energy_pj": lv.energy_pj, "leak_pj": lv.leak_pj,
                        "dataspaces": lv.dataspaces} for lv in self.levels],
        }


def result_at(res: BatchResult, i: int, arch: Architecture, work: Workload) -> Evaluation:
    levels = []
    for l, lv in enumerate(arch.levels):
        spaces = {}
        for s, ds in enumerate(work.dataspaces):
            if res.tiles[i, l, s] == 0 and res.reads[i, l, s] == 0 and res.updates[i, l, s] == 0:
                continue
            spaces[ds.name] = {"reads": int(res.reads[i, l, s]), "fills": int(res.fills[i, l, s]),
                               "updates": int(res.updates[i, l, s]), "tile": int(res.tiles[i, l, s]),
                               "energy_pj": float(res.energy_action_pj[i, l, s].sum())}
            if res.link_transfers[i, l, s]:
                spaces[ds.name]["link_transfers"] = int(res.link_transfers[i, l, s])
        levels.append(LevelStats(lv.name, lv.instances, int(res.instances_used[i, l]),
                                 float(res.level_energy_pj[i, l]), float(res.leak_pj[i, l]), spaces))
    return Evaluation(computes=res.computes, cycles=int(res.cycles[i]),
                      compute_cycles=int(res.compute_cycles[i]),
                      utilization=float(res.utilization[i]), energy_pj=float(res.energy_pj[i]),
                      mac_energy_pj=float(res.mac_energy_pj), area_um2=arch.area_um2(),
                      levels=levels, macs_used=int(res.macs_used[i]))


def evaluate(arch: Architecture, work: Workload, mapping: Mapping,
             link_transfers: bool = True) -> Evaluation:
    """Evaluate one mapping; raises :class:`MappingError` (with the reason) if it is invalid."""
    batch = to_batch([mapping], arch, work)
    res = evaluate_batch(arch, work, batch, link_transfers=link_transfers)
    if not res.valid[0]:
        _, why = check_batch(batch, arch, work, tile_sizes(batch, arch, work))
        field_, msg = why(0)[0]
        raise MappingError(field_, msg)
    return result_at(res, 0, arch, work)
