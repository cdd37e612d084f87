"""Mappings: per storage level, temporal factors + loop order, spatial factors over meshX/meshY,
and which data spaces the level keeps. A batch of mappings is a set of numpy arrays.

Loop orders are written innermost first, as in Timeloop's ``permutation`` strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod

import numpy as np

from .arch import Architecture
from .errors import MappingError, SpecError
from .tiles import tile_sizes
from .workload import Workload


@dataclass(frozen=True)
class LevelMapping:
    temporal: dict = field(default_factory=dict, hash=False)     # dim -> factor
    permutation: tuple[str, ...] = ()                             # innermost first
    spatial_x: dict = field(default_factory=dict, hash=False)
    spatial_y: dict = field(default_factory=dict, hash=False)
    spatial_permutation: tuple[str, ...] = ()
    keep: frozenset | None = None                                 # None: every allowed space

    def t(self, d: str) -> int:
        return int(self.temporal.get(d, 1))

    def s(self, d: str) -> int:
        return int(self.spatial_x.get(d, 1)) * int(self.spatial_y.get(d, 1))


@dataclass(frozen=True)
class Mapping:
    levels: tuple[LevelMapping, ...]      # aligned with Architecture.levels (outermost first)

    def loop_nest(self, arch: Architecture) -> str:
        """Human-readable loop nest in Timeloop's style (outermost first)."""
        out, depth = [], 0
        for lv, lm in zip(arch.levels, self.levels):
            keep = "" if lm.keep is None else " [" + ", ".join(sorted(lm.keep)) + "]"
            out.append(f"{'  ' * depth}{lv.name}{keep}")
            for d in reversed(_full_perm(lm.permutation, lm.temporal)):
                if lm.t(d) > 1:
                    out.append(f"{'  ' * depth}| for {d} in [0:{lm.t(d)})")
                    depth += 1
            for axis, fac in (("X", lm.spatial_x), ("Y", lm.spatial_y)):
                for d, f in fac.items():
                    if int(f) > 1:
                        out.append(f"{'  ' * depth}| for {d} in [0:{f}) (Spatial-{axis})")
                        depth += 1
        out.append(f"{'  ' * depth}<< Compute >>")
        return "\n".join(out)


def _full_perm(perm, temporal) -> tuple:
    """Permutation completed with the dimensions it leaves out (as trivial inner loops)."""
    rest = [d for d in temporal if d not in perm]
    return tuple(rest) + tuple(perm)


# ----------------------------------------------------------------------------- batches

@dataclass
class MappingBatch:
    """B mappings of one workload on one architecture as arrays.

    ``tf``/``sx``/``sy``: (B, L, D) temporal / spatial-X / spatial-Y factors;
    ``perm``: (B, L, D) dimension indices of each level's temporal loops, innermost first;
    ``keep``: (B, L, S) whether level l keeps data space s;
    ``sorder``: (B, L, D) the order of each level's spatial loops on one mesh axis, innermost
    first (Timeloop's spatial ``permutation``), or None for the workload's dimension order. It
    only decides which PEs are mesh neighbours (link transfers).
    """
    tf: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    perm: np.ndarray
    keep: np.ndarray
    sorder: np.ndarray | None = None

    def __len__(self):
        return self.tf.shape[0]

    def __getitem__(self, idx) -> "MappingBatch":
        return MappingBatch(self.tf[idx], self.sx[idx], self.sy[idx], self.perm[idx], self.keep[idx],
                            None if self.sorder is None else self.sorder[idx])

    @staticmethod
    def concat(batches) -> "MappingBatch":
        """One batch of the rows of ``batches`` in order (a single batch is returned as it is:
        batches are never written in place)."""
        batches = list(batches)
        if len(batches) == 1:
            return batches[0]
        parts = [np.concatenate([getattr(b, k) for b in batches]) for k in ("tf", "sx", "sy", "perm", "keep")]
        if all(b.sorder is None for b in batches):
            return MappingBatch(*parts)
        D = batches[0].tf.shape[2]
        so = np.concatenate([b.sorder if b.sorder is not None else
                             np.broadcast_to(np.arange(D), b.tf.shape) for b in batches])
        return MappingBatch(*parts, sorder=so)

    def spatial_order(self) -> np.ndarray:
        """(B, L, D) ``sorder``, the workload's order where none is given."""
        if self.sorder is not None:
            return self.sorder
        return np.broadcast_to(np.arange(self.tf.shape[2]), self.tf.shape)


