"""Workloads as Timeloop-style loop nests: named dimensions, bounds and data spaces.

A data space (Weights, Inputs, Outputs, ...) is indexed by a projection of the problem
dimensions: each of its own axes is a sum of ``coefficient * dimension`` terms, exactly as in
Timeloop's problem shape (e.g. the input width ``W = Wstride * P + Wdilation * R``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from numbers import Integral

from .errors import SpecError

# Roles decide which bit-width of an architecture a data space takes (weights / inputs / outputs).
ROLES = ("weights", "inputs", "outputs")


@dataclass(frozen=True)
class DataSpace:
    name: str
    # One entry per axis of the data space; each axis is a tuple of (coefficient, dimension).
    projection: tuple[tuple[tuple[int, str], ...], ...]
    read_write: bool = False
    role: str = "inputs"

    def dims(self) -> set[str]:
        return {d for axis in self.projection for _, d in axis}

    def extent(self, dim_extent: dict[str, int]) -> int:
        """Number of points of the axis-aligned box spanned by ``dim_extent`` tiles."""
        size = 1
        for axis in self.projection:
            size *= sum(c * (dim_extent.get(d, 1) - 1) for c, d in axis) + 1
        return size


@dataclass(frozen=True)
class Workload:
    name: str
    dims: tuple[str, ...]
    bounds: dict[str, int] = field(hash=False)
    dataspaces: tuple[DataSpace, ...]
    bits: dict[str, int] = field(default_factory=dict, hash=False)  # per data-space name

    def __post_init__(self):
        for d in self.dims:
            b = self.bounds.get(d)
            if not isinstance(b, int) or isinstance(b, bool) or b < 1:
                raise SpecError(f"problem.instance.{d}", f"must be a positive integer, got {b!r}")
        for ds in self.dataspaces:
            for axis in ds.projection:
                for c, d in axis:
                    if d not in self.dims:
                        raise SpecError(f"problem.shape.data_spaces.{ds.name}",
                                        f"projection uses unknown dimension {d!r}")
        if sum(ds.read_write for ds in self.dataspaces) != 1:
            raise SpecError("problem.shape.data_spaces", "exactly one data space must be read_write (the outputs)")
        check_bits(self.bits, [ds.name for ds in self.dataspaces])

    @property
    def macs(self) -> int:
        return prod(self.bounds[d] for d in self.dims)

    def dataspace(self, name: str) -> DataSpace:
        for ds in self.dataspaces:
            if ds.name == name:
                return ds
        raise KeyError(name)

    def size(self, name: str) -> int:
        return self.dataspace(name).extent(self.bounds)

    def key(self) -> tuple:
        """Hashable identity of the shape (for caches)."""
        return (self.dims, tuple(self.bounds[d] for d in self.dims),
                tuple((ds.name, ds.projection, ds.read_write) for ds in self.dataspaces),
                tuple(sorted(self.bits.items())))


def check_bits(bits, spaces, where: str = "bits") -> None:
    """A layer's per-data-space bit-widths: a mapping of its data spaces' names to integers in
    1..1024 (SpecError naming ``where.<space>`` otherwise)."""
    if not isinstance(bits, dict):
        raise SpecError(where, f"must map data spaces ({', '.join(spaces)}) to bit-widths, got {bits!r}")
    for k, v in bits.items():
        if k not in spaces:
            raise SpecError(f"{where}.{k}", f"unknown data space (one of {', '.join(spaces)})")
        if not isinstance(v, Integral) or isinstance(v, bool) or not 1 <= v <= 1024:
            raise SpecError(f"{where}.{k}", f"must be an integer bit-width from 1 to 1024, got {v!r}")


# ----------------------------------------------------------------------------- constructors

def _bits(bits):
    """The constructors' ``bits``: a copy of a mapping, {} for None, anything else as given (for
    :func:`check_bits` to name)."""
    return {} if bits is None else dict(bits) if isinstance(bits, dict) else bits


def conv2d(name="conv", *, N=1, K, C, P, Q, R, S, stride=1, dilation=1, groups=1,
           bits=None) -> Workload:
    """A 2-D convolution in Timeloop's 7-D form. ``P``/``Q`` are output width/height.

    ``groups > 1`` adds a group dimension ``G`` (depthwise: ``groups = channels``, ``C = K = 1``
    per group); ``K`` and ``C`` are then per group.
    """
    sw, sh = (stride, stride) if isinstance(stride, int) else stride
    dw, dh = (dilation, dilation) if isinstance(dilation, int) else dilation
    g = [(1, "G")] if groups > 1 else []
    dims = (("G",) if groups > 1 else ()) + ("N", "K", "C", "P", "Q", "R", "S")
    bounds = dict(N=N, K=K, C=C, P=P, Q=Q, R=R, S=S)
    if groups > 1:
        bounds["G"] = groups
    w_proj = ((tuple(g),) if g else ()) + (((1, "K"),), ((1, "C"),), ((1, "R"),), ((1, "S"),))
    i_proj = ((tuple(g),) if g else ()) + (((1, "N"),), ((1, "C"),), ((sw, "P"), (dw, "R")),
                                          ((sh, "Q"), (dh, "S")))
    o_proj = ((tuple(g),) if g else ()) + (((1, "N"),), ((1, "K"),), ((1, "P"),), ((1, "Q"),))
    spaces = (DataSpace("Weights", w_proj, False, "weights"),
              DataSpace("Inputs", i_proj, False, "inputs"),
              DataSpace("Outputs", o_proj, True, "outputs"))
    return Workload(name, dims, bounds, spaces, _bits(bits))


def depthwise_conv2d(name="dwconv", *, N=1, C, P, Q, R, S, stride=1, dilation=1, multiplier=1,
                     bits=None) -> Workload:
    return conv2d(name, N=N, K=multiplier, C=1, P=P, Q=Q, R=R, S=S, stride=stride,
                  dilation=dilation, groups=C, bits=bits)


def matmul(name="matmul", *, M, N, K, bits=None) -> Workload:
    """``Outputs[M,N] += Inputs[M,K] * Weights[K,N]``."""
    spaces = (DataSpace("Weights", (((1, "K"),), ((1, "N"),)), False, "weights"),
              DataSpace("Inputs", (((1, "M"),), ((1, "K"),)), False, "inputs"),
              DataSpace("Outputs", (((1, "M"),), ((1, "N"),)), True, "outputs"))
    return Workload(name, ("M", "N", "K"), dict(M=M, N=N, K=K), spaces, _bits(bits))


def fully_connected(name="fc", *, batch=1, in_features, out_features, bits=None) -> Workload:
    """A linear layer as a 1x1 convolution on a 1x1 image (Timeloop's convention)."""
    return conv2d(name, N=batch, K=out_features, C=in_features, P=1, Q=1, R=1, S=1, bits=bits)


# ----------------------------------------------------------------------------- Timeloop problems

def _role(name: str, read_write: bool) -> str:
    n = name.lower()
    if read_write:
        return "outputs"
    if n.startswith("weight") or n in ("w", "filter", "filters", "b"):
        return "weights"
    return "inputs"


def from_timeloop(problem: dict, where: str = "problem") -> Workload:
    """Build a workload from a Timeloop v0.3/v0.4 ``problem`` dict (``shape`` + ``instance``)."""
    if not isinstance(problem, dict):
        raise SpecError(where, "must be a mapping with 'shape' and 'instance'")
    shape = problem.get("shape")
    inst = problem.get("instance")
    if not isinstance(shape, dict):
        raise SpecError(f"{where}.shape", "missing or not a mapping")
    if not isinstance(inst, dict):
        raise SpecError(f"{where}.instance", "missing or not a mapping")
    dims = shape.get("dimensions")
    if not isinstance(dims, list) or not dims:
        raise SpecError(f"{where}.shape.dimensions", "must be a non-empty list")
    coeffs = {}
    for c in shape.get("coefficients") or []:
        if not isinstance(c, dict) or "name" not in c:
            raise SpecError(f"{where}.shape.coefficients", "each entry needs a name")
        coeffs[c["name"]] = inst.get(c["name"], c.get("default", 1))
    bounds = {}
    for d in dims:
        bounds[str(d)] = inst.get(d, 1)
    # Timeloop ignores instance keys that are neither dimensions nor coefficients (e.g. H, W,
    # Hpad written by its front end), so do we.
    spaces = []
    for i, ds in enumerate(shape.get("data_spaces") or shape.get("data-spaces") or []):
        name = ds.get("name")
        if not name:
            raise SpecError(f"{where}.shape.data_spaces[{i}].name", "missing")
        proj = []
        for axis in ds.get("projection") or []:
            terms = []
            for term in axis:
                if not isinstance(term, list) or not term:
                    raise SpecError(f"{where}.shape.data_spaces.{name}.projection", "malformed term")
                dim = term[0]
                coef = 1
                if len(term) > 1:
                    cname = term[1]
                    if isinstance(cname, int):
                        coef = cname
                    elif cname in coeffs:
                        coef = coeffs[cname]
                    else:
                        raise SpecError(f"{where}.shape.data_spaces.{name}.projection",
                                        f"unknown coefficient {cname!r}")
                if not isinstance(coef, int) or coef < 0:
                    raise SpecError(f"{where}.instance", f"coefficient of {dim} must be a non-negative integer")
                terms.append((coef, str(dim)))
            proj.append(tuple(terms))
        rw = bool(ds.get("read_write", ds.get("read-write", False)))
        spaces.append(DataSpace(name, tuple(proj), rw, _role(name, rw)))
    if not spaces:
        raise SpecError(f"{where}.shape.data_spaces", "missing or empty")
    return Workload(str(shape.get("name", "layer")), tuple(str(d) for d in dims), bounds,
                    tuple(spaces))


def to_timeloop(w: Workload) -> dict:
    """Timeloop v0.4 ``problem`` dict (coefficients written inline as instance values)."""
    coeffs, data_spaces = {}, []
    for ds in w.dataspaces:
        proj = []
        for axis in ds.projection:
            terms = []
            for c, d in axis:
                if c == 1:
                    terms.append([d])
                else:
                    cname = f"{ds.name}_{d}_coef"
                    coeffs[cname] = c
                    terms.append([d, cname])
            proj.append(terms)
        entry = {"name": ds.name, "projection": proj}
        if ds.read_write:
            entry["read_write"] = True
        data_spaces.append(entry)
    instance = {d: w.bounds[d] for d in w.dims}
    instance.update(coeffs)
    return {"version": "0.4",
            "shape": {"name": w.name, "dimensions": list(w.dims),
                      "coefficients": [{"name": k, "default": 1} for k in coeffs],
                      "data_spaces": data_spaces},
            "instance": instance}
