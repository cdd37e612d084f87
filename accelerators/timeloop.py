"""Timeloop interoperability: read Timeloop-format inputs (architecture v0.3/v0.4 ``subtree`` +
``local`` form and the v0.4 ``nodes`` form, ``problem``, ``mapping``, ``ERT``/``ART``) and write
our architectures, workloads and mappings back as Timeloop v0.4 YAML.

Files are merged the way ``timeloop-model`` merges them: in order, a later file's top-level key
replaces an earlier one's.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import yaml

from .arch import ActionEnergy, Architecture, Compute, Level
from .errors import MappingError, SpecError
from .limits import LimitedLoader, load_yaml_file
from .arch import split_xy  # noqa: F401  (re-exported: the Timeloop writer's use)
from .mapping import LevelMapping, Mapping, needs_split, split_mapping  # noqa: F401
from .workload import Workload, from_timeloop as problem_from_timeloop, to_timeloop as problem_to_timeloop

COMPUTE_CLASSES = ("mac", "intmac", "fpmac", "compute", "multiplier", "adder")
DUMMY_CLASSES = ("dummy_storage", "dummy")


# ----------------------------------------------------------------------------- YAML

class _Loader(LimitedLoader):
    """SafeLoader (with the input limits of :mod:`accelerators.limits`) that also reads
    timeloopfe's tags (!Component, !Container, ...) as mappings."""


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        data = loader.construct_mapping(node, deep=True)
        data["_tag"] = suffix
        return data
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", _tagged)


def load_yaml(path) -> object:
    """One YAML file, read with the limits of :mod:`accelerators.limits` (size, aliases, depth);
    any problem is a SpecError naming the file."""
    return load_yaml_file(path, _Loader)


def merge_files(paths) -> tuple[dict, dict]:
    """Merge YAML files in order; returns (merged dict, {top-level key: file it came from})."""
    merged, origin = {}, {}
    for p in paths:
        if not Path(p).is_file():
            raise SpecError("path", "no such file", str(p))
        data = load_yaml(p)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise SpecError("top level", "must be a mapping of keys (architecture, problem, mapping, ...)", str(p))
        for k, v in data.items():
            merged[k] = v
            origin[k] = str(p)
    return merged, origin


# ----------------------------------------------------------------------------- ERT / ART

