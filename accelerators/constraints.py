"""Mapping constraints: what a dataflow or a Timeloop ``constraints`` block allows.

Kept apart from the model (the model knows nothing of them) and read by the mapspace. Per level:
fixed temporal factors, the innermost loop order, fixed spatial factors, which dimensions may be
unrolled over meshX / meshY, and fixed keep / bypass choices.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .arch import Architecture
from .errors import SpecError
from .workload import Workload


@dataclass(frozen=True)
class LevelConstraint:
    temporal_factors: tuple = ()          # ((dim, factor), ...) fixed at this level
    permutation: tuple = ()               # innermost loops, in this order (others free above)
    spatial_factors: tuple = ()           # ((dim, factor), ...) fixed spatial (X*Y) factors
    spatial_x: tuple | None = None        # dims allowed on meshX (None: any)
    spatial_y: tuple | None = None
    keep: frozenset | None = None         # data spaces it must keep (None: free)
    bypass: frozenset = frozenset()       # data spaces it must not keep

    def merge(self, other: "LevelConstraint") -> "LevelConstraint":
        """``other`` refines ``self`` (later constraints win field by field)."""
        def pick(a, b, empty):
            return b if b != empty else a
        return LevelConstraint(
            temporal_factors=tuple({**dict(self.temporal_factors), **dict(other.temporal_factors)}.items()),
            permutation=pick(self.permutation, other.permutation, ()),
            spatial_factors=tuple({**dict(self.spatial_factors), **dict(other.spatial_factors)}.items()),
            spatial_x=pick(self.spatial_x, other.spatial_x, None),
            spatial_y=pick(self.spatial_y, other.spatial_y, None),
            keep=pick(self.keep, other.keep, None),
            bypass=self.bypass | other.bypass)


@dataclass(frozen=True)
class Constraints:
    levels: tuple = ()                    # ((level name, LevelConstraint), ...)
    name: str = "free"

    def of(self, level: str) -> LevelConstraint:
        for n, c in self.levels:
            if n == level:
                return c
        return LevelConstraint()

    def merge(self, other: "Constraints") -> "Constraints":
        out = dict(self.levels)
        for n, c in other.levels:
            out[n] = out[n].merge(c) if n in out else c
        return Constraints(tuple(out.items()), f"{self.name}+{other.name}")


FREE = Constraints()


# ----------------------------------------------------------------------------- dataflows

def _dims_of(work: Workload, role: str) -> set:
    return set().union(*[ds.dims() for ds in work.dataspaces if ds.role == role])


def dataflow_constraints(arch: Architecture, work: Workload, dataflow: str | None = None) -> Constraints:
    """The classic dataflows as constraints on the PE-side levels and the PE-array fan-out.

    * weight-stationary (NVDLA, TPU, Simba): inside a PE, loops over weight dimensions are
      outside the weight buffer (a weight stays while outputs/inputs stream); the array unrolls
      weight dimensions (input channels on X, output channels on Y).
    * output-stationary (ShiDianNao): a partial sum stays in the PE while the reduction runs;
      the array unrolls output dimensions.
    * input-stationary: an input stays in the PE; the array unrolls input dimensions.
    * row-stationary (Eyeriss): the array unrolls filter rows and channels on Y and output rows on
      X; each PE runs a 1-D convolution (filter row over input row) from its scratchpads.
    * free: no constraint.
    """
    df = dataflow or arch.dataflow
    if df == "free":
        return FREE
    dims = set(work.dims)
    w, i, o = _dims_of(work, "weights"), _dims_of(work, "inputs"), _dims_of(work, "outputs")
    red = dims - o                                   # reduction dims (C, R, S)
    role_of = {"weight-stationary": "weights", "output-stationary": "outputs", "input-stationary": "inputs"}
    out = []
    fan = [l for l in range(len(arch.levels)) if arch.fanout(l) != (1, 1)]
    pe_levels = [l for l in range(len(arch.levels)) if arch.levels[l].instances == arch.compute.instances
                 and arch.compute.instances > 1]
    order = sorted(work.dims)
    if df in role_of:
        role = role_of[df]
        stay = {"weights": w, "outputs": o, "inputs": i}[role]
        for l in pe_levels:
            lv = arch.levels[l]
            keeps = [ds for ds in work.dataspaces if lv.keeps is None or ds.name in lv.keeps]
            if any(ds.role == role for ds in keeps):
                out.append((lv.name, LevelConstraint(temporal_factors=tuple((d, 1) for d in sorted(stay)))))
        if df == "weight-stationary":
            sx, sy = sorted(w & red) or sorted(w), sorted(w & o) or sorted(w)
        elif df == "output-stationary":
            sx, sy = sorted(o - w) or sorted(o), sorted(o)
        else:
            sx, sy = sorted(i & red) or sorted(i), sorted(i - red) or sorted(i)
        for l in fan:
            out.append((arch.levels[l].name, LevelConstraint(spatial_x=tuple(sx), spatial_y=tuple(sy))))
    elif df == "row-stationary":
        # roles from the projections, so Timeloop's names (M for K, ...) work too
        sliding = set()
        for ds in work.dataspaces:
            for axis in ds.projection:
                if len(axis) > 1:
                    sliding |= {d for _, d in axis}
        filt, rows = sliding & w, sliding & o
        chans_in, chans_out = (w & i) - o - sliding, w & o
        sy = sorted(filt | chans_in | chans_out) or order
        sx = sorted(rows | (o - w - sliding) | chans_out) or order
        for l in fan:
            out.append((arch.levels[l].name, LevelConstraint(spatial_x=tuple(sx), spatial_y=tuple(sy))))
    else:
        raise SpecError("dataflow", f"unknown dataflow {df!r}")
    merged: dict = {}
    for n, c in out:
        merged[n] = merged[n].merge(c) if n in merged else c
    return Constraints(tuple(merged.items()), df)


# ----------------------------------------------------------------------------- Timeloop

def _factor_pairs(text, where) -> tuple:
    from .timeloop import _factors
    return tuple(_factors(text, where).items())


def from_timeloop(targets, arch: Architecture, work: Workload, where: str = "constraints") -> Constraints:
    """Timeloop ``architecture_constraints`` / ``constraints`` (``targets`` list) as Constraints."""
    from .timeloop import _perm, directives
    if isinstance(targets, dict):
        targets = targets.get("targets", [])
    if not isinstance(targets, list):
        raise SpecError(where, "must be a list of targets")
    names = {lv.name for lv in arch.levels}
    out: dict = {}
    for w, t, tgt in directives(targets, where + ".targets[{}]"):
        if tgt not in names:
            if tgt == arch.compute.name:
                continue
            raise SpecError(f"{w}.target", f"unknown level {tgt!r}")
        typ = t.get("type", "temporal")
        if typ == "temporal":
            c = LevelConstraint(temporal_factors=_factor_pairs(t.get("factors", ""), w),
                                permutation=_perm(t.get("permutation", ""), work.dims, w))
        elif typ == "spatial":
            perm = _perm(t.get("permutation", ""), work.dims, w)
            split = t.get("split")
            sx = sy = None
            if perm and split is not None:
                sx, sy = tuple(perm[:int(split)]), tuple(perm[int(split):])
            c = LevelConstraint(spatial_factors=_factor_pairs(t.get("factors", ""), w), spatial_x=sx, spatial_y=sy)
        elif typ in ("bypass", "datatype", "dataspace"):
            keep = t.get("keep")
            c = LevelConstraint(keep=frozenset(keep) if keep is not None else None,
                                bypass=frozenset(t.get("bypass") or []))
        elif typ in ("utilization", "max_overbooked_proportion"):
            continue
        else:
            raise SpecError(f"{w}.type", f"unknown constraint type {typ!r}")
        out[tgt] = out[tgt].merge(c) if tgt in out else c
    return Constraints(tuple(out.items()), "timeloop")
