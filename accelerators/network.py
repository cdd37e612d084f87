"""Whole networks: layer lists from Timeloop problem files, our YAML or a PyTorch module, and
their evaluation on an architecture with the mapper, each distinct layer shape mapped once."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .arch import Architecture
from .constraints import FREE, Constraints, dataflow_constraints
from .errors import MappingError, SpecError
from .mapper import MapResult, map_layer, map_layers
from .workload import Workload, from_timeloop


@dataclass(frozen=True)
class Layer:
    name: str
    work: Workload
    repeat: int = 1           # a multiplier: the layer counts this many times (evaluate_network)


# ----------------------------------------------------------------------------- Timeloop layer files

_CNN_BASE = {
    "shape": {"name": "CNN_Layer", "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
              "coefficients": [{"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
              "data_spaces": [
                  {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
                  {"name": "Inputs", "projection": [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                                    [["S", "Hdilation"], ["Q", "Hstride"]]]},
                  {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]], "read_write": True}]}}
_DEPTHWISE_BASE = {
    "shape": {"name": "Depthwise_Layer", "dimensions": ["G", "R", "S", "N", "P", "Q"],
              "coefficients": [{"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
              "data_spaces": [
                  {"name": "Weights", "projection": [[["G"]], [["R"]], [["S"]]]},
                  {"name": "Inputs", "projection": [[["N"]], [["G"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                                    [["S", "Hdilation"], ["Q", "Hstride"]]]},
                  {"name": "Outputs", "projection": [[["N"]], [["G"]], [["Q"]], [["P"]]], "read_write": True}]}}


def _canonical_instance(inst: dict) -> dict:
    """Accept the spellings found in public layer files (HStride for Hstride, ...)."""
    alias = {"hstride": "Hstride", "wstride": "Wstride", "hdilation": "Hdilation", "wdilation": "Wdilation"}
    return {alias.get(str(k).lower(), k): v for k, v in inst.items()}


def load_timeloop_layer(path) -> Workload:
    """One Timeloop problem file. Files written against a shared ``problem_base.yaml`` (the
    timeloop-accelergy-exercises layer_shapes) get the standard CNN / depthwise base when that
    base file is not beside them."""
    from .timeloop import load_yaml
    from .limits import read_text
    p = Path(path)
    text = read_text(p, "workload")
    if "problem_base" in text and "<<<" in text:
        m = re.search(r"instance:\s*(\{.*?\})", text, re.S)
        if not m:
            raise SpecError("problem.instance", "not found", str(p))
        from .limits import load_yaml_text
        inst = load_yaml_text(m.group(1), str(p))
        if not isinstance(inst, dict):
            raise SpecError("problem.instance", "must be a mapping", str(p))
        inst = _canonical_instance(inst)
        base = _DEPTHWISE_BASE if "G" in inst else _CNN_BASE
        problem = {"shape": base["shape"], "instance": inst}
    else:
        data = load_yaml(p)
        problem = data.get("problem", data) if isinstance(data, dict) else data
        if isinstance(problem, dict) and isinstance(problem.get("instance"), dict):
            problem = dict(problem, instance=_canonical_instance(problem["instance"]))
    try:
        w = from_timeloop(problem)
    except SpecError as e:
        raise e.in_file(str(p))
    return Workload(p.stem, w.dims, w.bounds, w.dataspaces, w.bits)


def load_layers(path, expand: bool = True) -> list[Layer]:
    """Layers from a directory of Timeloop problem files (sorted by name), a Timeloop problem
    file, or our YAML (``layers: [{type: conv2d, name: ..., K: ..., ...}, ...]``). A layer's
    ``repeat: n`` gives n layers ``name.0`` ... (``expand``) or one Layer with ``repeat=n``
    (``expand=False``: memory does not grow with n; ``evaluate_network`` weighs it n times)."""
    from .limits import MAX, check_int, read_text
    from .spec import build_workload
    from .timeloop import load_yaml
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml"))
        if not files:
            raise SpecError("workload", "directory holds no .yaml layer files", str(p))
        check_int(len(files), "workload (layer files)", limit="layers", file=str(p))
        return [Layer(f"{p.name}/{f.stem}", load_timeloop_layer(f)) for f in files]
    if not p.is_file():
        raise SpecError("workload", "no such file or directory", str(p))
    text = read_text(p, "workload")
    if "problem" in text and ("instance" in text):
        return [Layer(p.stem, load_timeloop_layer(p))]
    data = load_yaml(p)
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise SpecError("layers", "missing: expected 'layers: [...]' or a Timeloop problem", str(p))
    if not data["layers"]:
        raise SpecError("layers", "empty: a network needs at least one layer", str(p))
    for k in data:
        if k not in ("layers", "name", "description"):
            raise SpecError(str(k)[:60], "unknown key (layers, name, description)", str(p))
    check_int(len(data["layers"]), "layers", limit="layers", file=str(p))
    out, total = [], 0
    for i, spec in enumerate(data["layers"]):
        try:
            w = build_workload(spec, where=f"layers[{i}]")
            repeat = check_int(spec.get("repeat", 1) if isinstance(spec, dict) else 1, f"layers[{i}].repeat",
                               limit="repeat")
        except SpecError as e:
            raise e.in_file(str(p))
        total += repeat
        if expand:
            if total > MAX["repeat"]:           # expanded: at most as many layers as one repeat may give
                check_int(total, "layers (with their repeats)", limit="repeat", file=str(p))
            out.extend(Layer(w.name if repeat == 1 else f"{w.name}.{k}", w) for k in range(repeat))
        else:
            out.append(Layer(w.name, w, repeat))
    return out


# ----------------------------------------------------------------------------- evaluation

class MappingCache:
    """Best mappings keyed by (layer shape, architecture, constraints, mapper settings). An
    architecture is hashed once per network (``arch_id``), not once per layer."""

    def __init__(self):
        self.entries: dict = {}
        self.hits = 0
        self.misses = 0
        self._arch_ids: dict = {}

    def arch_id(self, arch: Architecture) -> int:
        return self._arch_ids.setdefault(arch, len(self._arch_ids))

    def get_or_map(self, work: Workload, arch: Architecture, constraints: Constraints | str | None = "dataflow",
                   arch_id: int | None = None, **kw) -> tuple[MapResult, bool]:
        """``constraints``: a Constraints, None (free) or 'dataflow' (the architecture's own,
        built only on a miss)."""
        aid = self.arch_id(arch) if arch_id is None else arch_id
        key = (work.key(), aid, constraints, tuple(sorted(kw.items())))
        hit = self.entries.get(key)
        if hit is not None:
            self.hits += 1
            return hit, True
        self.misses += 1
        cons = (dataflow_constraints(arch, work) if constraints == "dataflow"
                else FREE if constraints is None else constraints)
        res = map_layer(arch, work, cons, **kw)
        self.entries[key] = res
        return res, False

    def get_or_map_many(self, works, arch: Architecture, constraints: Constraints | str | None = "dataflow",
                        arch_id: int | None = None, on_mapped=None, **kw) -> list[tuple[MapResult, bool]]:
        """:meth:`get_or_map` for many layers on one architecture: the misses (each distinct shape
        once) are mapped together in lockstep (``mapper.map_layers``: the same mappings as one
        by one, in far fewer model calls). A shape without a valid mapping raises its
        ``MappingError`` after the others' results are cached. ``on_mapped(n_misses)`` is called once with the number
        of shapes to map, then ``on_mapped(None)`` as each of them is done (progress)."""
        aid = self.arch_id(arch) if arch_id is None else arch_id
        kw_key = tuple(sorted(kw.items()))
        keys = [(w.key(), aid, constraints, kw_key) for w in works]
        todo = {}
        for k, w in zip(keys, works):
            if k not in self.entries and k not in todo:
                todo[k] = w
        if todo:
            ws = list(todo.values())
            cons = [dataflow_constraints(arch, w) if constraints == "dataflow"
                    else FREE if constraints is None else constraints for w in ws]
            opts = dict(kw)
            seed = opts.pop("seed", 0)
            if on_mapped is not None:
                on_mapped(len(ws))
                opts["on_done"] = lambda i: on_mapped(None)
            failed = None
            for k, res in zip(todo, map_layers(arch, ws, cons, seeds=[seed] * len(ws),
                                               return_errors=True, **opts)):
                if isinstance(res, MappingError):
                    failed = failed or res
                else:
                    self.entries[k] = res
            if failed is not None:      # the other shapes' mappings stay cached
                raise failed
        out, mapped = [], set()
        for k in keys:              # a shape asked for twice in one call is mapped once
            if k in todo and k not in mapped:
                mapped.add(k)
                self.misses += 1
                out.append((self.entries[k], False))
            else:
                self.hits += 1
                out.append((self.entries[k], True))
        return out


_DEFAULT_CACHE = MappingCache()


@dataclass
class NetworkResult:
    arch: Architecture
    rows: list = field(default_factory=list)        # one dict per layer
    totals: dict = field(default_factory=dict)

    @property
    def table(self):
        import pandas as pd
        return pd.DataFrame([{k: v for k, v in r.items() if k != "mapping"} for r in self.rows])

    def to_json(self) -> str:
        return json.dumps({"architecture": self.arch.name, "totals": self.totals, "layers": self.rows}, indent=1)


def evaluate_network(layers, arch: Architecture, constraints: Constraints | str | None = "dataflow", *,
                     objective="edp", budget: int = 20_000, seed: int = 0, cache: MappingCache | None = None,
                     progress: bool = False) -> NetworkResult:
    """Map every layer (identical shapes once) and add up energy, latency, EDP; area is the
    architecture's. ``constraints='dataflow'`` applies the architecture's dataflow."""
    from .timeloop import mapping_to_timeloop
    cache = _DEFAULT_CACHE if cache is None else cache
    layers = list(layers)
    out = NetworkResult(arch)
    per_level = {lv.name: 0.0 for lv in arch.levels}
    aid = cache.arch_id(arch)
    bar = None

    def tick(n):                    # a bar over the distinct shapes mapped, moving as each is done
        nonlocal bar
        if n is not None:
            from tqdm import tqdm
            bar = tqdm(total=n, desc=f"mapping on {arch.name}", unit="shape")
        else:
            bar.update(1)
    # every miss (each distinct shape once) mapped in lockstep: the mappings of one by one
    found = cache.get_or_map_many([layer.work for layer in layers], arch, constraints, arch_id=aid,
                                  on_mapped=tick if progress else None, objective=objective, budget=budget,
                                  seed=seed)
    if bar is not None:
        bar.close()
    for layer, (res, hit) in zip(layers, found):
        ev = res.evaluation
        n = layer.repeat          # a repeated layer: one row, its values n times
        row = {"layer": layer.name if n == 1 else f"{layer.name} x{n}", "shape": " ".join(f"{d}={layer.work.bounds[d]}" for d in layer.work.dims),
               "macs": ev.computes * n, "cycles": ev.cycles * n, "utilization": ev.utilization,
               "energy_pj": ev.energy_pj * n, "edp_pj_cycles": ev.edp * n * n,
               "mac_energy_pj": ev.mac_energy_pj * n}
        if n != 1:
            row["repeat"] = n
        for lv in ev.levels:
            row[f"energy_{lv.name}_pj"] = lv.energy_pj * n
            per_level[lv.name] += lv.energy_pj * n
        row["cached"] = hit
        row["mapping"] = mapping_to_timeloop(res.mapping, arch, layer.work)
        out.rows.append(row)
    energy = sum(r["energy_pj"] for r in out.rows)
    cycles = sum(r["cycles"] for r in out.rows)
    macs = sum(r["macs"] for r in out.rows)
    out.totals = {"layers": sum(l.repeat for l in layers), "distinct_shapes": len({l.work.key() for l in layers}),
                  "macs": macs, "energy_pj": energy, "cycles": cycles,
                  "latency_s": cycles / (arch.clock_ghz * 1e9), "edp_pj_cycles": energy * cycles,
                  "utilization": macs / (cycles * arch.compute.instances) if cycles else 0.0,
                  "area_um2": arch.area_um2(), "energy_per_level_pj": per_level,
                  "mac_energy_pj": sum(r["mac_energy_pj"] for r in out.rows)}
    return out


def network_totals(layers, arch: Architecture, constraints: Constraints | str | None = "dataflow", *,
                   objective="edp", budget: int = 20_000, seed: int = 0, cache: MappingCache | None = None) -> dict:
    """The totals of ``evaluate_network`` only (energy_pj, cycles, macs, latency_s, utilization),
    without the per-layer table: the co-search's fast path on a warm cache."""
    cache = _DEFAULT_CACHE if cache is None else cache
    aid = cache.arch_id(arch)
    energy = cycles = macs = 0
    for res, _ in cache.get_or_map_many([layer.work for layer in layers], arch, constraints, arch_id=aid,
                                        objective=objective, budget=budget, seed=seed):
        ev = res.evaluation
        energy += ev.energy_pj
        cycles += ev.cycles
        macs += ev.computes
    return {"layers": len(layers), "macs": macs, "energy_pj": energy, "cycles": cycles,
            "latency_s": cycles / (arch.clock_ghz * 1e9), "edp_pj_cycles": energy * cycles,
            "utilization": macs / (cycles * arch.compute.instances) if cycles else 0.0}


