"""The sweep file of a design-space sweep: fixed networks x a grid (or a seeded random subset) of hardware points of
one accelerator template, every pair mapped and evaluated with the accelerator model, resumable.

A sweep file (``specs/sweeps/*.yaml``)::

    description: PE array x global buffer x bit-width on Eyeriss-like     # optional
    mode: grid                    # grid (cartesian product) | random (n points, seed; default 0)
    networks:                     # name -> one source
      resnet18: {layers: specs/workloads/resnet18.yaml}   # our layer list, a Timeloop problem file or
                                                          # a directory of them (layer_shapes)
      ofa_min: {genome: min}      # a supernet subnet: max, min or {ks: [...], e: [...], d: [...], r: 32}
    hardware:                     # the co-search space's hardware parameters (specs/spaces/default.yaml)
      template: eyeriss_like      # a template name or a template file
      pe_x: [8, 12, 16]           # a list, {choices: [...]}, {min, max, step}, or a scalar (fixed)
      pe_y: {min: 8, max: 16, step: 4}
      bits: [8, 16]               # weights and inputs; partial sums max(16, 2 x bits)
      dataflow: row-stationary    # row-/weight-/output-/input-stationary, free
      dram_type: LPDDR4           # LPDDR4, HBM2, GDDR5, DDR3, ...
      dram_bw: 4                  # DRAM words per cycle
      sizes_kib: {GlobalBuffer: [64, 128, 256]}           # any on-chip level of the template, KiB
    mapper: {budget: 1500, objective: edp, seed: 0}       # per distinct layer shape (defaults)

Relative paths are taken from the sweep file's directory, then from the folder holding the
shipped ``specs/`` (the repository root in a checkout), so ``specs/workloads/...`` always works.
Parameters not given keep the template's own value, so a hardware point holds only the given
parameters. The point list is deterministic: networks in file order, each with every hardware
point (grid order; a random sweep draws ``n`` distinct grid points with ``seed`` and keeps them in
grid order); a point's id is its index in that list.

``load_sweep(FILE)`` resolves it into the JSON-able configuration a sweep run directory stores
(``codesign.rundir.sweep`` runs it)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError
from accelerators.network import Layer, load_layers
from accelerators.spec import DATAFLOWS, SPECS_DIR, template_path
from accelerators.workload import DataSpace, Workload

from codesign.jsonio import plain
from codesign.space.hardware import parameter_values, point_architecture

SPECS_PARENT = SPECS_DIR.parent      # `specs/...` paths resolve to the shipped specs (the repo root in a checkout)
SWEEP_KEYS = ("description", "mode", "n", "seed", "networks", "hardware", "mapper")
MODES = ("grid", "random")
HW_PARAMS = ("pe_x", "pe_y", "bits", "dataflow", "dram_type", "dram_bw")
HW_RANGES = {"pe_x": (1, 1024), "pe_y": (1, 1024), "bits": (1, 32), "dram_bw": (1e-3, 4096)}
MAPPER_DEFAULTS = {"budget": 1500, "objective": "edp", "seed": 0}
MAX_POINTS = 1_000_000
CONFIG_VERSION = 1


# ----------------------------------------------------------------------------- the sweep file

def load_sweep(path) -> dict:
    """The resolved sweep (a JSON-able dict, what ``config.json`` holds) of a sweep YAML file.
    Every problem raises a SpecError naming the file and the field."""
    from accelerators.timeloop import load_yaml
    p = Path(path)
    if not p.is_file():
        raise SpecError("sweep", "no such file", str(p))
    data = load_yaml(p)
    try:
        return resolve_sweep(data, base_dir=p.resolve().parent)
    except SpecError as e:
        raise e.in_file(str(p))


def resolve_sweep(d, base_dir=None) -> dict:
    if not isinstance(d, dict):
        raise SpecError("sweep", "must be a mapping with 'networks' and 'hardware'")
    for k in d:
        if k not in SWEEP_KEYS:
            raise SpecError(str(k), f"unknown key (one of {', '.join(SWEEP_KEYS)})")
    for k in ("networks", "hardware"):
        if k not in d:
            raise SpecError(k, "missing")
    desc = d.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 10_000):
        raise SpecError("description", "must be a line of text (at most 10,000 characters)")
    template, text = _template(d["hardware"], base_dir)
    axes = hardware_axes(d["hardware"], text)
    mode = d.get("mode", "grid")
    if mode not in MODES:
        raise SpecError("mode", f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if mode == "grid":
        for k in ("n", "seed"):
            if k in d:
                raise SpecError(k, "only used with mode: random")
    n, seed = d.get("n"), d.get("seed", 0)
    if mode == "random" and not _int(n, 1):
        raise SpecError("n", f"mode random needs n, a positive integer (got {n!r})")
    if not _int(seed, 0):
        raise SpecError("seed", f"must be a non-negative integer, got {seed!r}")
    networks = resolve_networks(d["networks"], base_dir)
    hw_points = expand_points(axes, mode, n=n, seed=seed)
    from accelerators.limits import MAX, large_allowed
    cap = MAX_POINTS if large_allowed() else MAX["grid"]
    if len(hw_points) * len(networks) > cap:
        raise SpecError("hardware", f"{len(hw_points) * len(networks):,} points (more than {cap:,}): "
                        "use mode: random with n" + ("" if large_allowed() else ", or --allow-large"))
    return {"version": CONFIG_VERSION, "sweep": plain(d), "template": template, "template_text": text,
            "mapper": resolve_mapper(d.get("mapper")), "networks": networks,
            "hw_params": [name for name, _ in axes],
            "points": [{"network": name, "hw": hw} for name in networks for hw in hw_points]}


def _int(v, lo) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _find(value, base_dir, field: str) -> Path:
    """A path as written in the sweep file: absolute, or relative to its directory, then to the
    folder holding the shipped ``specs/`` (the repository root in a checkout)."""
    p = Path(str(value))
    for cand in ([p] if p.is_absolute() else [Path(base_dir or ".") / p, SPECS_PARENT / p]):
        if cand.exists():
            return cand.resolve()
    raise SpecError(field, f"no such file or directory: {value}")


def _template(hw, base_dir) -> tuple[str, str]:
    if not isinstance(hw, dict):
        raise SpecError("hardware", "must be a mapping of parameters")
    t = hw.get("template")
    if not isinstance(t, str) or not t:
        raise SpecError("hardware.template", "missing (a template name or file)")
    if t.endswith((".yaml", ".yml")) or "/" in t:
        p = _find(t, base_dir, "hardware.template")
    else:
        try:
            p = template_path(t)
        except SpecError as e:
            raise SpecError("hardware.template", e.message) from None
    from accelerators.timeloop import load_yaml
    if not p.is_file():
        raise SpecError("hardware.template", f"not a file: {t}")
    load_yaml(p)                                  # malformed YAML: named in the template's file
    text = p.read_text()
    try:
        point_architecture(text, "{}")
    except SpecError as e:
        raise e.in_file(str(p))
    return p.stem, text


def hardware_axes(hw: dict, template_text: str) -> list[tuple[str, tuple]]:
    """``[(parameter, values), ...]``: parameters in HW_PARAMS order, then ``sizes_kib.<Level>``
    in the file's order; a scalar is a one-value axis. Values are checked one by one on the
    template, so a bad one is reported under its own field."""
    for k in hw:
        if k not in HW_PARAMS + ("template", "sizes_kib"):
            raise SpecError(f"hardware.{k}", f"unknown parameter (one of template, {', '.join(HW_PARAMS)}, sizes_kib)")
    axes = []
    for name in HW_PARAMS:
        if name in hw:
            axes.append((name, _axis(hw[name], f"hardware.{name}", name, template_text)))
    sizes = hw.get("sizes_kib")
    if sizes is not None:
        if not isinstance(sizes, dict) or not sizes:
            raise SpecError("hardware.sizes_kib", "must be a mapping {level name: sizes in KiB}")
        arch0 = point_architecture(template_text, "{}")
        levels = {lv.name: lv for lv in arch0.levels}
        for lv, spec in sizes.items():
            where = f"hardware.sizes_kib.{lv}"
            if lv not in levels:
                raise SpecError(where, f"no such level in the template (levels: {', '.join(levels)})")
            if levels[lv].kind in ("dram", "dummy"):
                raise SpecError(where, f"a {levels[lv].kind} level has no size to sweep")
            axes.append((f"sizes_kib.{lv}", _axis(spec, where, f"sizes_kib.{lv}", template_text)))
    return axes


def _axis(spec, where: str, name: str, template_text: str) -> tuple:
    vals = parameter_values(spec, where) if isinstance(spec, (list, dict)) else (spec,)
    vals = tuple(plain(list(vals)))
    if len(set(map(json.dumps, vals))) != len(vals):
        raise SpecError(where, f"repeats a value: {list(vals)}")
    for v in vals:
        _check_value(name, v, where)
        try:
            arch = point_architecture(template_text, json.dumps(_point({name: v})))
        except SpecError as e:
            raise SpecError(where, f"{v!r}: {e.field}: {e.message}") from None
        if name.startswith("sizes_kib."):
            lv = next(l for l in arch.levels if l.name == name.split(".", 1)[1])
            if not lv.size_words:
                raise SpecError(where, f"{v!r} KiB holds no {lv.word_bits}-bit word")
    return vals


def _check_value(name: str, v, where: str) -> None:
    if name in ("dataflow", "dram_type") and not isinstance(v, str):
        raise SpecError(where, f"must be a name, got {v!r}")
    if name == "dataflow":
        if v not in DATAFLOWS:
            raise SpecError(where, f"unknown dataflow {v!r} (one of {', '.join(DATAFLOWS)})")
        return
    if name == "dram_type":
        from accelerators.energy import dram_pj_per_bit
        try:
            dram_pj_per_bit(v)
        except SpecError as e:
            raise SpecError(where, e.message) from None
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(where, f"must be a number, got {v!r}")
    if name in ("pe_x", "pe_y", "bits") and not isinstance(v, int):
        raise SpecError(where, f"must be an integer, got {v!r}")
    lo, hi = HW_RANGES.get(name, (0, float("inf")))
    if not lo <= v <= hi or v <= 0:
        raise SpecError(where, f"{v!r} is out of range ({lo} to {hi})" if name in HW_RANGES else
                        f"must be positive, got {v!r}")


def _point(flat: dict) -> dict:
    """``{"pe_x": 8, "sizes_kib.GlobalBuffer": 64}`` -> ``{"pe_x": 8, "sizes_kib": {"GlobalBuffer": 64}}``."""
    out = {}
    for k, v in flat.items():
        if k.startswith("sizes_kib."):
            out.setdefault("sizes_kib", {})[k.split(".", 1)[1]] = v
        else:
            out[k] = v
    return out


def expand_points(axes, mode: str = "grid", n: int | None = None, seed: int = 0) -> list[dict]:
    """Hardware points: the cartesian product of the axes (``grid``), or ``n`` distinct points of
    it drawn with ``seed`` (``random``), in grid order either way."""
    sizes = [len(vals) for _, vals in axes]
    total = int(np.prod(sizes, dtype=object)) if sizes else 1
    from accelerators.limits import MAX, large_allowed
    cap = MAX_POINTS if large_allowed() else MAX["grid"]
    if mode == "grid":
        if total > cap:
            raise SpecError("hardware", f"a grid of {total:,} points (more than {cap:,}): use mode: random with n"
                            + ("" if large_allowed() else ", or --allow-large"))
        combos = itertools.product(*(range(s) for s in sizes))
    else:
        if n > min(total, cap):
            raise SpecError("n", f"{n} is more than the {min(total, cap):,} points a sweep may hold"
                            + ("" if large_allowed() else " (--allow-large lifts it to 1,000,000)")
                            if n > cap else f"{n} is more than the {total} distinct points of the grid")
        rng = np.random.default_rng(seed)
        if total <= 10 * MAX_POINTS:
            flat = rng.choice(total, size=n, replace=False)
            combos = [np.unravel_index(int(i), sizes) if sizes else () for i in flat]
        else:                     # astronomically large grids: draw per axis, reject repeats
            seen: set = set()
            while len(seen) < n:
                seen.add(tuple(int(rng.integers(s)) for s in sizes))
            combos = list(seen)
        combos = sorted(tuple(int(i) for i in c) for c in combos)
    return [_point({name: vals[i] for (name, vals), i in zip(axes, c)}) for c in combos]


def resolve_networks(nets, base_dir) -> dict:
    """``{name: {"source": ..., "layers": [layer as JSON, ...]}}``, layers read now (so the run
    directory is self-contained and a Dask worker needs no files)."""
    if not isinstance(nets, dict) or not nets:
        raise SpecError("networks", "must be a non-empty mapping {name: {layers: FILE} or {genome: max|min|{...}}}")
    out = {}
    for name, spec in nets.items():
        where = f"networks.{name}"
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("layers", "genome"):
            raise SpecError(where, "must be {layers: FILE or DIRECTORY} or {genome: max | min | {ks, e, d, r}}")
        if "layers" in spec:
            layers = _read_layers(_find(spec["layers"], base_dir, f"{where}.layers"))
            source = {"layers": str(spec["layers"])}
        else:
            from codesign.space.genome import named_genome
            from codesign.space.layers import genome_layers
            g = named_genome(spec["genome"], f"{where}.genome")
            layers = genome_layers(g)
            source = {"genome": g}
        if not layers:
            raise SpecError(where, "has no layers")
        out[str(name)] = {"source": source, "layers": [layer_to_json(l) for l in layers]}
    return out


def _read_layers(path: Path) -> list[Layer]:
    """``load_layers``, plus our one-layer files (``workload: {type: conv2d, ...}``, as ``codesign map`` reads)."""
    from accelerators.spec import build_workload
    from accelerators.timeloop import load_yaml
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        data = load_yaml(path)
        if isinstance(data, dict) and "workload" in data and "layers" not in data:
            try:
                return [Layer(path.stem, build_workload(data["workload"]))]
            except SpecError as e:
                raise e.in_file(str(path))
    return load_layers(path)


def resolve_mapper(m) -> dict:
    from accelerators.mapper import parse_objective
    m = {} if m is None else m
    if not isinstance(m, dict):
        raise SpecError("mapper", "must be a mapping {budget, objective, seed}")
    for k in m:
        if k not in MAPPER_DEFAULTS:
            raise SpecError(f"mapper.{k}", f"unknown key (one of {', '.join(MAPPER_DEFAULTS)})")
    out = dict(MAPPER_DEFAULTS, **m)
    if not _int(out["budget"], 1):
        raise SpecError("mapper.budget", f"must be a positive integer, got {out['budget']!r}")
    from accelerators.limits import check_int
    check_int(out["budget"], "mapper.budget", limit="mapper_budget")
    if not _int(out["seed"], 0):
        raise SpecError("mapper.seed", f"must be a non-negative integer, got {out['seed']!r}")
    try:
        parse_objective(out["objective"])
    except SpecError as e:
        raise SpecError("mapper.objective", e.message) from None
    return out


def layer_to_json(layer: Layer) -> dict:
    w = layer.work
    return {"name": layer.name, "work": w.name, "dims": list(w.dims), "bounds": {d: w.bounds[d] for d in w.dims},
            "bits": dict(w.bits), "dataspaces": [[ds.name, [[list(t) for t in axis] for axis in ds.projection],
                                                  ds.read_write, ds.role] for ds in w.dataspaces]}


def layer_from_json(d: dict) -> Layer:
    spaces = tuple(DataSpace(name, tuple(tuple((int(c), str(dim)) for c, dim in axis) for axis in proj), bool(rw), role)
                   for name, proj, rw, role in d["dataspaces"])
    return Layer(d["name"], Workload(d["work"], tuple(d["dims"]), dict(d["bounds"]), spaces, dict(d["bits"])))
