"""A design-space sweep run (the sweep file: ``codesign.space.sweep``): every (network, hardware
point) of the resolved sweep mapped and evaluated with the accelerator model, resumable.

A run directory holds ``config.json`` (the sweep resolved: the file's content, the template text,
every network's layers, the point list), ``store.sqlite`` (one row per evaluated point, committed
as it arrives; :class:`codesign.rundir.store.RunStore`), and at the end ``results.csv`` (one row per
point: id, network, ``hw_*`` parameters, latency_ms, energy_uj, edp_uj_ms, area_mm2, onchip_kib,
macs, utilization, status, seconds) and ``layers.csv`` (per layer of every evaluated point).
Running again on the same directory evaluates only the points not in the store; a point without a
valid mapping is stored as ``failed`` with its one-line error, never dropped."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from accelerators.errors import MappingError, SpecError
from accelerators.network import MappingCache, evaluate_network

from codesign.rundir.base import CONFIG, create_or_check, read_config_json
from codesign.rundir.store import genome_key, open_run
from codesign.search.executors import Executor, worker_name
from codesign.space.hardware import mapped_metrics, point_architecture
from codesign.space.sweep import layer_from_json

METRIC_COLUMNS = ("latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib", "macs", "utilization")


# ----------------------------------------------------------------------------- one point

def network_metrics(layers, arch, mapper: dict, cache: MappingCache | None = None) -> dict:
    """Latency, energy, EDP, area, on-chip memory, MACs and utilization of ``layers`` on ``arch``
    (every distinct layer shape mapped; ``codesign.space.hardware.mapped_metrics``),
    plus the per-layer rows under ``layers``."""
    res = evaluate_network(layers, arch, "dataflow", objective=mapper["objective"], budget=mapper["budget"],
                           seed=mapper["seed"], cache=cache)
    m = mapped_metrics(arch, res.totals)
    m["layers"] = [{"layer": r["layer"], "macs": int(r["macs"]), "cycles": int(r["cycles"]),
                    "energy_uj": float(r["energy_pj"]) / 1e6, "utilization": float(r["utilization"])}
                   for r in res.rows]
    return m


def task_json(config: dict) -> str:
    """What a worker needs to evaluate any point of a sweep (not the point list)."""
    return json.dumps({k: config[k] for k in ("template_text", "networks", "mapper")}, sort_keys=True)


_WORKER: dict = {}


def evaluate_point(task: str, network: str, hw: dict) -> dict:
    """Picklable task: {"metrics" or None, "status", "error", "seconds", "worker"} of one
    (network, hardware point). Each process reads the task once and keeps its mapping cache."""
    st = _WORKER.get(task)
    if st is None:
        _WORKER.clear()
        cfg = json.loads(task)
        st = _WORKER[task] = {"cfg": cfg, "cache": MappingCache(),
                              "layers": {n: [layer_from_json(l) for l in v["layers"]] for n, v in cfg["networks"].items()}}
    t = time.perf_counter()
    try:
        arch = point_architecture(st["cfg"]["template_text"], json.dumps(hw, sort_keys=True))
        metrics, status, error = network_metrics(st["layers"][network], arch, st["cfg"]["mapper"], st["cache"]), "ok", None
    except (MappingError, SpecError) as e:
        metrics, status, error = None, "failed", e.one_line()
    return {"metrics": metrics, "status": status, "error": error, "seconds": time.perf_counter() - t,
            "worker": worker_name()}


# ----------------------------------------------------------------------------- runs

@dataclass
class SweepResult:
    directory: Path
    rows: list            # the store's rows, id order
    total: int            # points in the sweep
    evaluated: int        # evaluated by this call (the others came from the store)
    hw_params: list       # the swept / fixed hardware parameters (table columns)

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.total

    @property
    def failed(self) -> int:
        return sum(r["status"] != "ok" for r in self.rows)

    def table(self):
        return results_table(self.rows, self.hw_params)


def read_config(directory) -> dict:
    cfg = read_config_json(directory, what="sweep")
    need = ("version", "template_text", "mapper", "networks", "hw_params", "points")
    if not isinstance(cfg, dict) or any(k not in cfg for k in need):
        raise SpecError("config", "not a sweep configuration (made by another command?)", str(Path(directory) / CONFIG))
    return cfg


def check_config(cfg: dict, file: str) -> None:
    """A stored sweep configuration has the shapes ``resolve_sweep`` gives (a hand-edited one is
    refused, naming the file and the field)."""
    from codesign.space.sweep import layer_from_json, resolve_mapper
    try:
        resolve_mapper(cfg["mapper"])
    except SpecError as e:
        raise SpecError(f"config.{e.field}", e.message, file) from None
    if not isinstance(cfg["template_text"], str):
        raise SpecError("config.template_text", "must be the template's YAML text", file)
    if not isinstance(cfg["hw_params"], list) or any(not isinstance(h, str) for h in cfg["hw_params"]):
        raise SpecError("config.hw_params", "must be a list of parameter names", file)
    nets = cfg["networks"]
    if not isinstance(nets, dict) or not nets:
        raise SpecError("config.networks", "must be a mapping {name: layers}", file)
    for name, net in nets.items():
        layers = net.get("layers") if isinstance(net, dict) else None
        if not isinstance(layers, list) or not layers:
            raise SpecError(f"config.networks.{name}", "must be a non-empty list of layers", file)
        for i, l in enumerate(layers):
            try:
                layer_from_json(l)
            except Exception as e:                     # noqa: BLE001 -- any malformed layer: one line
                raise SpecError(f"config.networks.{name}[{i}]", f"not a layer ({type(e).__name__})", file) from None
    pts = cfg["points"]
    if not isinstance(pts, list):
        raise SpecError("config.points", "must be a list", file)
    for i, p in enumerate(pts):
        if not isinstance(p, dict) or p.get("network") not in nets or not isinstance(p.get("hw"), dict):
            raise SpecError(f"config.points[{i}]", "must be {network: a name of networks, hw: {...}}", file)


def run_sweep(config: dict, directory, *, workers: int = 1, scheduler=None, progress: bool = False,
              limit: int | None = None, on_result=None) -> SweepResult:
    """Create or continue the sweep in ``directory`` (a different config there is refused).
    ``limit``: evaluate at most that many new points now; ``on_result(id, result)`` is called after
    each commit."""
    config = json.loads(json.dumps(config))
    d = create_or_check(directory, config, read_config, what="sweep", refuse_bare_store=True, indent=1,
                        sort_keys=True)
    return _execute(d, config, workers=workers, scheduler=scheduler, progress=progress, limit=limit,
                    on_result=on_result)


def resume_sweep(directory, **kw) -> SweepResult:
    from codesign.rundir.store import check_run_store
    cfg = read_config(directory)
    check_config(cfg, str(Path(directory) / CONFIG))     # export and plot read what they need; a resume all of it
    check_run_store(directory)             # a broken row is refused before anything runs or is written
    return _execute(Path(directory), cfg, **kw)


def _execute(d: Path, cfg: dict, *, workers=1, scheduler=None, progress=False, limit=None, on_result=None):
    from tqdm import tqdm
    store = open_run(d, create=True)
    try:
        points = cfg["points"]
        pending = [(i, p) for i, p in enumerate(points) if store.lookup(genome_key(p)) is None]
        todo = pending if limit is None else pending[:max(0, int(limit))]
        bar = tqdm(total=len(points), initial=len(points) - len(pending), disable=not progress, unit="point",
                   desc="sweep", dynamic_ncols=True)

        def done(j, out):
            i, p = todo[j]
            store.put(i, p, out["metrics"], 0, out["seconds"], out["status"], out["error"], out["worker"],
                      key=genome_key(p))
            bar.update(1)
            if on_result is not None:
                on_result(i, out)

        task = task_json(cfg)
        try:
            with Executor(workers, scheduler) as ex:
                ex.map(evaluate_point, [(task, p["network"], p["hw"]) for _, p in todo], done)
        finally:
            bar.close()
        rows = store.rows()
    finally:
        store.close()
    write_outputs(d, rows, cfg["hw_params"])
    return SweepResult(d, rows, len(cfg["points"]), len(todo), list(cfg["hw_params"]))


# ----------------------------------------------------------------------------- tables

def hw_column(param: str) -> str:
    return f"hw_size_{param.split('.', 1)[1]}_kib" if param.startswith("sizes_kib.") else f"hw_{param}"


def results_table(rows, hw_params=None):
    """One row per stored point: id, network, hw_* columns, metrics (units in the names), status, seconds."""
    import pandas as pd
    if hw_params is None:
        hw_params = list(dict.fromkeys(k for r in rows for k in _flat(r["genome"]["hw"])))
    recs = []
    for r in rows:
        hw = _flat(r["genome"]["hw"])
        m = r["metrics"] or {}
        recs.append({"id": r["id"], "network": r["genome"]["network"],
                     **{hw_column(p): hw.get(p) for p in hw_params},
                     **{c: m.get(c) for c in METRIC_COLUMNS}, "status": r["status"], "seconds": r["seconds"]})
    cols = ["id", "network", *map(hw_column, hw_params), *METRIC_COLUMNS, "status", "seconds"]
    return pd.DataFrame(recs, columns=cols)


def layers_table(rows):
    import pandas as pd
    recs = [{"id": r["id"], "network": r["genome"]["network"], **lr}
            for r in rows if r["metrics"] for lr in r["metrics"].get("layers", [])]
    return pd.DataFrame(recs, columns=["id", "network", "layer", "macs", "cycles", "energy_uj", "utilization"])


def _flat(hw: dict) -> dict:
    out = {k: v for k, v in hw.items() if k != "sizes_kib"}
    out.update({f"sizes_kib.{lv}": v for lv, v in (hw.get("sizes_kib") or {}).items()})
    return out


def write_outputs(d: Path, rows, hw_params) -> None:
    for name, table in (("results.csv", results_table(rows, hw_params)), ("layers.csv", layers_table(rows))):
        tmp = d / f"{name}.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(d / name)