def default_keep(arch: Architecture, work: Workload) -> np.ndarray:
    """(L, S) keep matrix: every level keeps what it is allowed to (dummy levels nothing). A
    level's ``keeps`` naming a data space the workload does not have is a SpecError (a typo would
    otherwise silently make the level keep less)."""
    out = np.zeros((len(arch.levels), len(work.dataspaces)), dtype=bool)
    names = [ds.name for ds in work.dataspaces]
    for lv in arch.levels:
        for k in lv.keeps or ():
            if k not in names:
                raise SpecError(f"architecture.levels.{lv.name}.keeps",
                                f"unknown data space {k!r} (the workload {work.name}'s: {', '.join(names)})",
                                arch.source)
    for i, lv in enumerate(arch.levels):
        for j, ds in enumerate(work.dataspaces):
            out[i, j] = (not lv.is_dummy) and (lv.keeps is None or ds.name in lv.keeps)
    return out


def to_batch(mappings, arch: Architecture, work: Workload) -> MappingBatch:
    mappings = list(mappings)
    B, L, D, S = len(mappings), len(arch.levels), len(work.dims), len(work.dataspaces)
    tf = np.ones((B, L, D), dtype=np.int64)
    sx = np.ones((B, L, D), dtype=np.int64)
    sy = np.ones((B, L, D), dtype=np.int64)
    perm = np.tile(np.arange(D, dtype=np.int64), (B, L, 1))
    keep = np.tile(default_keep(arch, work), (B, 1, 1))
    didx = {d: i for i, d in enumerate(work.dims)}
    snames = [ds.name for ds in work.dataspaces]
    sorder = None
    for b, m in enumerate(mappings):
        if len(m.levels) != L:
            raise MappingError("mapping", f"has {len(m.levels)} levels, the architecture {L}")
        for l, lm in enumerate(m.levels):
            for fac, arr, kind in ((lm.temporal, tf, "temporal"), (lm.spatial_x, sx, "spatial"),
                                   (lm.spatial_y, sy, "spatial")):
                for d, f in fac.items():
                    if d not in didx:
                        raise MappingError(f"mapping.{arch.levels[l].name}.{kind}",
                                           f"unknown dimension {d!r} (problem has {', '.join(work.dims)})")
                    if not isinstance(f, (int, np.integer)) or f < 1:
                        raise MappingError(f"mapping.{arch.levels[l].name}.{kind}.{d}",
                                           f"factor must be a positive integer, got {f!r}")
                    arr[b, l, didx[d]] = int(f)
            order = [d for d in lm.permutation if d in didx]
            bad = [d for d in lm.permutation if d not in didx]
            if bad:
                raise MappingError(f"mapping.{arch.levels[l].name}.permutation",
                                   f"unknown dimension {bad[0]!r}")
            twice = sorted({d for d in order if order.count(d) > 1})
            if twice:
                raise MappingError(f"mapping.{arch.levels[l].name}.permutation",
                                   f"dimension {twice[0]!r} appears more than once")
            sp = list(lm.spatial_permutation)
            wrong = [d for d in sp if d not in didx] or sorted({d for d in sp if sp.count(d) > 1})
            if wrong:
                raise MappingError(f"mapping.{arch.levels[l].name}.spatial_permutation",
                                   f"unknown or repeated dimension {wrong[0]!r}")
            full = [d for d in work.dims if d not in order] + order
            perm[b, l] = [didx[d] for d in full]
            if lm.spatial_permutation:
                if sorder is None:
                    sorder = np.tile(np.arange(D, dtype=np.int64), (B, L, 1))
                first = [didx[d] for d in lm.spatial_permutation if d in didx]
                sorder[b, l] = first + [j for j in range(D) if j not in first]
            if lm.keep is not None:
                unknown = sorted(set(lm.keep) - set(snames))
                if unknown:
                    raise MappingError(f"mapping.{arch.levels[l].name}.keep",
                                       f"unknown data space {unknown[0]!r} (the problem's: {', '.join(snames)})")
                for s, name in enumerate(snames):
                    keep[b, l, s] = name in lm.keep
    return MappingBatch(tf, sx, sy, perm, keep, sorder)


