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
  ``accelerators.reference`` walks the sequence literally; tests hold the two equal.
* **reads**: words its child level (or the MACs) takes, ``D_child`` times the number of distinct
  child tiles under one instance (children with equal tiles share one multicast read).
* **updates** (read-write space only): partial sums written back by the children, spatially
  reduced the same way; reads of partial sums are ``updates`` minus first writes (the level's
  distinct outputs), fills likewise exclude the first writes.

Energy is charged per vector (``ceil(count / words_per_vector)``), leakage per utilized
instance-cycle; cycles are the compute cycles or, if slower, the most bandwidth-bound level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd

import numpy as np

from .arch import Architecture
from .errors import MappingError
from .mapping import Mapping, MappingBatch, check_batch, default_keep, level_bits, to_batch
from .workload import Workload


# ----------------------------------------------------------------------------- geometry helpers

def _coef_matrices(work: Workload):
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


def _exclusive_cumprod(a: np.ndarray, axis: int) -> np.ndarray:
    c = np.cumprod(a, axis=axis)
    return c // a


def tile_sizes(batch: MappingBatch, arch: Architecture, work: Workload) -> np.ndarray:
    """(B, L, S) words of each data space's tile at each level (kept or not)."""
    f = (batch.tf * batch.sx * batch.sy).transpose(1, 2, 0)        # (L, D, B)
    inner_incl = np.flip(np.cumprod(np.flip(f, 0), axis=0), 0)      # prod over levels >= l
    out = np.empty((f.shape[2], f.shape[0], len(work.dataspaces)), dtype=np.int64)
    for s, C in enumerate(_coef_matrices(work)):
        out[..., s] = _box(inner_incl, C)[1].T
    return out


# ----------------------------------------------------------------------------- results

@dataclass
class BatchResult:
    """Arrays over a batch of B mappings (counts per instance, energies in pJ)."""
    valid: np.ndarray          # (B,)
    reads: np.ndarray          # (B, L, S)
    fills: np.ndarray
    updates: np.ndarray
    tiles: np.ndarray          # (B, L, S) words kept (0 where bypassed)
    instances_used: np.ndarray  # (B, L)
    energy_action_pj: np.ndarray  # (B, L, S, 3) read / fill / update energy, all instances
    leak_pj: np.ndarray        # (B, L)
    level_energy_pj: np.ndarray  # (B, L) incl. leakage
    mac_energy_pj: float
    energy_pj: np.ndarray      # (B,)
    compute_cycles: np.ndarray  # (B,)
    cycles: np.ndarray         # (B,)
    utilization: np.ndarray    # (B,)
    macs_used: np.ndarray      # (B,) MAC instances with work
    computes: int

    @property
    def edp(self) -> np.ndarray:
        """Energy-delay product in pJ*cycles."""
        return self.energy_pj * self.cycles


def evaluate_batch(arch: Architecture, work: Workload, batch: MappingBatch,
                   chunk: int = 4096) -> BatchResult:
    """Evaluate B mappings of ``work`` on ``arch`` at once. Invalid ones get ``valid=False``
    (their figures are still computed, but meaningless). Large batches are processed in chunks
    that keep the temporaries in cache."""
    if len(batch) <= chunk:
        return _evaluate_chunk(arch, work, batch)
    merged = None
    for i in range(0, len(batch), chunk):
        part = _evaluate_chunk(arch, work, batch[i:i + chunk])
        if merged is None:
            merged = {k: (np.empty((len(batch),) + v.shape[1:], v.dtype) if isinstance(v, np.ndarray) else v)
                      for k, v in vars(part).items()}
        for k, v in vars(part).items():
            if isinstance(v, np.ndarray):
                merged[k][i:i + len(v)] = v
    return BatchResult(**merged)


