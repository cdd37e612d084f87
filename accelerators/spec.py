"""Our own YAML spec format for architectures, workloads and mappings (see specs/accelerators/).

An architecture file holds ``name``, ``technology_nm``, ``clock_ghz``, ``bits`` (weights /
inputs / outputs), ``dataflow``, ``pe_array: {x, y}``, ``levels`` (outermost first) and
``compute``. Energies and areas come from the built-in tables unless a level gives
``energy_pj`` / ``area_um2``. PE array size and bit-widths are parameters: change them with
:func:`build_architecture` overrides and every figure follows.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .arch import ActionEnergy, Architecture, Compute, Level
from .errors import SpecError
from .limits import check_int
from .mapping import LevelMapping, Mapping
from .resources import SPECS_DIR
from .workload import Workload, conv2d, depthwise_conv2d, fully_connected, matmul

DATAFLOWS = ("row-stationary", "weight-stationary", "output-stationary", "input-stationary", "free")
KINDS = ("dram", "sram", "regfile", "dummy")
ARCH_KEYS = {"name", "description", "technology_nm", "clock_ghz", "bits", "dataflow", "pe_array",
             "levels", "compute", "energy_tables"}
LEVEL_KEYS = {"name", "kind", "dram_type", "width_bits", "bandwidth", "size_kib", "size_bytes",
              "size_words", "scope", "instances", "mesh_x", "mesh_y", "keeps", "energy_pj",
              "area_um2", "multiple_buffering", "word_bits", "comment"}
COMPUTE_KEYS = {"name", "multiplier_bits", "adder_bits", "energy_pj", "area_um2", "leak_pj"}


def template_path(name: str) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    cand = SPECS_DIR / "accelerators" / f"{name}.yaml"
    if cand.is_file():
        return cand
    known = sorted(q.stem for q in (SPECS_DIR / "accelerators").glob("*.yaml"))
    raise SpecError("architecture", f"no file or template named {name!r} (templates: {', '.join(known)})")


def list_templates() -> list[str]:
    return sorted(q.stem for q in (SPECS_DIR / "accelerators").glob("*.yaml"))


def _check_keys(d: dict, allowed: set, where: str):
    if not isinstance(d, dict):
        raise SpecError(where, f"must be a mapping, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise SpecError(f"{where}.{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _pos(v, where, integer=False, allow_none=False):
    if v is None and allow_none:
        return None
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise SpecError(where, f"must be a positive {'integer' if integer else 'number'}, got {v!r}")
    if not v > 0 or v == float("inf"):
        raise SpecError(where, f"must be positive and finite, got {v}")
    return v


def _nonneg(v, where):
    """An energy or area figure: a finite number >= 0, as a float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
        raise SpecError(where, f"must be a finite number >= 0, got {v!r}")
    return float(v)