def from_batch(batch: MappingBatch, i: int, arch: Architecture, work: Workload) -> Mapping:
    """Mapping ``i`` of a batch (e.g. of ``accelerators.sampling.random_valid_batch``) as a scalar
    :class:`Mapping`: for ``evaluate(arch, work, mapping)``, ``Mapping.loop_nest(arch)`` or
    ``accelerators.timeloop.mapping_to_timeloop``. Example: the best of a batch,
    ``from_batch(batch, int(res.edp[res.valid].argmin()), arch, work)`` -- careful, that index
    counts valid ones only; ``np.flatnonzero(res.valid)[k]`` gives the batch index."""
    levels = []
    for l in range(len(arch.levels)):
        perm = tuple(work.dims[j] for j in batch.perm[i, l])
        levels.append(LevelMapping(
            temporal={d: int(batch.tf[i, l, j]) for j, d in enumerate(work.dims)},
            permutation=perm,
            spatial_x={d: int(batch.sx[i, l, j]) for j, d in enumerate(work.dims) if batch.sx[i, l, j] > 1},
            spatial_y={d: int(batch.sy[i, l, j]) for j, d in enumerate(work.dims) if batch.sy[i, l, j] > 1},
            spatial_permutation=() if batch.sorder is None else tuple(work.dims[j] for j in batch.sorder[i, l]),
            keep=frozenset(ds.name for s, ds in enumerate(work.dataspaces) if batch.keep[i, l, s])))
    return Mapping(tuple(levels))


# ----------------------------------------------------------------------------- validation

def validate(mapping: Mapping, arch: Architecture, work: Workload) -> None:
    """Raise :class:`MappingError` saying exactly why ``mapping`` is invalid."""
    batch = to_batch([mapping], arch, work)
    reasons = invalid_reasons(batch, arch, work, tile_sizes(batch, arch, work))
    if reasons[0]:
        field, msg = reasons[0][0]
        raise MappingError(field, msg)


def invalid_reasons(batch: MappingBatch, arch: Architecture, work: Workload, tiles) -> list[list]:
    """Per mapping, the list of (field, message) reasons it is invalid (empty when valid)."""
    ok, why = check_batch(batch, arch, work, tiles)
    out = []
    for b in range(len(batch)):
        out.append([] if ok[b] else why(b))
    return out


