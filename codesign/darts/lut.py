"""The latency / energy look-up table of the differentiable search.

Every candidate op of every block slot (kernel x expand, at each searched resolution) is mapped
on the chosen accelerator with the analytical model and mapper. The per-op layers are taken from
``codesign.space.layers.genome_layers`` itself (the layers whose names start with the slot's
``s{stage}.b{block}.``), so for any discrete genome

    network cost = fixed(r) + sum over active slots of LUT[r][slot][choice]

exactly, where ``fixed(r)`` is the stem, first block, head and classifier. Every layer is mapped
independently (``accelerators.network``), which is what makes the sum exact. A slot's layers
depend only on its own choice and the resolution (its input channels and spatial size are fixed
by the stage), so the table is well defined.

The table is a plain dict (JSON-serializable) and is cached on disk in the run directory."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerators.network import MappingCache, network_totals
from codesign.space.genome import DEFAULT_SPACE, SearchSpace
from codesign.space.layers import genome_layers

METRICS = ("latency_ms", "energy_uj")


def op_choices(space: SearchSpace = DEFAULT_SPACE) -> list[tuple[int, int]]:
    """The candidate ops of a block slot, (kernel, expand), in a fixed order (kernel-major)."""
    return [(k, e) for k in space.kernels for e in space.expands]


def slot_name(slot: int, space: SearchSpace = DEFAULT_SPACE) -> str:
    return f"s{slot // space.max_depth}.b{slot % space.max_depth}"


def _probe_genome(r: int, slot: int | None, k: int, e: int, space: SearchSpace) -> dict:
    g = space.max_genome()
    g["r"] = r
    if slot is not None:
        g["ks"][slot], g["e"][slot] = k, e
    return g


def op_layers(slot: int, k: int, e: int, r: int, space: SearchSpace = DEFAULT_SPACE) -> list:
    """The accelerator layers of slot ``slot`` running kernel ``k`` and expand ``e`` at input
    resolution ``r`` (derived from ``genome_layers``: every slot active, the others irrelevant)."""
    prefix = slot_name(slot, space) + "."
    return [l for l in genome_layers(_probe_genome(r, slot, k, e, space), space=space)
            if l.name.startswith(prefix)]


def fixed_layers(r: int, space: SearchSpace = DEFAULT_SPACE) -> list:
    """The layers every genome of resolution ``r`` runs whatever its choices (stem, first block,
    head, classifier)."""
    slots = tuple(slot_name(i, space) + "." for i in range(space.slots))
    return [l for l in genome_layers(_probe_genome(r, None, 0, 0, space), space=space)
            if not l.name.startswith(slots)]


def _cost(layers, arch, cache, mapper_budget: int) -> dict:
    if not layers:
        return {"latency_ms": 0.0, "energy_uj": 0.0}
    t = network_totals(layers, arch, "dataflow", budget=mapper_budget, cache=cache)
    return {"latency_ms": 1e3 * t["cycles"] / (arch.clock_ghz * 1e9), "energy_uj": t["energy_pj"] / 1e6}


def lut_key(hw: dict, template_spec: str, resolutions, mapper_budget: int) -> str:
    text = json.dumps({"hw": hw, "template": hashlib.sha256(template_spec.encode()).hexdigest(),
                       "r": list(resolutions), "mapper_budget": mapper_budget}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_lut(arch, resolutions, mapper_budget: int = 1500, cache: MappingCache | None = None,
              space: SearchSpace = DEFAULT_SPACE) -> dict:
    """``{"choices": [[k, e], ...], "resolutions": [...], "ops": {r: {metric: [[slot x choice]]}},
    "fixed": {r: {metric: value}}}`` (JSON keys: r as a string)."""
    cache = MappingCache() if cache is None else cache
    choices = op_choices(space)
    # map every distinct shape of the table in one lockstep call first (same results as one by one)
    everything = [l for r in resolutions for s in range(space.slots) for k, e in choices for l in op_layers(s, k, e, r, space)]
    everything += [l for r in resolutions for l in fixed_layers(r, space)]
    network_totals(everything, arch, "dataflow", budget=mapper_budget, cache=cache)
    out = {"choices": [list(c) for c in choices], "resolutions": [int(r) for r in resolutions], "ops": {}, "fixed": {}}
    for r in resolutions:
        table = {m: [[0.0] * len(choices) for _ in range(space.slots)] for m in METRICS}
        for s in range(space.slots):
            for j, (k, e) in enumerate(choices):
                c = _cost(op_layers(s, k, e, r, space), arch, cache, mapper_budget)
                for m in METRICS:
                    table[m][s][j] = c[m]
        out["ops"][str(r)] = table
        out["fixed"][str(r)] = _cost(fixed_layers(r, space), arch, cache, mapper_budget)
    return out


def load_or_build_lut(path, arch, key: str, resolutions, mapper_budget: int = 1500,
                      cache: MappingCache | None = None, space: SearchSpace = DEFAULT_SPACE) -> dict:
    """The table cached at ``path`` when it was made for ``key`` (hardware, template, resolutions,
    mapper budget), else built and written there."""
    p = Path(path)
    if p.is_file():
        try:
            d = json.loads(p.read_text())
            if d.get("key") == key:
                return d
        except (OSError, json.JSONDecodeError):
            pass
    d = build_lut(arch, resolutions, mapper_budget, cache, space)
    d["key"] = key
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(d) + "\n")
    tmp.replace(p)
    return d


def genome_cost(lut: dict, genome: dict, metric: str = "latency_ms", space: SearchSpace = DEFAULT_SPACE) -> float:
    """A discrete genome's cost from the table: fixed(r) + the chosen op of every active slot."""
    choices = [tuple(c) for c in lut["choices"]]
    r = str(genome["r"])
    total = lut["fixed"][r][metric]
    for _, i in space.active_blocks(genome):
        total += lut["ops"][r][metric][i][choices.index((genome["ks"][i], genome["e"][i]))]
    return float(total)


def lut_arrays(lut: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(ops[r_index, slot, choice], fixed[r_index]) as arrays, in ``lut["resolutions"]`` order."""
    rs = [str(r) for r in lut["resolutions"]]
    return (np.array([lut["ops"][r][metric] for r in rs], float),
            np.array([lut["fixed"][r][metric] for r in rs], float))


@dataclass(frozen=True)
class CostTable:
    """The table of one metric as arrays (what the relaxation needs)."""
    metric: str
    ops: np.ndarray           # (resolutions, slots, choices)
    fixed: np.ndarray         # (resolutions,)
    resolutions: tuple

    @staticmethod
    def of(lut: dict, metric: str) -> "CostTable":
        ops, fixed = lut_arrays(lut, metric)
        return CostTable(metric, ops, fixed, tuple(int(r) for r in lut["resolutions"]))