def build_architecture(spec: dict, *, pe_array: tuple[int, int] | None = None, bits: dict | None = None,
                       sizes_kib: dict | None = None, dram_type: str | None = None,
                       dram_bandwidth: float | None = None, dataflow: str | None = None,
                       where: str = "architecture") -> Architecture:
    """Architecture from our spec dict; keyword overrides are what a co-search mutates."""
    from . import energy as tables
    _check_keys(spec, ARCH_KEYS, where)
    name = spec.get("name") or "arch"
    tech = float(_pos(spec.get("technology_nm", 45), f"{where}.technology_nm"))
    clock = float(_pos(spec.get("clock_ghz", 1.0), f"{where}.clock_ghz"))
    b = dict(spec.get("bits") or {"weights": 16, "inputs": 16, "outputs": 16})
    _check_keys(b, {"weights", "inputs", "outputs"}, f"{where}.bits")
    b.update(bits or {})
    for k in ("weights", "inputs", "outputs"):
        b.setdefault(k, 16)
        _pos(b[k], f"{where}.bits.{k}", integer=True)
    df = dataflow or spec.get("dataflow", "free")
    if df not in DATAFLOWS:
        raise SpecError(f"{where}.dataflow", f"unknown dataflow {df!r} (one of {', '.join(DATAFLOWS)})")
    pa = spec.get("pe_array") or {"x": 1, "y": 1}
    _check_keys(pa, {"x", "y"}, f"{where}.pe_array")
    px, py = pe_array or (pa.get("x", 1), pa.get("y", 1))
    _pos(px, f"{where}.pe_array.x", integer=True)
    _pos(py, f"{where}.pe_array.y", integer=True)
    if not (isinstance(px, bool) or isinstance(py, bool)):
        check_int(int(px) * int(py), f"{where}.pe_array (x * y MACs)", limit="macs")
    word_bits = max(b.values())
    role_bits = tuple(sorted(b.items()))
    raw_levels = spec.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise SpecError(f"{where}.levels", "must be a non-empty list (outermost first)")
    levels = []
    for i, lv in enumerate(raw_levels):
        lw = f"{where}.levels[{i}]"
        _check_keys(lv, LEVEL_KEYS, lw)
        if "name" not in lv:
            raise SpecError(f"{lw}.name", "missing")
        lw = f"{where}.levels.{lv['name']}"
        kind = lv.get("kind", "sram")
        if kind not in KINDS:
            raise SpecError(f"{lw}.kind", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        wb = int(_pos(lv.get("word_bits", word_bits), f"{lw}.word_bits", integer=True))
        width = int(_pos(lv.get("width_bits", wb), f"{lw}.width_bits", integer=True))
        size_kib = (sizes_kib or {}).get(lv["name"], lv.get("size_kib"))
        if kind in ("dram",):
            size = None
        elif size_kib is not None:
            size = int(_pos(size_kib, f"{lw}.size_kib") * 1024 * 8 // wb)
        elif "size_bytes" in lv:
            size = int(_pos(lv["size_bytes"], f"{lw}.size_bytes") * 8 // wb)
        elif "size_words" in lv:
            size = int(_pos(lv["size_words"], f"{lw}.size_words", integer=True))
        elif kind == "dummy":
            size = None
        else:
            raise SpecError(f"{lw}.size_kib", "missing (give size_kib, size_bytes or size_words)")
        scope = lv.get("scope", "chip")
        if "instances" in lv or "mesh_x" in lv:
            mx = int(_pos(lv.get("mesh_x", lv.get("instances", 1)), f"{lw}.mesh_x", integer=True))
            my = int(_pos(lv.get("mesh_y", 1), f"{lw}.mesh_y", integer=True))
        elif scope == "pe":
            mx, my = px, py
        elif scope == "chip":
            mx, my = 1, 1
        else:
            raise SpecError(f"{lw}.scope", f"must be 'chip' or 'pe', got {scope!r}")
        keeps = lv.get("keeps")
        if keeps is not None and (not isinstance(keeps, list) or not all(isinstance(k, str) for k in keeps)):
            raise SpecError(f"{lw}.keeps", "must be a list of data-space names")
        dt = dram_type or lv.get("dram_type", "LPDDR4")
        try:
            en = tables.storage_energy(kind, size, wb, width, tech, dram_type=dt)
            # the tables give leakage per nanosecond; the model charges it per cycle
            en = ActionEnergy(en.read_pj, en.write_pj, en.update_pj, en.leak_pj / clock)
            area = tables.storage_area_um2(kind, size, wb, width, tech)
        except SpecError as e:
            raise SpecError(f"{lw}.{e.field}", e.message) from None
        if "energy_pj" in lv:
            ov = lv["energy_pj"]
            _check_keys(ov, {"read", "write", "update", "leak"}, f"{lw}.energy_pj")
            num = lambda k, d: _nonneg(ov.get(k, d), f"{lw}.energy_pj.{k}")
            w = num("write", en.write_pj)
            en = ActionEnergy(read_pj=num("read", en.read_pj), write_pj=w, update_pj=num("update", w),
                              leak_pj=num("leak", en.leak_pj))
        if "area_um2" in lv:
            area = _nonneg(lv["area_um2"], f"{lw}.area_um2")
        bw = lv.get("bandwidth") or {}
        _check_keys(bw, {"read", "write"}, f"{lw}.bandwidth")
        if kind == "dram" and dram_bandwidth is not None:
            bw = {"read": dram_bandwidth, "write": dram_bandwidth}
        levels.append(Level(
            name=str(lv["name"]), kind=kind, size_words=size, word_bits=wb, width_bits=width,
            instances=mx * my, mesh_x=mx, mesh_y=my,
            read_bw=_pos(bw.get("read"), f"{lw}.bandwidth.read", allow_none=True),
            write_bw=_pos(bw.get("write"), f"{lw}.bandwidth.write", allow_none=True),
            keeps=tuple(keeps) if keeps is not None else None, energy=en, area_um2=float(area),
            multiple_buffering=float(_pos(lv.get("multiple_buffering", 1), f"{lw}.multiple_buffering")),
            word_bits_per_role=role_bits))
    c = spec.get("compute") or {}
    _check_keys(c, COMPUTE_KEYS, f"{where}.compute")
    mb = int(_pos(c.get("multiplier_bits", max(b["weights"], b["inputs"])) if not bits
                  else max(b["weights"], b["inputs"]), f"{where}.compute.multiplier_bits", integer=True))
    ab = int(_pos(c.get("adder_bits", b["outputs"]) if not bits else b["outputs"], f"{where}.compute.adder_bits",
                  integer=True))
    compute = Compute(name=str(c.get("name", "MAC")), instances=px * py, mesh_x=px, mesh_y=py,
                      energy_pj=_nonneg(c.get("energy_pj", tables.mac_energy_pj(mb, ab, tech)),
                                        f"{where}.compute.energy_pj"),
                      leak_pj=_nonneg(c.get("leak_pj", 0.0), f"{where}.compute.leak_pj"),
                      area_um2=_nonneg(c.get("area_um2", tables.mac_area_um2(mb, ab, tech)),
                                       f"{where}.compute.area_um2"),
                      multiplier_bits=mb, adder_bits=ab)
    return Architecture(name=str(name), levels=tuple(levels), compute=compute, clock_ghz=clock,
                        technology_nm=tech, bits=b, dataflow=df)


def load_architecture(path_or_name, **overrides) -> Architecture:
    from .timeloop import load_yaml
    p = template_path(str(path_or_name))
    data = load_yaml(p)
    if isinstance(data, dict) and "architecture" in data and isinstance(data["architecture"], dict) \
            and "levels" in data["architecture"]:
        data = data["architecture"]
    try:
        return replace(build_architecture(data, **overrides), source=str(p))
    except SpecError as e:
        raise e.in_file(str(p))


# ----------------------------------------------------------------------------- workloads

WORKLOAD_TYPES = {"conv2d": conv2d, "depthwise_conv2d": depthwise_conv2d, "matmul": matmul,
                  "fully_connected": fully_connected}


def build_workload(spec: dict, where: str = "workload") -> Workload:
    if not isinstance(spec, dict):
        raise SpecError(where, "must be a mapping")
    kind = spec.get("type", "conv2d")
    fn = WORKLOAD_TYPES.get(kind)
    if fn is None:
        raise SpecError(f"{where}.type", f"unknown layer type {kind!r} (one of {', '.join(WORKLOAD_TYPES)})")
    args = {k: v for k, v in spec.items() if k not in ("type", "repeat")}
    bits = args.pop("bits", None)
    import inspect
    params = inspect.signature(fn).parameters
    for k, v in args.items():
        if k not in params:
            raise SpecError(f"{where}.{k}", f"unknown parameter for {kind} "
                            f"(allowed: {', '.join(p for p in params if p != 'bits')})")
        if k != "name" and not (isinstance(v, int) and not isinstance(v, bool) and v > 0) \
                and not (k in ("stride", "dilation") and isinstance(v, list)):
            raise SpecError(f"{where}.{k}", f"must be a positive integer, got {v!r}")
    try:
        return fn(**args, bits=bits)
    except SpecError as e:
        if e.field.startswith("bits"):          # (the Workload's own check, on this layer's path)
            raise SpecError(f"{where}.{e.field}", e.message) from None
        raise
    except TypeError as e:
        missing = str(e).split("argument")[-1].strip(": '")
        raise SpecError(f"{where}", f"missing parameter {missing}") from None


# ----------------------------------------------------------------------------- mappings

MAPPING_KEYS = {"temporal", "permutation", "spatial_x", "spatial_y", "keep"}


def build_mapping(spec: dict, arch: Architecture, work: Workload, where: str = "mapping") -> Mapping:
    """``{level name: {temporal: {K: 4}, permutation: "KC" (innermost first), spatial_x: {...},
    spatial_y: {...}, keep: [...]}}``; levels not named get no loops."""
    if not isinstance(spec, dict):
        raise SpecError(where, "must be a mapping of level name -> loops")
    names = [lv.name for lv in arch.levels]
    for k in spec:
        if k not in names:
            raise SpecError(f"{where}.{k}", f"unknown level (levels: {', '.join(names)})")
    levels = []
    for lv in arch.levels:
        m = spec.get(lv.name) or {}
        _check_keys(m, MAPPING_KEYS, f"{where}.{lv.name}")
        perm = m.get("permutation", "")
        perm = tuple(perm) if isinstance(perm, list) else tuple(_split_dims(str(perm), work.dims))
        keep = m.get("keep")
        levels.append(LevelMapping(temporal=dict(m.get("temporal") or {}), permutation=perm,
                                   spatial_x=dict(m.get("spatial_x") or {}),
                                   spatial_y=dict(m.get("spatial_y") or {}),
                                   keep=frozenset(keep) if keep is not None else None))
    return Mapping(tuple(levels))


def _split_dims(text: str, dims) -> list:
    from .timeloop import _perm
    return list(_perm(text, dims, "mapping"))