FIGURE_WIDTH_IN = 11.0          # network_figure: at most 1,320 pixels wide at 120 dpi
FIGURE_MAX_HEIGHT_IN = 24.0
FIGURE_DPI = 120


def network_figure(result: NetworkResult):
    """Per-layer energy split by level (stacked horizontal bars) beside per-layer latency, one row
    per layer from the first (top) to the last: a fixed width however many layers, fonts of at
    least 7 points. Latency in microseconds at the architecture's clock (the label names it);
    in cycles where the architecture has no clock. Returns the matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result.rows
    n = max(1, len(rows))
    names = [r["layer"].split("/")[-1] for r in rows]
    levels = [lv.name for lv in result.arch.levels]
    row_in = min(0.22, (FIGURE_MAX_HEIGHT_IN - 1.8) / n)          # height per layer
    font = max(7.0, min(9.0, row_in * 72 * 0.8))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH_IN, 1.8 + row_in * n), sharey=True,
                                   gridspec_kw={"width_ratios": [3, 2]})
    y = list(range(len(rows)))
    left = [0.0] * len(rows)
    colors = plt.get_cmap("tab10")
    for k, name in enumerate(levels + [result.arch.compute.name]):
        vals = [(r["mac_energy_pj"] if k == len(levels) else r.get(f"energy_{name}_pj", 0.0)) / 1e6 for r in rows]
        if not any(vals):
            continue
        ax1.barh(y, vals, left=left, label=name, color=colors(k % 10), height=0.8)
        left = [a + v for a, v in zip(left, vals)]
    ax1.set_xlabel("energy (uJ)", fontsize=font + 1)
    clock = getattr(result.arch, "clock_ghz", None)
    if clock:
        lat = [r["cycles"] / (clock * 1e3) for r in rows]
        ax2.set_xlabel(f"latency (us at {clock:g} GHz)", fontsize=font + 1)
        total = f"{result.totals['cycles'] / (clock * 1e3):,.1f} us"
    else:
        lat = [r["cycles"] for r in rows]
        ax2.set_xlabel("latency (cycles; no clock given)", fontsize=font + 1)
        total = f"{result.totals['cycles']:,} cycles"
    ax2.barh(y, lat, color="tab:gray", height=0.8)
    ax1.set_yticks(y)
    ax1.set_yticklabels(names, fontsize=font)
    ax1.set_ylim(len(rows) - 0.5, -0.5)                      # first layer on top
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=font)
        ax.grid(axis="x", alpha=0.3)
    ax1.legend(fontsize=font, loc="lower right")
    fig.suptitle(f"{result.arch.name}: {len(rows)} layers, energy {result.totals['energy_pj'] / 1e6:,.1f} uJ, "
                 f"latency {total}", fontsize=font + 2)
    fig.tight_layout()
    return fig


def plot_network(result: NetworkResult, path) -> None:
    """Save :func:`network_figure` to ``path`` (any format matplotlib writes)."""
    import matplotlib.pyplot as plt
    fig = network_figure(result)
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
