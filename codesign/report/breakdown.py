"""The per-layer breakdown of a design (latency and energy per storage level and MACs of every
layer) as JSON-ready data: what the report's detail panel draws and what a search's worker
processes send with each candidate (``codesign.search.problem.evaluate_candidate_detailed``).
Imports nothing of the run store or the search, so both sides can use it."""
from __future__ import annotations

import json
import math
import zlib

from codesign.jsonio import plain_value


def map_network(space, genome: dict, mapper_budget: int, cache=None):
    """``(architecture, layers, NetworkResult)`` of a joint genome: every layer of its subnet
    mapped on its accelerator as a search maps it (``mapper_budget``, the architecture's
    dataflow, seed 0; deterministic; ``cache`` a ``MappingCache``, default a fresh one)."""
    from accelerators.network import MappingCache, evaluate_network

    from codesign.space.layers import genome_layers
    arch = space.hw.architecture(genome["hw"])
    layers = genome_layers(genome["net"])
    nr = evaluate_network(layers, arch, "dataflow", budget=int(mapper_budget),
                          cache=cache if cache is not None else MappingCache())
    return arch, layers, nr


def pack(breakdown: dict) -> bytes:
    """A breakdown as zlib-compressed JSON (about 2 KB): what a worker sends with its result."""
    return zlib.compress(json.dumps(breakdown).encode())


def unpack(blob: bytes) -> dict:
    return json.loads(zlib.decompress(blob))


def clean(x):
    """Plain JSON data: NaN / inf as None, numpy scalars as Python ones."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    x = plain_value(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def layer_breakdown(arch, nr) -> dict:
    """JSON-ready per-layer latency (us) and energy (uJ) per storage level and MACs, plus the energy
    per level of the whole network."""
    levels = [lv.name for lv in arch.levels]
    us_per_cycle = 1.0 / (arch.clock_ghz * 1e3)
    parts = {lv: [float(r.get(f"energy_{lv}_pj", 0.0)) / 1e6 for r in nr.rows] for lv in levels}
    parts["MAC"] = [float(r["mac_energy_pj"]) / 1e6 for r in nr.rows]
    per_level = {lv: float(v) / 1e6 for lv, v in nr.totals["energy_per_level_pj"].items()}
    per_level["MAC"] = float(nr.totals["mac_energy_pj"]) / 1e6
    return clean({"layers": [r["layer"] for r in nr.rows], "latency_us": [r["cycles"] * us_per_cycle for r in nr.rows],
                   "energy_uj": parts, "level_energy_uj": per_level, "clock_ghz": arch.clock_ghz,
                   "total_energy_uj": float(nr.totals["energy_pj"]) / 1e6,
                   "total_latency_ms": float(nr.totals["cycles"]) * us_per_cycle / 1e3})