def _evaluate_chunk(arch: Architecture, work: Workload, batch: MappingBatch) -> BatchResult:
    # Internally every array is batch-last, (..., B), so that numpy's loops run contiguously
    # over the mappings and the per-level / per-loop recurrences are short Python loops.
    B, L, D = batch.tf.shape
    S = len(work.dataspaces)
    ar = np.arange(B)
    tf = np.ascontiguousarray(batch.tf.transpose(1, 2, 0))           # (L, D, B)
    sx = np.ascontiguousarray(batch.sx.transpose(1, 2, 0))
    sy = np.ascontiguousarray(batch.sy.transpose(1, 2, 0))
    perm = np.ascontiguousarray(batch.perm.transpose(1, 2, 0))
    keep = np.ascontiguousarray(batch.keep.transpose(1, 2, 0))       # (L, S, B)
    sf = sx * sy
    f = tf * sf
    inner_incl = np.empty((L + 1, D, B), np.int64)                   # prod over levels >= l
    inner_incl[L] = 1
    for l in range(L - 1, -1, -1):
        inner_incl[l] = inner_incl[l + 1] * f[l]
    inner = inner_incl[1:]                                            # prod over levels > l
    above_t = np.empty((L, D, B), np.int64)                           # temporal over levels < l
    above_t[0] = 1
    for l in range(1, L):
        above_t[l] = above_t[l - 1] * tf[l - 1]
    total_t = above_t[L - 1] * tf[L - 1]                              # (D, B)
    computes_pe = np.prod(total_t, axis=0)
    sp_prefix = np.empty((L + 1, D, B), np.int64)                     # spatial over levels < l
    sp_prefix[0] = 1
    for l in range(L):
        sp_prefix[l + 1] = sp_prefix[l] * sf[l]
    inst_used = np.prod(sp_prefix[:L], axis=1)                        # (L, B)
    macs_used = np.prod(sp_prefix[L], axis=0)

    # Temporal loops of all levels in one sequence, innermost first: level L-1 .. level 0.
    M = L * D
    n_seq = np.empty((M, B), np.int64)
    sc_seq = np.empty((M, B), np.int64)
    d_seq = np.empty((M, B), np.int64)
    col = np.arange(B)
    for k, l in enumerate(range(L - 1, -1, -1)):
        rows = slice(k * D, (k + 1) * D)
        d_seq[rows] = perm[l]
        flat = perm[l] * B + col                                      # gather along dims, per column
        n_seq[rows] = tf[l].ravel().take(flat)
        sc_seq[rows] = (inner[l] * sf[l]).ravel().take(flat)
    active = n_seq >= 2
    n_after = np.empty((M, B), np.int64)                              # prod of n over outer loops
    n_after[M - 1] = 1
    for i in range(M - 2, -1, -1):
        n_after[i] = n_after[i + 1] * n_seq[i + 1]
    # Per level: its innermost non-trivial loop above (i1) and W_i = (n_i - 1) * prod_{k>i} n_k
    # for the loops outside i1. These do not depend on the data space.
    W = (n_seq - 1) * n_after          # zero for trivial loops
    sc_act = sc_seq * active
    above = []
    for l in range(1, L):
        start = (L - l) * D
        act = active[start:]
        i1 = np.argmax(act, axis=0)
        g = start + i1
        n1, nout = n_seq[g, ar], n_after[g, ar]
        above.append((start, act.any(axis=0), g, n1, nout, (n1 - 1) * nout, d_seq[g, ar], sc_seq[g, ar]))

    coef = _coef_matrices(work)
    part_ext = inner_incl[:L] * above_t                                # partition extents
    tiles = np.empty((L, S, B), np.int64)
    part = np.empty((L, S, B), np.int64)
    Dl = np.empty((L + 1, S, B), np.int64)
    Dl[L] = computes_pe
    for s, C in enumerate(coef):
        ax, size = _box(inner_incl[:L], C)                            # (L, J, B), (L, B)
        tiles[:, s] = size
        part[:, s] = _box(part_ext, C, sizes_only=True)
        Dl[0, s] = size[0]
        # Translations are compared as exact integer codes: a data-space vector v is encoded as
        # sum_j v_j * R_j with radices wider than any |v_j| can be, so the code is injective and
        # linear, and T_i = s_i - sum_{k<i} s_k becomes a cumulative sum of scalars.
        full_axis = C @ (np.array([work.bounds[d] for d in work.dims]) - 1) + 1
        radix = np.concatenate([[1], np.cumprod(2 * full_axis + 1)[:-1]]).astype(np.int64)
        code_of_dim = radix @ C                                       # (D,)
        s_code = code_of_dim.take(d_seq) * sc_act                      # (M, B)
        # U_i = s_i - sum_{k<i} s_k: for the loops above level l, T_i = U_i + (sum_{k<start} s_k),
        # so T_i == T_i1 exactly when U_i == U_i1. Loops inside i1 are trivial (W = 0) and i1
        # itself always matches: X = sum over matches of W, minus W_i1.
        U = np.empty_like(s_code)
        acc = np.zeros(B, np.int64)
        for i in range(M):
            np.subtract(s_code[i], acc, out=U[i])
            acc += s_code[i]
        for l, (start, any_act, g, n1, nout, w1, d1, sc1) in zip(range(1, L), above):
            X = np.where(U[start:] == U[g, ar], W[start:], 0).sum(axis=0) - w1
            # T_i1 = s_i1 (no non-trivial loop inside it): its overlap with the old tile per axis
            tile = size[l]
            kept = np.ones(B, np.int64)
            for j in range(C.shape[0]):
                kept *= np.maximum(0, ax[l, j] - C[j][d1] * sc1)
            ov1 = tile - kept
            Dl[l, s] = np.where(any_act, nout * (tile + (n1 - 1) * ov1) - (tile - ov1) * X, tile)

    # parent / child of each (level, space) along the keep chain
    has_parent = np.zeros((L, S, B), bool)
    for l in range(1, L):
        has_parent[l] = has_parent[l - 1] | keep[l - 1]
    child = np.empty((L, S, B), np.int64)
    nxt = np.full((S, B), L, np.int64)
    for l in range(L - 1, -1, -1):
        child[l] = nxt
        nxt = np.where(keep[l], l, nxt)

    reads = np.zeros((L, S, B), np.int64)
    fills = np.zeros((L, S, B), np.int64)
    updates = np.zeros((L, S, B), np.int64)
    rw = np.array([ds.read_write for ds in work.dataspaces])
    for l in range(L):
        k_l = keep[l]
        if not k_l.any():
            continue
        dist = np.ones((S, B), np.int64)
        for c in range(l + 1, L + 1):
            sel = (child[l] == c) & k_l
            if not sel.any():
                continue
            fac = sp_prefix[c] // sp_prefix[l]                        # (D, B) fan-out per dim
            scale = None
            for s, C in enumerate(coef):
                if not sel[s].any():
                    continue
                if scale is None and (np.count_nonzero(C, axis=1) > 1).any():
                    scale = _spatial_scale(sf, inner, l, c)
                dist[s] = np.where(sel[s], _distinct(C, fac, scale), dist[s])
        demand = np.take_along_axis(Dl, child[l][None], 0)[0] * dist  # (S, B)
        fill_ok = k_l & has_parent[l]
        reads[l] = np.where(k_l, demand - np.where(rw[:, None], part[l], 0), 0)
        updates[l] = np.where(k_l & rw[:, None], demand, 0)
        fills[l] = np.where(fill_ok, Dl[l] - np.where(rw[:, None], part[l], 0), 0)

    # cycles: compute-bound unless a level's bandwidth is the bottleneck
    cycles = computes_pe.astype(np.float64)
    for l, lv in enumerate(arch.levels):
        if lv.read_bw:
            cycles = np.maximum(cycles, reads[l].sum(0) / lv.read_bw)
        if lv.write_bw:
            cycles = np.maximum(cycles, (fills[l] + updates[l]).sum(0) / lv.write_bw)
    cycles = np.ceil(cycles - 1e-9).astype(np.int64)

    # energy, charged per vector
    e_act = np.zeros((L, S, 3, B))
    leak = np.zeros((L, B))
    for l, lv in enumerate(arch.levels):
        if lv.is_dummy:
            continue
        en = lv.energy
        for s, ds in enumerate(work.dataspaces):
            bw = lv.block_words(level_bits(lv, work, ds))
            for a, (cnt, pj) in enumerate(((reads, en.read_pj), (fills, en.write_pj),
                                           (updates, en.update_pj))):
                if pj:
                    v = cnt[l, s] if bw == 1 else -(-cnt[l, s] // bw)
                    e_act[l, s, a] = v * (pj * inst_used[l])
        leak[l] = en.leak_pj * cycles * inst_used[l]
    level_energy = e_act.sum(axis=(1, 2)) + leak
    mac_energy = work.macs * arch.compute.energy_pj
    energy = level_energy.sum(0) + mac_energy

    # validity: factors, fan-out, capacity, keep rules
    bounds = np.array([work.bounds[d] for d in work.dims], np.int64)[:, None]
    ok = np.all(total_t * sp_prefix[L] == bounds, axis=0)
    allowed = default_keep(arch, work)
    for l, lv in enumerate(arch.levels):
        fx, fy = arch.fanout(l)
        ok &= (np.prod(sx[l], axis=0) <= fx) & (np.prod(sy[l], axis=0) <= fy)
        if lv.capacity_bits is not None:
            bits = np.array([level_bits(lv, work, ds) for ds in work.dataspaces], np.int64)
            ok &= np.einsum("sb,s->b", tiles[l] * keep[l], bits) <= lv.capacity_bits + 1e-9
        ok &= ~np.any(keep[l] & ~allowed[l][:, None], axis=0)
    ok &= np.all(keep[0], axis=0)

    util = work.macs / (cycles * arch.compute.instances)
    t = lambda a: np.ascontiguousarray(np.moveaxis(a, -1, 0))
    return BatchResult(valid=ok, reads=t(reads), fills=t(fills), updates=t(updates),
                       tiles=t(np.where(keep, tiles, 0)), instances_used=t(inst_used),
                       energy_action_pj=np.ascontiguousarray(e_act.transpose(3, 0, 1, 2)),
                       leak_pj=t(leak), level_energy_pj=t(level_energy), mac_energy_pj=mac_energy,
                       energy_pj=energy, compute_cycles=computes_pe, cycles=cycles,
                       utilization=util, macs_used=macs_used, computes=work.macs)


def _spatial_scale(sf: np.ndarray, inner: np.ndarray, l: int, c: int) -> np.ndarray:
    """Per dimension, the step of the innermost spatial loop among levels ``l .. c-1``."""
    scale = np.ones_like(sf[0])
    for lv in range(l, c):
        scale = np.where(sf[lv] > 1, inner[lv], scale)
    return scale


def _distinct(C: np.ndarray, fac: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """Number of distinct tiles (of the data space with coefficients ``C``) among the children
    reached through spatial loops with per-dimension fan-out ``fac`` (D, B). Children whose
    tiles coincide (the loop does not index the space, or two indices slide onto the same
    window, e.g. PE (p, r) and (p+1, r-1) need the same input row) share one multicast access;
    reduction of partial sums is counted the same way."""
    out = np.ones(fac.shape[1], np.int64)
    for j in range(C.shape[0]):
        dims = np.nonzero(C[j])[0]
        if len(dims) == 1:
            out *= fac[dims[0]]
        elif len(dims) == 2:
            # {alpha*i + beta*k : i < a, k < b} has a*b - max(0, a - beta')*max(0, b - alpha')
            # distinct values, alpha' = alpha/g, beta' = beta/g, g = gcd(alpha, beta).
            p, r = dims
            a, b = fac[p], fac[r]
            alpha, beta = C[j, p] * scale[p], C[j, r] * scale[r]
            g = np.gcd(alpha, beta)
            out *= a * b - np.maximum(0, a - beta // g) * np.maximum(0, b - alpha // g)
        else:                                               # general projections: enumerate
            vals = []
            for i in range(fac.shape[1]):
                pts = {0}
                for dd in dims:
                    step = int(C[j, dd] * scale[dd, i])
                    pts = {x + step * t for x in pts for t in range(int(fac[dd, i]))}
                vals.append(len(pts))
            out *= np.array(vals, np.int64)
    return out


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
        levels.append(LevelStats(lv.name, lv.instances, int(res.instances_used[i, l]),
                                 float(res.level_energy_pj[i, l]), float(res.leak_pj[i, l]), spaces))
    return Evaluation(computes=res.computes, cycles=int(res.cycles[i]),
                      compute_cycles=int(res.compute_cycles[i]),
                      utilization=float(res.utilization[i]), energy_pj=float(res.energy_pj[i]),
                      mac_energy_pj=float(res.mac_energy_pj), area_um2=arch.area_um2(),
                      levels=levels, macs_used=int(res.macs_used[i]))


def evaluate(arch: Architecture, work: Workload, mapping: Mapping) -> Evaluation:
    """Evaluate one mapping; raises :class:`MappingError` (with the reason) if it is invalid."""
    batch = to_batch([mapping], arch, work)
    res = evaluate_batch(arch, work, batch)
    if not res.valid[0]:
        _, why = check_batch(batch, arch, work, tile_sizes(batch, arch, work))
        field_, msg = why(0)[0]
        raise MappingError(field_, msg)
    return result_at(res, 0, arch, work)
