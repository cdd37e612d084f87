"""The joint search space: the supernet's network genome x an accelerator family.

A hardware genome is a plain dict (``{"pe_x": 14, "pe_y": 12, "sizes_kib": {"GlobalBuffer":
108, ...}, "bits": 8, "dataflow": "row-stationary", "dram_type": "LPDDR4", "dram_bw": 4}``) and
maps to an architecture through a template (``specs/accelerators/``). Every range is declared in
the space YAML (``specs/spaces/default.yaml``). A joint genome is ``{"net": {...}, "hw": {...}}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError
from accelerators.spec import DATAFLOWS, SPECS_DIR, build_architecture, template_path

from codesign.jsonio import plain
from codesign.space.genome import DEFAULT_SPACE, SearchSpace
from codesign.space.hardware import parameter_values, point_architecture

NUMERIC = ("pe_x", "pe_y", "bits", "dram_bw")
CATEGORICAL = ("dataflow", "dram_type")
CONSTRAINT_KEYS = ("area_mm2", "onchip_kib", "latency_ms", "energy_uj", "min_accuracy")
OBJECTIVES = ("accuracy", "latency", "energy", "edp", "area")


@dataclass(frozen=True)
class HardwareSpace:
    template: str
    params: tuple                 # ((name, values), ...) for pe_x, pe_y, bits, dram_bw, dataflow, dram_type
    sizes: tuple                  # ((level name, values in KiB), ...)
    template_spec: str = field(default="", repr=False)    # the template's YAML text (hash key)

    def values(self, name: str) -> tuple:
        return dict(self.params)[name]

    def sample(self, rng: np.random.Generator) -> dict:
        hw = {name: vals[rng.integers(len(vals))] for name, vals in self.params}
        hw["sizes_kib"] = {lv: vals[rng.integers(len(vals))] for lv, vals in self.sizes}
        return plain(hw)

    def mutate(self, hw: dict, rng: np.random.Generator, rate: float) -> dict:
        """Each gene changes with probability ``rate``: numeric genes step to a neighbouring
        value, categorical genes take another value."""
        out = json.loads(json.dumps(hw))
        for name, vals in self.params:
            if rng.random() < rate:
                out[name] = _step(vals, out[name], rng, numeric=name in NUMERIC)
        for lv, vals in self.sizes:
            if rng.random() < rate:
                out["sizes_kib"][lv] = _step(vals, out["sizes_kib"][lv], rng, numeric=True)
        return plain(out)

    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        out = {name: (a if rng.random() < 0.5 else b)[name] for name, _ in self.params}
        out["sizes_kib"] = {lv: (a if rng.random() < 0.5 else b)["sizes_kib"][lv] for lv, _ in self.sizes}
        return plain(out)

    def validate(self, hw: dict, where: str = "hw") -> dict:
        if not isinstance(hw, dict):
            raise SpecError(where, "must be an object")
        for name, vals in self.params:
            if hw.get(name) not in vals:
                raise SpecError(f"{where}.{name}", f"{hw.get(name)!r} is not one of {list(vals)}")
        for lv, vals in self.sizes:
            if (hw.get("sizes_kib") or {}).get(lv) not in vals:
                raise SpecError(f"{where}.sizes_kib.{lv}", f"not one of {list(vals)}")
        return hw

    def architecture(self, hw: dict):
        return point_architecture(self.template_spec, json.dumps(plain(hw), sort_keys=True))


def _step(vals, cur, rng, numeric: bool):
    if len(vals) == 1:
        return cur
    i = vals.index(cur) if cur in vals else 0
    if numeric:
        j = i + (1 if rng.random() < 0.5 else -1)
        if j < 0 or j >= len(vals):
            j = i - (j - i)
        return vals[j]
    return vals[(i + 1 + rng.integers(len(vals) - 1)) % len(vals)]


@dataclass(frozen=True)
class JointSpace:
    hw: HardwareSpace
    net: SearchSpace = DEFAULT_SPACE
    constraints: tuple = ()       # ((key, limit), ...)
    objectives: tuple = ("accuracy", "latency", "energy")
    name: str = "default"
    reference: tuple = ()         # ((objective, value), ...): hypervolume reference point
    baseline: dict | None = field(default=None, hash=False, compare=False)   # a fixed hw genome

    def reference_point(self, objectives) -> "np.ndarray":
        """The hypervolume reference point in minimization form (accuracy negated)."""
        ref = dict(self.reference)
        missing = [o for o in objectives if o not in ref]
        if missing:
            raise SpecError("reference", f"no hypervolume reference for {', '.join(missing)}")
        return np.array([-ref[o] if o == "accuracy" else ref[o] for o in objectives], float)

    def sample(self, rng) -> dict:
        return {"net": self.net.canonical(self.net.sample(rng)), "hw": self.hw.sample(rng)}

    def mutate(self, g: dict, rng, rate: float = 0.1, net_rate: float | None = None) -> dict:
        """OFA's per-slot mutation for the network, neighbour steps for the hardware."""
        nr = rate if net_rate is None else net_rate
        net = json.loads(json.dumps(g["net"]))
        for key, opts in (("ks", self.net.kernels), ("e", self.net.expands), ("d", self.net.depths)):
            for i in range(len(net[key])):
                if rng.random() < nr:
                    net[key][i] = int(rng.choice(opts))
        if rng.random() < nr:
            net["r"] = int(rng.choice(self.net.resolutions))
        return {"net": self.net.canonical(net), "hw": self.hw.mutate(g["hw"], rng, rate)}

    def crossover(self, a: dict, b: dict, rng) -> dict:
        net = {key: [int((a if rng.random() < 0.5 else b)["net"][key][i]) for i in range(len(a["net"][key]))]
               for key in ("ks", "e", "d")}
        net["r"] = (a if rng.random() < 0.5 else b)["net"]["r"]
        return {"net": self.net.canonical(net), "hw": self.hw.crossover(a["hw"], b["hw"], rng)}

    def validate(self, g: dict, where: str = "genome") -> dict:
        return {"net": self.net.validate(g.get("net"), f"{where}.net"), "hw": self.hw.validate(g.get("hw"), f"{where}.hw")}