def _base_name(name: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", str(name)).split(".")[-1]


def parse_ert(ert: dict) -> dict:
    """{component name: {action: energy pJ}} from an ERT or ERT_summary dict."""
    if not isinstance(ert, dict):
        raise SpecError("ERT", "must be a mapping with 'tables' or 'table_summary'")
    tables = ert.get("tables") or ert.get("table_summary")
    if not isinstance(tables, list):
        raise SpecError("ERT.tables", "missing or not a list")
    out = {}
    for t in tables:
        name = _base_name(t.get("name", ""))
        acts = {}
        for a in t.get("actions") or []:
            e = a.get("energy")
            if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e < 0:
                raise SpecError(f"ERT.{name}.{a.get('name')}.energy",
                                f"must be a finite number of pJ >= 0, got {e!r}")
            acts.setdefault(a["name"], float(e))     # first entry = default arguments
        out[name] = acts
    return out


def parse_art(art: dict) -> dict:
    tables = art.get("tables") or art.get("table_summary") or []
    out = {}
    for t in tables:
        name = _base_name(t.get("name", "")) if isinstance(t, dict) else ""
        a = t.get("area", 0.0) if isinstance(t, dict) else None
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
            raise SpecError(f"ART.{name or 'tables'}.area", f"must be a finite area >= 0, got {a!r}")
        out[name] = float(a)
    return out


# ----------------------------------------------------------------------------- architecture

def _count(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*)\[(\d+)\.\.(\d+)\]$", str(name))
    if not m:
        return str(name), 1
    return m.group(1), int(m.group(3)) - int(m.group(2)) + 1


def _flatten_v3(node: dict, mult: int, inherited: dict, out: list, where: str):
    attrs = dict(inherited)
    attrs.update(node.get("attributes") or {})
    for comp in node.get("local") or []:
        name, n = _count(comp.get("name", ""))
        cattrs = dict(attrs)
        cattrs.update(comp.get("attributes") or {})
        out.append({"name": name, "class": comp.get("class", ""), "subclass": comp.get("subclass"),
                    "attributes": cattrs, "instances": n * mult, "where": f"{where}.{name}"})
    for sub in node.get("subtree") or []:
        name, n = _count(sub.get("name", ""))
        _flatten_v3(sub, mult * n, attrs, out, f"{where}.{name}")


def _flatten_nodes(nodes: list, out: list, where: str):
    mult, mx, my, inherited = 1, 1, 1, {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        spatial = node.get("spatial") or {}
        nx, ny = int(spatial.get("meshX", 1)), int(spatial.get("meshY", 1))
        mult, mx, my = mult * nx * ny, mx * nx, my * ny
        attrs = dict(inherited)
        attrs.update(node.get("attributes") or {})
        tag = node.get("_tag", "Component" if "class" in node else "Container")
        if tag == "Container" or "class" not in node:
            inherited = attrs
            continue
        attrs.setdefault("meshX", mx)
        attrs.setdefault("meshY", my)
        out.append({"name": node.get("name", f"node{i}"), "class": node.get("class", ""),
                    "subclass": node.get("subclass"), "attributes": attrs, "instances": mult,
                    "where": f"{where}.nodes[{i}]"})


def _num(attrs, key, where, default=None, positive=True):
    v = attrs.get(key, default)
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise SpecError(f"{where}.attributes.{key}", f"must be a number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(f"{where}.attributes.{key}", f"must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise SpecError(f"{where}.attributes.{key}", f"must be positive, got {v}")
    return v


def _tech_nm(v) -> float:
    if isinstance(v, (int, float)) and v > 0:
        return float(v)
    m = re.match(r"^\s*(\d+(\.\d+)?)\s*nm\s*$", str(v))
    return float(m.group(1)) if m else 45.0


class _BuiltinTables:
    """Imports the table module only when an ERT/ART leaves a component uncovered."""

    def __getattr__(self, name):
        from . import energy
        return getattr(energy, name)


def architecture_from_timeloop(spec: dict, ert: dict | None = None, art: dict | None = None,
                               name: str = "timeloop") -> Architecture:
    if not isinstance(spec, dict):
        raise SpecError("architecture", "must be a mapping")
    comps: list = []
    if "subtree" in spec:
        for sub in spec["subtree"] or []:
            sname, n = _count(sub.get("name", ""))
            _flatten_v3(sub, n, {}, comps, f"architecture.{sname}")
    elif "nodes" in spec:
        _flatten_nodes(spec["nodes"], comps, "architecture")
    else:
        raise SpecError("architecture", "needs 'subtree' (v0.3 / parsed v0.4) or 'nodes' (v0.4)")
    if not comps:
        raise SpecError("architecture", "has no components")
    tables = _BuiltinTables()   # built-in tables for components the ERT / ART does not cover
    levels, compute = [], None
    for c in comps:
        cls = str(c["class"]).lower()
        attrs, where = c["attributes"], c["where"]
        tech = _tech_nm(attrs.get("technology", 45))
        if any(k in cls for k in COMPUTE_CLASSES) and "depth" not in attrs and cls not in ("dram", "sram"):
            if compute is not None:
                raise SpecError(where, "only one compute (MAC) level is supported")
            mb = int(_num(attrs, "multiplier_width", where, attrs.get("datawidth", attrs.get("width", 16))))
            ab = int(_num(attrs, "adder_width", where, attrs.get("datawidth", attrs.get("width", 16))))
            ents = (ert or {}).get(c["name"], {})
            e = ents.get("compute", ents.get("mac_random"))
            if e is None:
                e = tables.mac_energy_pj(mb, ab, tech)
            mx = int(_num(attrs, "meshX", where, 1))
            compute = Compute(name=c["name"], instances=c["instances"], mesh_x=mx,
                              mesh_y=c["instances"] // mx, energy_pj=float(e),
                              leak_pj=float(ents.get("leak", 0.0)),
                              area_um2=float((art or {})[c["name"]] if c["name"] in (art or {})
                                             else tables.mac_area_um2(mb, ab, tech)),
                              multiplier_bits=mb, adder_bits=ab)
            continue
        if compute is not None:
            raise SpecError(where, "storage levels must come before the compute level")
        kind = ("dummy" if cls in DUMMY_CLASSES else "dram" if cls == "dram"
                else "regfile" if ("regfile" in cls or "register" in str(c.get("subclass") or "")
                                   or "_rf" in cls) else "sram")
        datawidth = int(_num(attrs, "datawidth", where, attrs.get("word-bits", attrs.get("word_bits", 16))))
        width = attrs.get("width", attrs.get("block-size", None))
        width = int(_num(attrs, "width", where, datawidth)) if width is not None else datawidth
        if "block_size" in attrs or "block-size" in attrs:
            width = int(_num(attrs, "block_size" if "block_size" in attrs else "block-size", where)) * datawidth
        depth = attrs.get("depth", attrs.get("entries"))
        if kind in ("dram",) or depth is None:
            size = None
        else:
            depth = int(_num(attrs, "depth" if "depth" in attrs else "entries", where))
            size = depth * max(1, width // datawidth)
        mx = int(_num(attrs, "meshX", where, 1))
        if c["instances"] % mx:
            raise SpecError(f"{where}.attributes.meshX", f"{mx} does not divide the {c['instances']} instances")
        ents = (ert or {}).get(c["name"])
        if kind == "dummy":
            en = ActionEnergy()
        elif ents is not None:
            w = ents.get("write", ents.get("update", 0.0))
            en = ActionEnergy(read_pj=ents.get("read", 0.0), write_pj=w, update_pj=ents.get("update", w),
                              leak_pj=ents.get("leak", 0.0))
        else:
            en = tables.storage_energy(kind, size, datawidth, width, tech,
                                       dram_type=str(attrs.get("type", "LPDDR4")))
            cycle_ns = float(attrs.get("global_cycle_seconds", 1e-9)) * 1e9   # tables: leak per ns
            en = ActionEnergy(en.read_pj, en.write_pj, en.update_pj, en.leak_pj * cycle_ns)
        area = (art or {}).get(c["name"])
        if area is None:
            area = 0.0 if kind in ("dummy", "dram") else tables.storage_area_um2(kind, size, datawidth, width, tech)
        rbw = attrs.get("read_bandwidth", attrs.get("shared_bandwidth"))
        wbw = attrs.get("write_bandwidth", attrs.get("shared_bandwidth"))
        levels.append(Level(
            name=c["name"], kind=kind, size_words=size, word_bits=datawidth, width_bits=width,
            instances=c["instances"], mesh_x=mx, mesh_y=c["instances"] // mx,
            read_bw=_num(attrs, "read_bandwidth", where) if rbw is not None and "read_bandwidth" in attrs
            else (float(rbw) if rbw is not None else None),
            write_bw=_num(attrs, "write_bandwidth", where) if wbw is not None and "write_bandwidth" in attrs
            else (float(wbw) if wbw is not None else None),
            energy=en, area_um2=float(area),
            multiple_buffering=float(_num(attrs, "multiple_buffering", where, 1))))
    if compute is None:
        raise SpecError("architecture", "has no compute (MAC) component")
    techs = [_tech_nm(c["attributes"].get("technology", 45)) for c in comps]
    cyc = spec.get("attributes", {}).get("global_cycle_seconds") if isinstance(spec.get("attributes"), dict) else None
    if cyc is None and isinstance(spec.get("subtree"), list) and spec["subtree"] \
            and isinstance(spec["subtree"][0], dict) and isinstance(spec["subtree"][0].get("attributes"), dict):
        cyc = spec["subtree"][0]["attributes"].get("global_cycle_seconds")      # where v0.3 files keep it
    clock = 1e-9 / float(cyc) if cyc else 1.0
    return Architecture(name=name, levels=tuple(levels), compute=compute, clock_ghz=clock,
                        technology_nm=techs[0])


# ----------------------------------------------------------------------------- mapping

def _factors(text, where) -> dict:
    if isinstance(text, dict):
        return {str(k): int(v) for k, v in text.items()}
    out = {}
    for tok in re.split(r"[\s,]+", str(text).strip()):
        if not tok:
            continue
        m = re.match(r"^([A-Za-z_]\w*?)=?(\d+)$", tok)
        if not m:
            raise SpecError(f"{where}.factors", f"cannot read factor {tok!r} (expected like 'C=4' or 'C4')")
        out[m.group(1)] = int(m.group(2))
    return out


def _perm(text, dims, where) -> tuple:
    if isinstance(text, list):
        return tuple(str(x) for x in text)
    text = str(text or "").strip()
    if not text:
        return ()
    # Multi-letter dimension names are matched greedily against the problem's dimensions.
    names = sorted(dims, key=len, reverse=True)
    out, i = [], 0
    while i < len(text):
        if text[i] in " ,":
            i += 1
            continue
        for n in names:
            if text.startswith(n, i):
                out.append(n)
                i += len(n)
                break
        else:
            raise SpecError(f"{where}.permutation", f"unknown dimension at {text[i:]!r}")
    return tuple(out)


def directives(entries, where: str):
    """``(where, entry, target)`` of each directive of a Timeloop list (a mapping's or the
    constraints' targets; ``where`` formats the index); each entry must be a mapping."""
    for i, e in enumerate(entries):
        w = where.format(i)
        if not isinstance(e, dict):
            raise SpecError(w, "must be a mapping")
        yield w, e, e.get("target")


def mapping_from_timeloop(entries, arch: Architecture, work: Workload) -> Mapping:
    if isinstance(entries, dict) and "mapping" in entries:
        entries = entries["mapping"]
    if not isinstance(entries, list):
        raise SpecError("mapping", "must be a list of directives")
    names = [lv.name for lv in arch.levels]
    per = {n: {"temporal": {}, "perm": (), "sx": {}, "sy": {}, "sperm": (), "keep": None, "bypass": set()}
           for n in names}
    for where, e, tgt in directives(entries, "mapping[{}]"):
        if tgt not in per:
            raise SpecError(f"{where}.target", f"unknown level {tgt!r} (levels: {', '.join(names)})")
        typ = e.get("type", "temporal")
        p = per[tgt]
        if typ == "temporal":
            p["temporal"] = _factors(e.get("factors", ""), where)
            p["perm"] = _perm(e.get("permutation", ""), work.dims, where)
        elif typ == "spatial":
            fac = _factors(e.get("factors", ""), where)
            perm = _perm(e.get("permutation", ""), work.dims, where) or tuple(fac)
            perm = tuple(perm) + tuple(d for d in fac if d not in perm)
            split = int(e.get("split", len(perm)))
            for k, d in enumerate(perm):
                (p["sx"] if k < split else p["sy"])[d] = fac.get(d, 1)
            p["sperm"] = perm
        elif typ in ("bypass", "datatype", "dataspace"):
            keep = e.get("keep")
            if keep is not None:
                p["keep"] = set(p["keep"] or set()) | set(keep)
            p["bypass"] |= set(e.get("bypass") or [])
        else:
            raise SpecError(f"{where}.type", f"unknown mapping type {typ!r}")
    snames = [ds.name for ds in work.dataspaces]
    for n, p in per.items():
        for d in list(p["temporal"]) + list(p["sx"]) + list(p["sy"]):
            if d not in work.dims:
                raise MappingError(f"mapping.{n}.factors", f"unknown dimension {d!r}")
        for s in (p["keep"] or set()) | p["bypass"]:
            if s not in snames:
                raise MappingError(f"mapping.{n}.keep", f"unknown data space {s!r}")
    levels = []
    for lv in arch.levels:
        p = per[lv.name]
        if lv.is_dummy:
            keep = frozenset()
        elif p["keep"] is None and not p["bypass"]:
            keep = None
        else:
            allowed = set(snames) if lv.keeps is None else set(lv.keeps)
            base = set(p["keep"]) if p["keep"] is not None else allowed
            keep = frozenset((base | (p["keep"] or set())) - p["bypass"])
        levels.append(LevelMapping(temporal=p["temporal"], permutation=p["perm"], spatial_x=p["sx"],
                                   spatial_y=p["sy"], spatial_permutation=p["sperm"], keep=keep))
    return Mapping(tuple(levels))


# ----------------------------------------------------------------------------- whole inputs

def load_inputs(paths):
    """Read Timeloop-format files; returns (architecture, workload, mapping or None)."""
    merged, origin = merge_files(paths)

    def src(key):
        return origin.get(key, str(paths[-1]))

    for key in ("architecture", "problem"):
        if key not in merged:
            raise SpecError(key, "missing (not in any of the given files)", str(paths[-1]))
    def table(key, parse):
        """The ERT / ART (or its summary) parsed, errors naming the file it came from."""
        name = key if key in merged else f"{key}_summary" if f"{key}_summary" in merged else None
        if name is None:
            return None
        try:
            return parse(merged[name])
        except SpecError as e:
            raise e.in_file(src(name))
    ert, art = table("ERT", parse_ert), table("ART", parse_art)
    try:
        arch = replace(architecture_from_timeloop(merged["architecture"], ert, art), source=src("architecture"))
    except SpecError as e:
        raise e.in_file(src("architecture"))
    try:
        work = problem_from_timeloop(merged["problem"])
    except SpecError as e:
        raise e.in_file(src("problem"))
    ext = merged.get("codesign")
    if isinstance(ext, dict) and ext.get("bits") is not None:
        # our per-data-space bit-widths (Timeloop keeps one datawidth per level)
        try:
            b = ext["bits"]
            work = replace(work, bits={str(k): v for k, v in b.items()} if isinstance(b, dict) else b)
        except SpecError as e:
            raise SpecError(f"codesign.{e.field}", e.message, src("codesign")) from None
    mapping = None
    if merged.get("mapping"):
        try:
            mapping = mapping_from_timeloop(merged["mapping"], arch, work)
        except SpecError as e:
            raise e.in_file(src("mapping"))
    if "architecture_constraints" in merged or "constraints" in merged:
        pass   # constraints are the mapper's business (see issue 3); the model ignores them
    return arch, work, mapping


# ----------------------------------------------------------------------------- export

def _fmt_factors(d: dict, dims) -> str:
    return " ".join(f"{k}={int(d.get(k, 1))}" for k in dims)


def architecture_to_timeloop(arch: Architecture) -> dict:
    local = []
    for lv in arch.levels:
        attrs = {"datawidth": lv.word_bits, "width": lv.width_bits or lv.word_bits,
                 "meshX": lv.mesh_x, "meshY": lv.mesh_y,
                 "technology": f"{arch.technology_nm:g}nm"}
        cls = {"dram": "DRAM", "sram": "SRAM", "regfile": "regfile", "dummy": "dummy_storage"}[lv.kind]
        if lv.kind == "dummy":
            attrs.update(depth=1, width=1, datawidth=1)
        elif lv.size_words is not None:
            attrs["depth"] = max(1, lv.size_words // max(1, (lv.width_bits or lv.word_bits) // lv.word_bits))
        if lv.read_bw:
            attrs["read_bandwidth"] = lv.read_bw
        if lv.write_bw:
            attrs["write_bandwidth"] = lv.write_bw
        if lv.multiple_buffering != 1:
            attrs["multiple_buffering"] = lv.multiple_buffering
        local.append({"name": f"{lv.name}[1..{lv.instances}]", "class": cls, "attributes": attrs})
    c = arch.compute
    local.append({"name": f"{c.name}[1..{c.instances}]", "class": "intmac",
                  "attributes": {"multiplier_width": c.multiplier_bits, "adder_width": c.adder_bits,
                                 "meshX": c.mesh_x, "meshY": c.mesh_y,
                                 "technology": f"{arch.technology_nm:g}nm"}})
    return {"version": "0.4",
            "subtree": [{"name": arch.name, "attributes": {"technology": f"{arch.technology_nm:g}nm",
                                                          "global_cycle_seconds": 1e-9 / arch.clock_ghz},
                         "local": local}]}


def ert_to_timeloop(arch: Architecture) -> dict:
    tables = []
    for lv in arch.levels:
        e = lv.energy
        tables.append({"name": f"{arch.name}.{lv.name}[1..{lv.instances}]",
                       "actions": [{"name": "read", "energy": e.read_pj},
                                   {"name": "write", "energy": e.write_pj},
                                   {"name": "update", "energy": e.update_pj},
                                   {"name": "leak", "energy": e.leak_pj}]})
    c = arch.compute
    tables.append({"name": f"{arch.name}.{c.name}[1..{c.instances}]",
                   "actions": [{"name": "compute", "energy": c.energy_pj}]})
    return {"version": "0.4", "tables": tables}


def mapping_to_timeloop(mapping: Mapping, arch: Architecture, work: Workload) -> list:
    out = []
    snames = [ds.name for ds in work.dataspaces]
    for lv, lm in zip(arch.levels, mapping.levels):
        perm = "".join(lm.permutation) if all(len(d) == 1 for d in work.dims) else list(lm.permutation)
        out.append({"target": lv.name, "type": "temporal",
                    "factors": _fmt_factors(lm.temporal, work.dims), "permutation": perm})
        if any(int(v) > 1 for v in list(lm.spatial_x.values()) + list(lm.spatial_y.values())):
            xs = [d for d in work.dims if int(lm.spatial_x.get(d, 1)) > 1]
            ys = [d for d in work.dims if int(lm.spatial_y.get(d, 1)) > 1]
            rest = [d for d in work.dims if d not in xs and d not in ys]
            order = xs + ys + rest
            fac = {d: int(lm.spatial_x.get(d, 1)) * int(lm.spatial_y.get(d, 1)) for d in work.dims}
            out.append({"target": lv.name, "type": "spatial", "factors": _fmt_factors(fac, order),
                        "permutation": "".join(order) if all(len(d) == 1 for d in work.dims) else order,
                        "split": len(xs)})
        if lm.keep is not None:
            out.append({"target": lv.name, "type": "bypass", "keep": sorted(lm.keep),
                        "bypass": [s for s in snames if s not in lm.keep]})
    return out


def workload_bits_block(arch: Architecture, work: Workload) -> dict | None:
    """``{"bits": {data space: bits}}`` when the workload's bit-widths are not what every level's
    datawidth says (our per-data-space bits; ``load_inputs`` applies the block)."""
    bits = {ds.name: int(work.bits.get(ds.name, 0)) for ds in work.dataspaces if work.bits.get(ds.name)}
    widths = {lv.word_bits for lv in arch.levels if lv.kind != "dummy"}
    if bits and any(b not in widths or len(widths) > 1 for b in bits.values()):
        return {"bits": bits}
    return None


def to_timeloop_yaml(arch: Architecture, work: Workload | None = None, mapping: Mapping | None = None,
                     with_ert: bool = True) -> str:
    """Timeloop v0.4 YAML of an architecture (+ problem, mapping, ERT). A mapping that splits a
    dimension across X and Y of one level is written for ``split_xy(arch)`` (a dummy level takes
    the Y fan-out)."""
    if mapping is not None and needs_split(mapping):
        arch, split = split_xy(arch)
        mapping = split_mapping(mapping, split)
    doc = {"architecture": architecture_to_timeloop(arch)}
    if work is not None:
        doc["problem"] = problem_to_timeloop(work)
        block = workload_bits_block(arch, work)
        if block:
            doc["codesign"] = block
    if mapping is not None and work is not None:
        doc["mapping"] = mapping_to_timeloop(mapping, arch, work)
    if with_ert:
        doc["ERT"] = ert_to_timeloop(arch)
    return yaml.safe_dump(doc, sort_keys=False)
