"""Scoring one joint genome: accuracy (predictor, measurement on the supernet, or a zero-shot
proxy) and latency / energy / EDP / area from the accelerator model with every layer mapped
(cached per layer shape and architecture), plus the constraint violation.

An evaluator is described by a plain, JSON-serializable config (``evaluator_config``) so that a
run directory can rebuild it on resume and every worker process or Dask worker can build its own
copy (``evaluate_candidate``, a picklable task)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from accelerators.arch import onchip_kib  # noqa: F401  (also codesign.search.problem.onchip_kib)
from accelerators.errors import MappingError, SpecError
from accelerators.network import MappingCache, network_totals

from codesign.space.hardware import mapped_metrics
from codesign.space.layers import genome_layers
from codesign.space.joint import JointSpace, space_from_dict

CONSTRAINT_COLUMNS = {"area_mm2": "area_mm2", "onchip_kib": "onchip_kib", "latency_ms": "latency_ms",
                      "energy_uj": "energy_uj"}
ACCURACY_SOURCES = ("predictor", "measured", "naswot", "macs")
FAILED_VIOLATION = 1e9     # a candidate that cannot be mapped: ranked after every other one


class MappedCost:
    """The hardware cost of a network on a hardware point from the accelerator model, every layer
    of the subnet mapped (cached per layer shape and architecture). ``metrics(space, net, hw)``:
    the interface the learned ``codesign.predictors.cost.CostPredictor`` has too (OFA's
    efficiency predictor)."""

    def __init__(self, mapper_budget: int = 1500, cache: MappingCache | None = None):
        self.mapper_budget, self.cache = mapper_budget, cache if cache is not None else MappingCache()
        self._layers: dict = {}

    def layers(self, net: dict) -> list:
        key = json.dumps(net, sort_keys=True)
        got = self._layers.get(key)
        if got is None:
            got = self._layers[key] = genome_layers(net)
        return got

    def metrics(self, space: JointSpace, net: dict, hw: dict) -> dict:
        arch = space.hw.architecture(hw)
        return mapped_metrics(arch, network_totals(self.layers(net), arch, "dataflow", budget=self.mapper_budget,
                                                   cache=self.cache))


class Evaluator:
    """The problem: scores joint genomes (objectives and constraint violation).
    ``accuracy(net_genome, bits) -> top-1 %`` (or a proxy score)."""

    def __init__(self, space: JointSpace, accuracy, mapper_budget: int = 1500, cache: MappingCache | None = None,
                 cost=None):
        """``cost``: the hardware cost, an object with ``metrics(space, net, hw)``: by default the
        mapped model (``MappedCost``); a ``codesign.predictors.cost.CostPredictor`` is the opt-in
        fast path (latency and energy predicted instead of mapped; area and on-chip memory exact)."""
        self.space, self.accuracy, self.mapper_budget = space, accuracy, mapper_budget
        if cost is not None and hasattr(cost, "check_space"):
            cost.check_space(space)
        self.cost = cost if cost is not None else MappedCost(mapper_budget, cache)
        self.seconds = 0.0
        self.count = 0

    def hardware(self, hw: dict, net: dict) -> dict:
        """Latency, energy, EDP, area and on-chip memory of ``net`` on ``hw``."""
        return self.cost.metrics(self.space, net, hw)

    def __call__(self, genome: dict) -> dict:
        t = time.perf_counter()
        net, hw = genome["net"], genome["hw"]
        m = {"top1_pct": float(self.accuracy(net, hw["bits"]))}
        m.update(self.hardware(hw, net))
        m["violation"] = self.violation(m)
        self.seconds += time.perf_counter() - t
        self.count += 1
        return m

    def violation(self, m: dict) -> float:
        """Sum of relative constraint excesses (0 when feasible): never dropped, only ranked last."""
        v = 0.0
        for _, excess in constraint_excesses(self.space.constraints, m):
            v += excess
        return v


def constraint_excesses(constraints, m: dict) -> tuple:
    """``((key, relative excess), ...)`` per constraint of a space (``JointSpace.constraints``), in
    its order; the excess is 0.0 where ``m`` meets the constraint (``min_accuracy``: 1 - top1/limit,
    the others: value/limit - 1)."""
    out = []
    for key, limit in constraints:
        if key == "min_accuracy":
            out.append((key, max(0.0, 1.0 - m["top1_pct"] / limit)))
        else:
            out.append((key, max(0.0, m[CONSTRAINT_COLUMNS[key]] / limit - 1.0)))
    return tuple(out)


def violated_constraints(constraints, m: dict | None) -> str:
    """The keys of the constraints ``m`` breaks, ``";"``-joined (``"area_mm2;min_accuracy"``), ``""``
    when it meets them all, ``"failed"`` when the design has no metrics (it could not be mapped)."""
    if not m or m.get("latency_ms") is None or m.get("top1_pct") is None:
        return "failed"
    return ";".join(key for key, excess in constraint_excesses(constraints, m) if excess > 0)


def evaluator_config(space_dict: dict, space_name: str = "space", accuracy: str = "predictor", *,
                     predictor=None, weights=None, data=None, mapper_budget: int = 1500,
                     cost_predictor=None) -> dict:
    """A plain description of an evaluator (stored in a run directory's config)."""
    if accuracy not in ACCURACY_SOURCES and not accuracy.startswith("proxy:"):
        raise SpecError("accuracy", f"unknown source {accuracy!r} (one of {', '.join(ACCURACY_SOURCES)}, proxy:NAME)")
    if (accuracy in ("measured", "naswot") or accuracy.startswith("proxy:")
            and accuracy not in ("proxy:macs", "proxy:params")) and not data:
        raise SpecError("--data", f"required with --accuracy {accuracy}")
    if accuracy.startswith("proxy:"):                 # fail now, not in a worker
        from codesign.nn.proxies import check_search_proxy
        check_search_proxy(accuracy.split(":", 1)[1])
    ab = lambda p: None if p is None else str(Path(p).resolve())
    acc = {"source": accuracy, "predictor": ab(predictor), "weights": ab(weights), "data": ab(data)}
    if accuracy in ("measured", "naswot"):
        acc["split"] = "validation"          # the held-out training images; never the test split
    cfg = {"space": space_dict, "space_name": space_name,
           "accuracy": acc,
           "mapper_budget": int(mapper_budget), "cost_predictor": ab(cost_predictor)}
    # which predictor files the stored results are scored with (checked when a run continues)
    for holder, key, _, path in _scoring_files(cfg):
        if path.is_file():
            holder[key] = file_sha256(path)
    return cfg


def file_sha256(path) -> str:
    """The first 16 hex digits of a file's SHA-256."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _scoring_files(cfg: dict) -> list:
    """(the dict holding the digest, its key, its field name, the file) of each predictor file
    whose outputs an evaluator stores as results: the accuracy predictor (accuracy source
    ``predictor``; the shipped file when none is named) and the cost predictor (``--cost predictor``)."""
    from codesign.artifacts import WEIGHTS_DIR
    out = []
    acc = cfg["accuracy"]
    if acc.get("source") == "predictor":
        out.append((acc, "predictor_sha256", "accuracy.predictor_sha256",
                    Path(acc.get("predictor") or WEIGHTS_DIR / "predictor.npz")))
    if cfg.get("cost_predictor"):
        out.append((cfg, "cost_predictor_sha256", "cost_predictor_sha256", Path(cfg["cost_predictor"])))
    return out


def check_scoring_files(cfg: dict, file: str | None = None) -> None:
    """A run continues only with the predictor files its stored results were scored with: a
    digest recorded in the evaluator config (runs made before 2026-12-03 have none: not checked)
    must match the file now, else a SpecError naming the field (results of two predictors
    would otherwise be mixed in one front, e.g. across the shipped predictor's v1 -> v2)."""
    for holder, key, field, path in _scoring_files(cfg):
        want = holder.get(key)
        if want is None:
            continue
        if not path.is_file():
            raise SpecError(f"config.evaluator.{field}", f"the run was scored with {path}, which is missing", file)
        got = file_sha256(path)
        if got != want:
            raise SpecError(f"config.evaluator.{field}",
                            f"{path} changed since the run started (sha256 {want}, now {got}): its stored results "
                            "were scored with the old file; restore it, or start a new run in another --out", file)


def accuracy_function(acc: dict):
    """``(net, bits) -> score`` for an accuracy config: loads the predictor / supernet once."""
    from codesign.artifacts import WEIGHTS_DIR, supernet_path
    src = acc["source"]
    if src == "predictor":
        from codesign.predictors.accuracy import Predictor
        pred = Predictor.load(acc.get("predictor") or WEIGHTS_DIR / "predictor.npz")
        return lambda net, bits: float(pred.predict([net], [bits])[0])
    if src == "measured":
        from codesign.artifacts import measure_split
        from codesign.nn.measure import measure
        from codesign.nn.supernet import load_supernet
        net_w = load_supernet(supernet_path(acc.get("weights")))
        # (configs written before the validation split existed measured on the test split: a
        # resumed old run replays as it was)
        calib, val = measure_split(acc["data"], acc.get("split", "test"))
        return lambda net, bits: measure(net_w, net, bits, calib, val.images, val.labels)
    if src == "naswot":
        from codesign.artifacts import measure_split
        from codesign.nn.proxies import proxies
        if acc.get("split", "test") == "validation":
            imgs = measure_split(acc["data"], "validation")[1].images[:64]
        else:
            from codesign.nn.data import load_split
            imgs = load_split(acc["data"], "test").images[:64]
        return lambda net, bits: proxies(net, imgs)["naswot"]
    if src.startswith("proxy:"):          # zero-shot (issue #23): a study proxy or the vote
        from codesign.nn.proxies import search_accuracy
        return search_accuracy(src.split(":", 1)[1], acc.get("data"), acc.get("weights"))
    if src == "macs":                     # data-free baseline proxy: bigger subnets score higher
        import math
        from codesign.space.layers import genome_macs
        return lambda net, bits: 10.0 * math.log10(genome_macs(net)) + {4: -3.0, 6: -1.0, 8: -0.3}.get(int(bits), 0.0)
    raise SpecError("accuracy.source", f"unknown source {src!r}")


def build_evaluator(cfg: dict) -> Evaluator:
    check_scoring_files(cfg)
    space = space_from_dict(cfg["space"], cfg.get("space_name", "space"))
    cost = None
    if cfg.get("cost_predictor"):
        from codesign.predictors.cost import CostPredictor
        cost = CostPredictor.load(cfg["cost_predictor"])
    return Evaluator(space, accuracy_function(cfg["accuracy"]), mapper_budget=cfg["mapper_budget"], cost=cost)


_EVALUATORS: dict = {}


def evaluate_candidate(cfg_json: str, genome: dict) -> dict:
    """Picklable task: {"metrics" or None, "status", "error", "seconds", "worker"}. Each process
    builds its evaluator (and its mapping cache) once per config."""
    from codesign.search.executors import worker_name
    ev = _EVALUATORS.get(cfg_json)
    if ev is None:
        ev = _EVALUATORS[cfg_json] = build_evaluator(json.loads(cfg_json))
    return score_with(ev, genome, worker_name())


def evaluate_candidate_detailed(cfg_json: str, genome: dict) -> dict:
    """:func:`evaluate_candidate`, plus, when the cost is the mapped model, ``"details"``: the
    candidate's per-layer breakdown (``codesign.report.breakdown``, from this process's mapping
    cache, which holds every layer just mapped: no mapping again), packed (about 2 KB), so that the run's report need not map its front designs
    again in the parent process. The breakdown is the one the report would map
    (``codesign.report.html.design_breakdown``): the same mapper settings, deterministic."""
    out = evaluate_candidate(cfg_json, genome)
    ev = _EVALUATORS[cfg_json]
    if out["status"] == "ok" and isinstance(ev.cost, MappedCost):
        from codesign.report.breakdown import layer_breakdown, map_network, pack
        arch, _, nr = map_network(ev.space, genome, ev.mapper_budget, ev.cost.cache)   # every layer a cache hit
        out["details"] = pack(layer_breakdown(arch, nr))
    return out


def score_with(ev, genome: dict, worker: str = "main") -> dict:
    t = time.perf_counter()
    try:
        return {"metrics": ev(genome), "status": "ok", "error": None, "seconds": time.perf_counter() - t,
                "worker": worker}
    except (MappingError, SpecError) as e:
        msg = e.one_line() if hasattr(e, "one_line") else str(e)
        return {"metrics": None, "status": "failed", "error": msg, "seconds": time.perf_counter() - t, "worker": worker}