DEFAULT_REFERENCE = {"accuracy": 0.0, "latency": 100.0, "energy": 10_000.0, "edp": 1e6, "area": 100.0}
SUPERNETS = ("default",)        # the supernets a space's ``network: {supernet: ...}`` may name
SPACE_KEYS = ("network", "hardware", "constraints", "objectives", "reference", "baseline", "description")


def read_space(path=None) -> tuple[dict, str]:
    """(the space YAML as a dict, its name): what a run directory stores."""
    from accelerators.timeloop import load_yaml
    p = Path(path) if path else SPECS_DIR / "spaces" / "default.yaml"
    if not p.is_file():
        raise SpecError("space", "no such file", str(p))
    d = load_yaml(p)
    try:
        space_from_dict(d, p.stem)
    except SpecError as e:
        raise e.in_file(str(p))
    return d, p.stem


def load_space(path=None) -> JointSpace:
    """A joint space from YAML (default ``specs/spaces/default.yaml``); errors name file and field."""
    d, name = read_space(path)
    return space_from_dict(d, name)


def space_from_dict(d, name="space") -> JointSpace:
    if not isinstance(d, dict):
        raise SpecError("space", "must be a mapping with 'hardware'")
    for k in d:
        if k not in SPACE_KEYS:
            raise SpecError(k, f"unknown key (one of {', '.join(SPACE_KEYS)})")
    net = d.get("network")
    if net is not None:
        if not isinstance(net, dict):
            raise SpecError("network", "must be a mapping {supernet: default}")
        for k in net:
            if k != "supernet":
                raise SpecError(f"network.{k}", "unknown key (supernet)")
        if net.get("supernet", "default") not in SUPERNETS:
            raise SpecError("network.supernet", f"no such supernet {net.get('supernet')!r}"[:100] +
                            f" (one of {', '.join(SUPERNETS)})")
    desc = d.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 10_000):
        raise SpecError("description", "must be a line of text (at most 10,000 characters)")
    for k in ("constraints", "reference"):
        if d.get(k) is not None and not isinstance(d[k], dict):
            raise SpecError(k, "must be a mapping")
    if d.get("objectives") is not None and not isinstance(d["objectives"], list):
        raise SpecError("objectives", "must be a list")
    hw = d.get("hardware")
    if not isinstance(hw, dict) or "template" not in hw:
        raise SpecError("hardware.template", "missing")
    tpath = template_path(str(hw["template"]))
    from accelerators.limits import load_yaml_text, read_text
    text = read_text(tpath, "hardware.template")
    arch0 = build_architecture(load_yaml_text(text, str(tpath)))
    params = []
    for key in NUMERIC + CATEGORICAL:
        if key not in hw:
            raise SpecError(f"hardware.{key}", "missing")
        vals = parameter_values(hw[key], f"hardware.{key}")
        if key == "dataflow":
            for v in vals:
                if v not in DATAFLOWS:
                    raise SpecError("hardware.dataflow", f"unknown dataflow {v!r} (one of {', '.join(DATAFLOWS)})")
        if key in ("pe_x", "pe_y", "bits") and not all(isinstance(v, int) and v > 0 for v in vals):
            raise SpecError(f"hardware.{key}", "values must be positive integers")
        if key == "dram_bw" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                                        for v in vals):
            raise SpecError("hardware.dram_bw", f"values must be positive numbers (words per cycle), got {vals}")
        params.append((key, vals))
    sizes = []
    for lv, spec in (hw.get("sizes_kib") or {}).items():
        if lv not in [l.name for l in arch0.levels]:
            raise SpecError(f"hardware.sizes_kib.{lv}", f"no such level in template {tpath.stem}")
        vals = parameter_values(spec, f"hardware.sizes_kib.{lv}")
        if not all(isinstance(v, (int, float)) and v > 0 for v in vals):
            raise SpecError(f"hardware.sizes_kib.{lv}", "sizes must be positive")
        sizes.append((lv, vals))
    order = [l.name for l in arch0.levels]
    sizes.sort(key=lambda item: order.index(item[0]))     # template order, whatever the YAML order
    for k in hw:
        if k not in NUMERIC + CATEGORICAL + ("template", "sizes_kib"):
            raise SpecError(f"hardware.{k}", "unknown parameter")
    cons = d.get("constraints") or {}
    for k, v in cons.items():
        if k not in CONSTRAINT_KEYS:
            raise SpecError(f"constraints.{k}", f"unknown constraint (one of {', '.join(CONSTRAINT_KEYS)})")
        if v is not None and (not isinstance(v, (int, float)) or v <= 0):
            raise SpecError(f"constraints.{k}", f"must be a positive number or null, got {v!r}")
    objs = tuple(d.get("objectives") or ("accuracy", "latency", "energy"))
    for o in objs:
        if o not in OBJECTIVES:
            raise SpecError("objectives", f"unknown objective {o!r} (one of {', '.join(OBJECTIVES)})")
    ref = dict(DEFAULT_REFERENCE)
    for k, v in (d.get("reference") or {}).items():
        if k not in OBJECTIVES:
            raise SpecError(f"reference.{k}", f"unknown objective (one of {', '.join(OBJECTIVES)})")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
            raise SpecError(f"reference.{k}", f"must be a number, got {v!r}")
        if k != "accuracy" and v <= 0:
            raise SpecError(f"reference.{k}", f"must be positive (a design must come in under it to count "
                            f"in the hypervolume), got {v!r}")
        ref[k] = float(v)
    hws = HardwareSpace(tpath.stem, tuple(params), tuple(sizes), text)
    base = d.get("baseline")
    if base is not None:
        base = hws.validate(plain(base), "baseline")
    return JointSpace(hws, constraints=tuple((k, v) for k, v in cons.items() if v is not None), objectives=objs,
                      name=name, reference=tuple(sorted(ref.items())), baseline=base)
