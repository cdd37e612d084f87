"""Data for the learned latency / energy predictor (:mod:`codesign.predictors.cost`): every layer
of sampled joint genomes mapped on the accelerator model (what the Evaluator adds up).

Data (``cost_dataset``): one JSON line per sampled joint genome, with the per-layer cycles and
energy and the network totals; candidate ``i`` is drawn from ``default_rng([seed, i])`` so a
rerun continues where a killed one stopped and yields the same file as an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from accelerators.errors import MappingError, SpecError
from codesign.jsonio import read_jsonl

FORMAT = 1                     # dataset line format
SHAPE_KEYS = ("N", "K", "C", "P", "Q", "R", "S", "G", "stride")


def layer_shape(work) -> dict:
    """A conv / depthwise / FC workload as ``{N, K, C, P, Q, R, S, G, stride}`` (G = 1 unless grouped)."""
    b = work.bounds
    stride = 1
    for ds in work.dataspaces:
        if ds.name == "Inputs":
            for axis in ds.projection:
                for c, d in axis:
                    if d == "P":
                        stride = int(c)
    out = {k: int(b.get(k, 1)) for k in SHAPE_KEYS[:-1]}
    out["stride"] = stride
    return out


def candidate(space, seed: int, i: int) -> dict:
    """The ``i``-th joint genome of a dataset with ``seed`` (independent of every other index)."""
    return space.sample(np.random.default_rng([int(seed), int(i)]))


def evaluate_cost(space, genome: dict, mapper_budget: int = 1500, cache=None) -> dict:
    """Every layer of the genome's subnet mapped on its architecture (what the Evaluator adds up):
    per-layer shape, cycles, energy; network totals."""
    from accelerators.network import MappingCache
    from codesign.space.hardware import latency_ms
    from codesign.space.layers import genome_layers
    cache = cache if cache is not None else MappingCache()
    arch = space.hw.architecture(genome["hw"])
    aid = cache.arch_id(arch)
    layers = []
    for layer in genome_layers(genome["net"]):
        ev = cache.get_or_map(layer.work, arch, "dataflow", arch_id=aid, objective="edp", budget=mapper_budget,
                              seed=0)[0].evaluation
        layers.append({"name": layer.name, "shape": layer_shape(layer.work), "macs": int(ev.computes),
                       "cycles": int(ev.cycles), "compute_cycles": int(ev.compute_cycles),
                       "energy_pj": float(ev.energy_pj), "mac_energy_pj": float(ev.mac_energy_pj),
                       "level_energy_pj": {lv.name: float(lv.energy_pj) for lv in ev.levels}})
    cycles = sum(l["cycles"] for l in layers)
    energy = sum(l["energy_pj"] for l in layers)
    return {"clock_ghz": float(arch.clock_ghz), "cycles": int(cycles), "energy_pj": float(energy),
            "latency_ms": latency_ms(cycles, arch.clock_ghz), "energy_uj": energy / 1e6,
            "macs": int(sum(l["macs"] for l in layers)), "layers": layers}


def _check_row(row) -> None:
    """A row of the kind ``cost_dataset`` writes; a mapped one (``status: ok``) with finite
    positive totals and, per layer, its shape and finite figures (what the predictor trains on)."""
    if not isinstance(row, dict) or "genome" not in row or "i" not in row:
        raise ValueError("not a cost-dataset row")
    if row.get("status") != "ok":
        return

    def number(v, field, positive=True):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
                (v <= 0 if positive else v < 0):
            raise ValueError(f"{field}: must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}"[:160])
    for k in ("clock_ghz", "cycles", "energy_pj"):
        number(row.get(k), k)
    layers = row.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError("layers: must be a non-empty list of mapped layers")
    for j, lay in enumerate(layers):
        where = f"layers[{j}]"
        if not isinstance(lay, dict) or not isinstance(lay.get("shape"), dict):
            raise ValueError(f"{where}.shape: missing")
        for k in SHAPE_KEYS:
            v = lay["shape"].get(k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{where}.shape.{k}: must be a positive integer, got {v!r}"[:160])
        for k in ("cycles", "compute_cycles", "energy_pj"):
            number(lay.get(k), f"{where}.{k}", positive=False)
        le = lay.get("level_energy_pj")
        if not isinstance(le, dict) or not le:
            raise ValueError(f"{where}.level_energy_pj: must map levels to energies")
        for name, v in le.items():
            number(v, f"{where}.level_energy_pj.{name}", positive=False)


def read_dataset(path, repair: bool = False) -> list[dict]:
    """The rows of a cost dataset. A last line cut short by a killed writer is dropped (and, with
    ``repair``, cut from the file); any other unreadable line is a SpecError naming the file."""
    return read_jsonl(path, check=_check_row, what="a cost-dataset row", cut_last="repair" if repair else "drop")


def cost_dataset(space, n: int, out_path, seed: int = 0, mapper_budget: int = 1500,
                 progress: bool = True) -> list[dict]:
    """Map ``n`` random joint genomes of ``space`` and append one JSON line each to ``out_path``
    (resumable: rows already there are checked and kept, a cut-off last line is redone)."""
    from accelerators.network import MappingCache
    if not isinstance(n, int) or n < 0:
        raise SpecError("--genomes", f"must be a non-negative integer, got {n!r}")
    if not isinstance(mapper_budget, int) or mapper_budget < 1:
        raise SpecError("--mapper-budget", f"must be a positive integer, got {mapper_budget!r}")
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = read_dataset(p, repair=True) if p.exists() else []
    for k, r in enumerate(rows):
        want = {"i": k, "seed": seed, "mapper_budget": mapper_budget, "genome": candidate(space, seed, k)}
        got = {key: r.get(key) for key in want}
        if got != want:
            bad = next(key for key in want if got[key] != want[key])
            raise SpecError(f"line {k + 1}.{bad}", f"{got[bad]!r} differs from this run's {want[bad]!r} "
                            "(written with another space, seed or mapper budget; use another --out)", str(p))
    todo = range(len(rows), n)
    it = todo
    if progress and len(todo):
        from tqdm import tqdm
        it = tqdm(todo, desc="cost data", unit="cand", initial=len(rows), total=n)
    cache = MappingCache()
    with open(p, "a") as f:
        for i in it:
            g = candidate(space, seed, i)
            row = {"format": FORMAT, "i": i, "seed": seed, "space": space.name, "mapper_budget": mapper_budget,
                   "genome": g}
            try:
                row.update(status="ok", **evaluate_cost(space, g, mapper_budget, cache))
            except (MappingError, SpecError) as e:
                row.update(status="failed", error=e.one_line())
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
            rows.append(row)
            if len(cache.entries) > 200_000:          # bound memory on long runs
                cache = MappingCache()
    return rows[:n]