def check_batch(batch: MappingBatch, arch: Architecture, work: Workload, tiles):
    """Vectorized validity: returns (valid mask, function b -> reasons)."""
    L = len(arch.levels)
    bounds = np.array([work.bounds[d] for d in work.dims], dtype=np.int64)
    total = np.prod(batch.tf * batch.sx * batch.sy, axis=1)                 # (B, D)
    factors_ok = np.all(total == bounds, axis=1)
    fx = np.array([arch.fanout(i)[0] for i in range(L)])
    fy = np.array([arch.fanout(i)[1] for i in range(L)])
    spx = np.prod(batch.sx, axis=2)
    spy = np.prod(batch.sy, axis=2)
    spatial_ok = np.all((spx <= fx) & (spy <= fy), axis=1)
    # capacity (bits) per level
    cap_ok = np.ones(len(batch), dtype=bool)
    used = np.zeros((len(batch), L))
    for l, lv in enumerate(arch.levels):
        lb = np.array([level_bits(lv, work, ds) for ds in work.dataspaces], dtype=np.float64)
        used[:, l] = np.sum(tiles[:, l, :] * lb * batch.keep[:, l, :], axis=1)
        if lv.capacity_bits is not None:
            cap_ok &= used[:, l] <= lv.capacity_bits + 1e-9
    # every data space must be kept at the outermost level that can hold it
    kept_somewhere = np.all(np.any(batch.keep, axis=1), axis=1)
    keep_top = np.all(batch.keep[:, 0, :], axis=1)
    allowed = default_keep(arch, work)
    keep_ok = np.all(~batch.keep | allowed[None], axis=(1, 2))
    ok = factors_ok & spatial_ok & cap_ok & kept_somewhere & keep_top & keep_ok

    def why(b):
        reasons = []
        for j, d in enumerate(work.dims):
            if total[b, j] != bounds[j]:
                fs = " * ".join(str(int(batch.tf[b, l, j] * batch.sx[b, l, j] * batch.sy[b, l, j]))
                                for l in range(L))
                reasons.append((f"mapping.factors.{d}",
                                f"factors of {d} multiply to {int(total[b, j])} ({fs}), "
                                f"but the problem has {d}={int(bounds[j])}"))
        for l, lv in enumerate(arch.levels):
            if spx[b, l] > fx[l] or spy[b, l] > fy[l]:
                reasons.append((f"mapping.{lv.name}.spatial",
                                f"spatial fan-out {int(spx[b, l])}x{int(spy[b, l])} exceeds the "
                                f"{fx[l]}x{fy[l]} instances below {lv.name}"))
            if lv.capacity_bits is not None and used[b, l] > lv.capacity_bits + 1e-9:
                parts = ", ".join(f"{ds.name}={int(tiles[b, l, s])}"
                                  for s, ds in enumerate(work.dataspaces) if batch.keep[b, l, s])
                reasons.append((f"mapping.{lv.name}.tile",
                                f"tile ({parts} words) needs {int(used[b, l])} bits, exceeds the "
                                f"capacity of {lv.name} ({int(lv.capacity_bits)} bits)"))
            for s, ds in enumerate(work.dataspaces):
                if batch.keep[b, l, s] and not allowed[l, s]:
                    reasons.append((f"mapping.{lv.name}.keep", f"{lv.name} cannot keep {ds.name}"))
        for s, ds in enumerate(work.dataspaces):
            if not batch.keep[b, 0, s]:
                reasons.append((f"mapping.{arch.levels[0].name}.keep",
                                f"the outermost level must keep {ds.name}"))
        return reasons

    return ok, why


def level_bits(level, work: Workload, ds) -> int:
    """Bits of one word of data space ``ds`` at ``level``: the workload's own bit-width for it if
    set, else the level's per-role width, else the level's datawidth."""
    return int(work.bits.get(ds.name, level.bits_of(ds.role)))


def product(d: dict) -> int:
    return prod(int(v) for v in d.values())


def split_mapping(mapping: Mapping, split: list) -> Mapping:
    """``mapping`` for ``split_xy(arch)``: the Y spatial factors of a split level move to its dummy."""
    out = []
    for i, lm in enumerate(mapping.levels):
        if i in split:
            out.append(replace(lm, spatial_y={}, spatial_permutation=()))
            out.append(LevelMapping(temporal={}, permutation=(), spatial_y=dict(lm.spatial_y)))
        else:
            out.append(lm)
    return Mapping(tuple(out))


def needs_split(mapping: Mapping) -> bool:
    return any(int(lm.spatial_x.get(d, 1)) > 1 and int(lm.spatial_y.get(d, 1)) > 1
               for lm in mapping.levels for d in set(lm.spatial_x) | set(lm.spatial_y))
