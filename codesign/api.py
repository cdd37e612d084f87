"""The co-search from Python, in the spirit of pymoo: a problem, an algorithm object and
``minimize``.

>>> from codesign import load_space, CoSearchProblem, NSGA2, minimize
>>> space = load_space()                                   # the shipped default co-search space
>>> problem = CoSearchProblem(space, accuracy="predictor", mapper_budget=150)
>>> result = minimize(problem, NSGA2(pop=8), budget=16, seed=0, store="runs/api-demo")
>>> result.front                                           # pandas DataFrame: front.csv's columns
>>> d = result.design(0)                                   # the first design of the front
>>> d.hardware, d.metrics, d.mapping("stem"), d.breakdown()

Everything here wraps what ``codesign search`` builds: the problem is the evaluator config the
command writes into ``config.json`` (``codesign.search.problem.evaluator_config``), an algorithm
is a name of ``codesign.search.algorithms.ALGORITHMS`` with its options, and ``minimize`` with a
``store`` directory writes the run directory the command writes (``codesign.rundir.search.
start_search``: ``config.json``, ``store.sqlite``, ``front.csv``, ``all.csv``,
``hypervolume.csv``); the same settings and seed give the same front as the command, and an
interrupted run continues from its store. Genomes, metrics and configurations are plain,
JSON-serializable dicts. torch is imported only by :meth:`Design.subnet`.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import ClassVar

from accelerators.errors import SpecError

__all__ = ["Space", "load_space", "CoSearchProblem", "NSGA2", "Scalar", "Random", "Sequential", "SequentialTopK",
           "HardwareOnly", "ALGORITHM_CLASSES", "minimize", "Result", "Design", "load_result"]

COST_SOURCES = ("exact", "predicted")


class _api_fields:
    """Renames the command-line option a SpecError names to the API's argument (``--population``
    -> ``pop``, ``--data`` -> ``data``)."""
    NAMES = {"--population": "pop", "--net": "net"}

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if isinstance(err, SpecError) and err.field.startswith("--"):
            err.field = self.NAMES.get(err.field, err.field[2:].replace("-", "_"))
            err.args = (err.one_line(),)
        return False


# ---------------------------------------------------------------------- the space
@dataclass(frozen=True)
class Space:
    """A joint network x accelerator search space: its name and its YAML content as a plain dict
    (what a run directory stores), with the parsed :class:`codesign.space.joint.JointSpace` as
    ``joint``. Made by :func:`load_space`."""
    name: str
    spec: dict = field(repr=False)
    path: str | None = None          # the YAML file it was read from (None: built from a dict)

    def __post_init__(self):
        self.joint                   # parse now: a bad space fails here, naming the field

    @cached_property
    def joint(self):
        """The parsed space (``codesign.space.joint.JointSpace``): sampling, mutation, limits."""
        from codesign.space.joint import space_from_dict
        try:
            return space_from_dict(self.spec, self.name)
        except SpecError as e:
            raise e.in_file(self.path) if self.path else e

    @classmethod
    def from_dict(cls, spec: dict, name: str = "space") -> "Space":
        """A space from a dict with the YAML file's keys (``hardware``, ``constraints``, ...)."""
        return cls(name, copy.deepcopy(spec))

    @property
    def objectives(self) -> tuple:
        """The space's default objectives (names out of accuracy, latency, energy, edp, area)."""
        return tuple(self.joint.objectives)

    @property
    def constraints(self) -> dict:
        """{constraint: limit}: area_mm2, onchip_kib, latency_ms, energy_uj, min_accuracy (top-1 %)."""
        return dict(self.joint.constraints)

    @property
    def reference(self) -> dict:
        """The hypervolume reference point {objective: value} (units as in the metric columns)."""
        return dict(self.joint.reference)

    @property
    def baseline(self) -> dict | None:
        """The fixed hardware genome of the sequential / hardware-only baselines (or None)."""
        return copy.deepcopy(self.joint.baseline)

    @property
    def bits(self) -> tuple:
        """The hardware bit-widths the space allows (weights and activations)."""
        return tuple(self.joint.hw.values("bits"))

    def sample(self, seed: int = 0) -> dict:
        """A random joint genome ``{"net": {...}, "hw": {...}}`` (a plain dict), seeded."""
        import numpy as np
        return self.joint.sample(np.random.default_rng(seed))

    def with_bits(self, bits) -> "Space":
        """The same space with the hardware bit-width restricted to ``bits`` (an int or a list out of
        :attr:`bits`). A baseline at a bit-width left out takes the largest allowed one."""
        allowed = [bits] if isinstance(bits, int) and not isinstance(bits, bool) else list(bits)
        if not allowed or any(isinstance(b, bool) or b not in self.bits for b in allowed):
            raise SpecError("bits", f"must be one or more of the space's bit-widths {list(self.bits)}, got {bits!r}"[:160])
        spec = copy.deepcopy(self.spec)
        spec["hardware"]["bits"] = {"choices": sorted(set(int(b) for b in allowed))}
        if isinstance(spec.get("baseline"), dict) and spec["baseline"].get("bits") not in allowed:
            spec["baseline"]["bits"] = max(allowed)
        return Space(self.name, spec, self.path)


def load_space(path_or_name=None) -> Space:
    """A co-search space: ``None`` for the shipped default (``specs/spaces/default.yaml``, found in
    the installed package), the name of a shipped space (``"default"``), or a YAML file's path.
    Errors are ``SpecError``\\ s naming the file and the field."""
    from accelerators.spec import SPECS_DIR
    from codesign.space.joint import read_space
    if path_or_name is None:
        p = SPECS_DIR / "spaces" / "default.yaml"
    else:
        p = Path(path_or_name)
        if not p.is_file() and p.suffix == "" and len(p.parts) == 1:
            shipped = SPECS_DIR / "spaces" / f"{path_or_name}.yaml"
            if not shipped.is_file():
                names = sorted(q.stem for q in (SPECS_DIR / "spaces").glob("*.yaml"))
                raise SpecError("space", f"no such file nor shipped space (shipped: {', '.join(names)})",
                                str(path_or_name))
            p = shipped
    spec, name = read_space(p)
    return Space(name, spec, str(p))


# ---------------------------------------------------------------------- the problem
@dataclass(frozen=True)
class CoSearchProblem:
    """What is searched and how a candidate is scored: the space, the accuracy source, the cost
    source and the objectives (what ``codesign search`` builds from its options).

    * ``space``: a :class:`Space`, or what :func:`load_space` takes (None: the default space);
    * ``accuracy``: ``"predictor"`` (the shipped accuracy predictor, or ``predictor=PATH``),
      ``"measured"`` (on the supernet, needs ``data=DIR``), ``"naswot"`` (needs ``data``),
      ``"macs"`` (data-free) or ``"proxy:NAME"`` (a zero-shot proxy of the study, e.g.
      ``proxy:vote``; all but ``proxy:macs`` / ``proxy:params`` need ``data``);
    * ``cost``: ``"exact"`` (every layer mapped on the accelerator model) or ``"predicted"``
      (the learned cost predictor, ``cost_predictor=PATH`` or the shipped one);
    * ``objectives``: names out of accuracy, latency, energy, edp, area (default: the space's);
    * ``bits``: restrict the hardware bit-width to these values (default: the space's choices);
    * ``mapper_budget``: mapper evaluations per layer shape (the command's ``--mapper-budget``);
    * ``weights``: supernet weights for measured accuracy and :meth:`Design.subnet`.

    Every input is checked when the problem is made (a missing predictor or data set fails here,
    not in a worker). ``config`` is the plain evaluator configuration stored in a run directory."""
    space: Space | str | Path | None = None
    accuracy: str = "predictor"
    cost: str = "exact"
    objectives: tuple | None = None
    bits: int | tuple | None = None
    mapper_budget: int = 1500
    data: str | None = None
    weights: str | None = None
    predictor: str | None = None
    cost_predictor: str | None = None
    config: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        from codesign.artifacts import WEIGHTS_DIR
        from codesign.search.problem import evaluator_config
        from codesign.space.joint import OBJECTIVES
        space = self.space if isinstance(self.space, Space) else load_space(self.space)
        if self.bits is not None:
            space = space.with_bits(self.bits)
        object.__setattr__(self, "space", space)
        if self.bits is not None and not isinstance(self.bits, int):
            object.__setattr__(self, "bits", tuple(self.bits))
        objectives = tuple(space.objectives if self.objectives is None else
                           ([self.objectives] if isinstance(self.objectives, str) else self.objectives))
        for o in objectives:
            if o not in OBJECTIVES:
                raise SpecError("objectives", f"unknown objective {o!r} (one of {', '.join(OBJECTIVES)})")
        if not objectives:
            raise SpecError("objectives", "at least one objective")
        object.__setattr__(self, "objectives", objectives)
        if self.cost not in COST_SOURCES:
            raise SpecError("cost", f"unknown cost source {self.cost!r} (one of {', '.join(COST_SOURCES)})")
        mb = self.mapper_budget
        if isinstance(mb, bool) or not isinstance(mb, int) or mb < 1:
            raise SpecError("mapper_budget", f"must be an integer >= 1, got {mb!r}"[:120])
        if not isinstance(self.accuracy, str):
            raise SpecError("accuracy", f"must be a string, got {self.accuracy!r}"[:120])
        if self.accuracy in ("measured", "naswot") and self.data:       # the data set, before any run
            from codesign.cli.inputs import check_dataset
            check_dataset(self.data, "data", split="validation", min_images=64 if self.accuracy == "naswot" else 1)
        cost_file = None
        if self.cost == "predicted":
            from codesign.predictors.cost import CostPredictor
            cost_file = Path(self.cost_predictor) if self.cost_predictor else WEIGHTS_DIR / "cost_predictor.npz"
            CostPredictor.load(cost_file).check_space(space.joint)
        elif self.cost_predictor is not None:
            raise SpecError("cost_predictor", 'only with cost="predicted"')
        with _api_fields():
            cfg = evaluator_config(space.spec, space.name, self.accuracy, predictor=self.predictor,
                                   weights=self.weights, data=self.data, mapper_budget=mb, cost_predictor=cost_file)
        if self.accuracy == "predictor":
            from codesign.predictors.accuracy import Predictor
            Predictor.load(self.predictor or WEIGHTS_DIR / "predictor.npz")
        object.__setattr__(self, "config", cfg)

    @classmethod
    def from_config(cls, evaluator: dict, objectives=None) -> "CoSearchProblem":
        """The problem of a stored evaluator configuration (``config.json``'s ``evaluator``)."""
        acc = evaluator["accuracy"]
        cost = evaluator.get("cost_predictor")
        return cls(Space.from_dict(evaluator["space"], evaluator.get("space_name", "space")), accuracy=acc["source"],
                   cost="predicted" if cost else "exact", objectives=objectives,
                   mapper_budget=int(evaluator["mapper_budget"]), data=acc.get("data"), weights=acc.get("weights"),
                   predictor=acc.get("predictor"), cost_predictor=cost)

    @cached_property
    def evaluator(self):
        """The evaluator (``codesign.search.problem.Evaluator``), built once: ``evaluator(genome)``
        returns the metrics dict of a joint genome."""
        from codesign.search.problem import build_evaluator
        return build_evaluator(self.config)

    def evaluate(self, genome: dict) -> dict:
        """Metrics of one joint genome: ``top1_pct``, ``latency_ms``, ``energy_uj``, ``edp_uj_ms``,
        ``area_mm2``, ``onchip_kib``, ``macs``, ``utilization``, ``violation`` (0 when feasible)."""
        return self.evaluator(self.space.joint.validate(genome))

    def sample(self, seed: int = 0) -> dict:
        """A random joint genome of the problem's space (a plain dict)."""
        return self.space.sample(seed)


# ---------------------------------------------------------------------- algorithms
def _check_fraction(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise SpecError(name, f"must be within [0, 1], got {v!r}")


@dataclass(frozen=True)
class _Algorithm:
    """Options of one algorithm of ``codesign.search.algorithms.ALGORITHMS`` (``name``)."""
    name: ClassVar[str] = ""

    def options(self) -> dict:
        """The keyword arguments of ``codesign.rundir.search.search_config`` this algorithm sets."""
        raise NotImplementedError


@dataclass(frozen=True)
class NSGA2(_Algorithm):
    """NSGA-II on the joint genome: ``pop`` candidates per generation, ``crossover`` probability,
    per-gene ``mutation`` probability; ``screen`` K > 1 breeds K x pop children per generation and
    evaluates only the pop best by the learned cost predictor (``--screen K``)."""
    pop: int = 24
    crossover: float = 0.9
    mutation: float = 0.08
    screen: int = 0
    name: ClassVar[str] = "nsga2"

    def options(self) -> dict:
        return {"algorithm": self.name, "population": self.pop, "crossover": self.crossover,
                "mutation": self.mutation, "screen": self.screen}


@dataclass(frozen=True)
class Scalar(_Algorithm):
    """NSGA-II's operators on one scalar score: ``scalarize`` ``"acc-lat:alpha=A"`` (top1 - A *
    latency_ms; the default, A = 1) or ``"mnas:target_ms=T,w=-0.07"`` (MnasNet's reward)."""
    pop: int = 24
    crossover: float = 0.9
    mutation: float = 0.08
    scalarize: str | None = None
    screen: int = 0
    name: ClassVar[str] = "scalar"

    def options(self) -> dict:
        return {"algorithm": self.name, "population": self.pop, "crossover": self.crossover,
                "mutation": self.mutation, "scalarize": self.scalarize, "screen": self.screen}


@dataclass(frozen=True)
class Random(_Algorithm):
    """Random search: a fresh random population of ``pop`` candidates every generation."""
    pop: int = 24
    name: ClassVar[str] = "random"

    def options(self) -> dict:
        return {"algorithm": self.name, "population": self.pop}


@dataclass(frozen=True)
class Sequential(_Algorithm):
    """The sequential-design baseline: NSGA-II over the network on the space's fixed baseline
    accelerator (half the budget), then over the hardware for the most accurate network."""
    pop: int = 24
    crossover: float = 0.9
    mutation: float = 0.08
    name: ClassVar[str] = "sequential"

    def options(self) -> dict:
        return {"algorithm": self.name, "population": self.pop, "crossover": self.crossover,
                "mutation": self.mutation}


@dataclass(frozen=True)
class SequentialTopK(_Algorithm):
    """The stronger sequential baseline: NSGA-II over the network on the baseline accelerator (half
    the budget), then over the hardware for each of the ``k`` most accurate networks of that front
    (the rest of the budget split evenly)."""
    pop: int = 24
    crossover: float = 0.9
    mutation: float = 0.08
    k: int = 3
    name: ClassVar[str] = "sequential-topk"

    def options(self) -> dict:
        return {"algorithm": self.name, "population": self.pop, "crossover": self.crossover,
                "mutation": self.mutation, "topk": self.k}


@dataclass(frozen=True)
class HardwareOnly(_Algorithm):
    """The hardware-only baseline: NSGA-II over the hardware for one fixed network ``net`` (a
    network genome dict, ``"max"`` (the default) or ``"min"``)."""
    pop: int = 24
    crossover: float = 0.9
    mutation: float = 0.08
    net: dict | str | None = None
    name: ClassVar[str] = "hw-only"

    def options(self) -> dict:
        from codesign.space.genome import named_genome
        return {"algorithm": self.name, "population": self.pop, "crossover": self.crossover,
                "mutation": self.mutation,
                "fixed_net": named_genome(self.net, "net") if self.net is not None else None}


ALGORITHM_CLASSES = {c.name: c for c in (NSGA2, Scalar, Random, Sequential, SequentialTopK, HardwareOnly)}


# ---------------------------------------------------------------------- running
def minimize(problem: CoSearchProblem, algorithm=None, *, budget: int = 200, seed: int = 0, store=None,
             workers: int = 1, scheduler=None, progress: bool = False, plots: bool = False) -> "Result":
    """Run a co-search of ``budget`` candidate evaluations and return its :class:`Result`.

    ``algorithm``: an algorithm object (:class:`NSGA2`, :class:`Scalar`, :class:`Random`,
    :class:`Sequential`, :class:`HardwareOnly`) or a name of ``ALGORITHM_CLASSES`` with its
    defaults (default: ``NSGA2()``). ``store``: a run directory; it gets what ``codesign search
    --out DIR`` writes (with ``plots=True`` its ``plots/`` too), a rerun with the same settings
    takes every stored candidate from it, and a directory holding another configuration is refused.
    Without ``store`` nothing is written. ``workers`` local processes or a Dask ``scheduler``
    address evaluate in parallel (the same results as serially); ``progress`` shows a bar."""
    from codesign.rundir.search import search_config
    if not isinstance(problem, CoSearchProblem):
        raise TypeError(f"minimize needs a CoSearchProblem, got {type(problem).__name__}")
    if algorithm is None:
        algorithm = NSGA2()
    elif isinstance(algorithm, str):
        if algorithm not in ALGORITHM_CLASSES:
            raise SpecError("algorithm", f"unknown algorithm {algorithm!r} (one of {', '.join(ALGORITHM_CLASSES)})")
        algorithm = ALGORITHM_CLASSES[algorithm]()
    elif not isinstance(algorithm, _Algorithm):
        raise TypeError(f"algorithm: an algorithm object or name, got {type(algorithm).__name__}")
    opts = algorithm.options()
    for k in ("crossover", "mutation"):
        if k in opts:
            _check_fraction(k, opts[k])
    with _api_fields():
        cfg = search_config(problem.config, budget=budget, seed=seed, objectives=list(problem.objectives), **opts)
    if store is not None:
        from codesign.rundir.search import start_search
        out = Path(store)
        res = start_search(out, cfg, workers=workers, scheduler=scheduler, progress=progress)
        if plots:
            from codesign.report.plots import plot_dir
            plot_dir(out, formats=("png",), log=lambda *a: None)
        return Result(cfg, res, out)
    res, evaluate = _run_in_memory(cfg, workers=workers, scheduler=scheduler, progress=progress)
    from accelerators.network import MappingCache
    cache = getattr(getattr(evaluate, "cost", None), "cache", None)      # the serial evaluator's mappings
    return Result(cfg, res, None, _cache=cache if isinstance(cache, MappingCache) else None)


def _run_in_memory(cfg: dict, *, workers, scheduler, progress):
    """``codesign.rundir.search``'s run without a store: (SearchResult, the serial evaluator or None)."""
    from codesign.search.algorithms import ALGORITHMS, Scorer
    from codesign.search.executors import Executor
    from codesign.search.problem import build_evaluator, evaluate_candidate
    from codesign.space.joint import space_from_dict
    ev_cfg = cfg["evaluator"]
    space = space_from_dict(ev_cfg["space"], ev_cfg.get("space_name", "space"))
    with Executor(workers, scheduler) as ex:
        evaluate = build_evaluator(ev_cfg) if ex.kind == "serial" else None
        scorer = Scorer(evaluate, executor=ex, task=evaluate_candidate, cfg_json=json.dumps(ev_cfg, sort_keys=True))
        kw = dict(budget=cfg["budget"], population=cfg["population"], seed=cfg["seed"], mutation=cfg["mutation"],
                  crossover=cfg["crossover"], objectives=cfg["objectives"], progress=progress, scorer=scorer)
        if cfg.get("topk"):
            kw["k"] = cfg["topk"]
        if cfg.get("screen"):
            from codesign.search.screening import Screener
            kw.update(screen=cfg["screen"], screener=Screener(space, ev_cfg))
        res = ALGORITHMS[cfg["algorithm"]].run(space, evaluate, scalarize=cfg.get("scalarize"),
                                               fixed_net=cfg.get("fixed_net"), **kw)
    return res, evaluate


def load_result(directory) -> "Result":
    """The :class:`Result` of an existing run directory (``codesign search --out DIR`` or
    ``minimize(..., store=DIR)``; finished or partial), rebuilt from its store."""
    from codesign.rundir.base import run_kind
    from codesign.rundir.search import load_run
    d = Path(directory)
    if run_kind(d) != "search":
        raise SpecError("DIR", "a sweep directory, not a search run", str(d))
    cfg, res = load_run(d)
    from codesign.space.joint import space_from_dict
    ev = cfg["evaluator"]
    levels = [lv for lv, _ in space_from_dict(ev["space"], ev.get("space_name", "space")).hw.sizes]
    for r in res.rows:          # the store keeps sorted keys: back to the template's level order (front.csv's)
        hw = r["genome"]["hw"]
        if isinstance(hw.get("sizes_kib"), dict):
            sizes = hw["sizes_kib"]
            hw["sizes_kib"] = {lv: sizes[lv] for lv in levels if lv in sizes} | \
                {lv: v for lv, v in sizes.items() if lv not in levels}
    return Result(cfg, res, d)


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class Result:
    """A finished co-search: ``config`` (the run configuration, as ``config.json`` holds it),
    ``search`` (``codesign.search.algorithms.SearchResult``: every evaluation as a plain dict) and
    ``directory`` (the run directory, or None for a run without a store)."""
    config: dict = field(repr=False)
    search: object = field(repr=False)
    directory: Path | None = None
    _cache: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self._cache is None:
            from accelerators.network import MappingCache
            object.__setattr__(self, "_cache", MappingCache())

    def __repr__(self) -> str:
        return (f"Result({self.config['algorithm']}, {len(self.search.rows)} candidates, front of "
                f"{len(self.front_rows)}, hypervolume {self.hypervolume:.6g}, directory={self.directory})")

    @property
    def objectives(self) -> tuple:
        """The objectives the search minimized (accuracy maximized)."""
        return tuple(self.config["objectives"])

    @cached_property
    def front_rows(self) -> list:
        """The front as plain dicts ``{"id", "genome", "metrics", "generation", ...}`` (the best design
        alone for a scalarized search)."""
        return self.search.front()

    @property
    def front(self):
        """The feasible Pareto front as a pandas DataFrame: the columns of ``front.csv`` (``id``,
        ``generation``, genome columns ``net_*`` / ``hw_*``, metric columns with units in their names,
        ``genome_json``), one row per design, in the order :meth:`design` counts."""
        return self._tables()["front"]

    @property
    def all(self):
        """Every evaluated candidate as a DataFrame (``all.csv``'s columns)."""
        return self._tables()["all"]

    def _tables(self) -> dict:
        """``codesign.rundir.search.run_tables``: what the run directory's CSVs hold (with the
        store's re-measured accuracies when the result has a directory)."""
        from codesign.rundir.search import _measurements, run_tables
        measured, source = _measurements(Path(self.directory)) if self.directory is not None else ({}, "")
        from codesign.space.joint import space_from_dict
        ev = self.config["evaluator"]
        space = space_from_dict(ev["space"], ev.get("space_name", "space"))
        return run_tables(self.search, self.config.get("population"), space.constraints, measured, source)

    @property
    def hypervolume(self) -> float:
        """The hypervolume of the feasible front at the end (the space's reference point)."""
        return float(self.search.hypervolume[-1][2]) if self.search.hypervolume else 0.0

    @property
    def history(self):
        """Hypervolume after every generation: DataFrame ``generation``, ``evaluations``,
        ``hypervolume`` (``hypervolume.csv``)."""
        import pandas as pd
        return pd.DataFrame(self.search.hypervolume, columns=["generation", "evaluations", "hypervolume"])

    @property
    def seconds(self) -> float:
        """Wall time of the search in this process (0 for a loaded run)."""
        return float(self.search.seconds)

    @cached_property
    def problem(self) -> CoSearchProblem:
        """The :class:`CoSearchProblem` of the run's configuration."""
        return CoSearchProblem.from_config(self.config["evaluator"], objectives=self.config["objectives"])

    def design(self, i: int | None = None, *, id: int | None = None) -> "Design":
        """Design ``i`` of the front (its position in :attr:`front`; negative counts from the end),
        or with ``id=`` any evaluated candidate by its run id (the ``id`` column)."""
        if (i is None) == (id is None):
            raise TypeError("design(i) or design(id=ID), not both")
        if id is not None:
            from codesign.report.design import find_row
            try:
                row = find_row(self.search, id)
            except SpecError as e:
                raise SpecError("id", e.message) from None
        else:
            front = self.front_rows
            if isinstance(i, bool) or not isinstance(i, int) or not -len(front) <= i < len(front):
                raise IndexError(f"design {i!r}: the front has {len(front)} designs")
            row = front[i]
        ev = self.config["evaluator"]
        from codesign.space.joint import space_from_dict
        return Design(id=int(row["id"]), genome=copy.deepcopy(row["genome"]), metrics=dict(row["metrics"]),
                      generation=row.get("generation"),
                      _space=space_from_dict(ev["space"], ev.get("space_name", "space")),
                      _mapper_budget=int(ev["mapper_budget"]), _cache=self._cache,
                      _weights=ev["accuracy"].get("weights"))

    def designs(self) -> list:
        """Every design of the front, in :attr:`front` order."""
        return [self.design(i) for i in range(len(self.front_rows))]


@dataclass(frozen=True)
class Design:
    """One evaluated design: ``id`` (its run id), ``genome`` (``{"net", "hw"}``, plain dicts),
    ``metrics`` (as stored by the search: ``top1_pct``, ``latency_ms``, ``energy_uj``,
    ``edp_uj_ms``, ``area_mm2``, ... ``violation``) and ``generation``. Its layers are mapped on
    its accelerator on first use, as the evaluator maps them (same mapper budget, seed and cache
    keys): :meth:`mapping`, :meth:`breakdown`."""
    id: int
    genome: dict = field(repr=False)
    metrics: dict = field(repr=False)
    generation: int | None = None
    _space: object = field(default=None, repr=False, compare=False)
    _mapper_budget: int = field(default=1500, repr=False, compare=False)
    _cache: object = field(default=None, repr=False, compare=False)
    _weights: str | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        m = self.metrics
        figs = ", ".join(f"{k} {m[k]:.4g}" for k in ("top1_pct", "latency_ms", "energy_uj", "area_mm2")
                         if isinstance(m.get(k), (int, float)))
        return f"Design(id={self.id}, {figs})"

    @property
    def network(self) -> dict:
        """The network genome ``{"ks", "e", "d", "r"}``."""
        return self.genome["net"]

    @property
    def hardware(self) -> dict:
        """The hardware genome ``{"pe_x", "pe_y", "bits", "dataflow", "dram_type", "dram_bw",
        "sizes_kib": {...}}``."""
        return self.genome["hw"]

    def architecture(self):
        """The accelerator (``accelerators.arch.Architecture``) of the hardware genome."""
        return self._space.hw.architecture(self.hardware)

    @cached_property
    def _mapped(self) -> dict:
        from codesign.report.design import map_design
        return map_design(self._space, self.genome, self._mapper_budget, cache=self._cache)

    def layers(self) -> list:
        """The subnet's layers as accelerator workloads (``accelerators.network.Layer``: ``name``,
        ``work``), in execution order: what :meth:`mapping` takes by index or name."""
        from codesign.space.layers import genome_layers
        return genome_layers(self.network)

    def _layer_index(self, layer) -> int:
        names = [l.name for l in self.layers()]
        if isinstance(layer, str):
            if layer not in names:
                raise KeyError(f"no layer {layer!r} in this design (layers: {', '.join(names[:6])}, ...)")
            return names.index(layer)
        if isinstance(layer, bool) or not isinstance(layer, int) or not -len(names) <= layer < len(names):
            raise IndexError(f"layer {layer!r}: the design has {len(names)} layers")
        return layer % len(names)

    def mapping(self, layer):
        """The mapping (``accelerators.mapping.Mapping``) the mapper found for ``layer`` (an index
        into :meth:`layers` or a layer name such as ``"stem"``) on this design's accelerator;
        ``.loop_nest(design.architecture())`` prints it."""
        return self._mapped["mappings"][self._layer_index(layer)]

    def breakdown(self):
        """Per-layer latency and energy on this design's accelerator (a DataFrame: ``layer``,
        ``shape``, ``macs``, ``cycles``, ``latency_ms``, ``energy_uj``, ``edp_uj_ms``,
        ``utilization``, ``mac_energy_uj``, ``energy_<level>_uj``); from the accelerator model,
        also for a run whose cost was predicted."""
        from codesign.report.design import layer_breakdown
        return layer_breakdown(self._mapped["network"], self._mapped["arch"].clock_ghz)

    def subnet(self, weights=None):
        """The design's network as a stand-alone PyTorch module (eval mode) with the weights of the
        shipped supernet (or ``weights``, a supernet state_dict file); input images at
        ``network["r"]`` pixels. Needs PyTorch (``pip install -e ".[torch]"``)."""
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ImportError('Design.subnet() needs PyTorch, which is not installed: pip install -e ".[torch]" '
                              "(the rest of the API works without it)") from None
        from codesign.artifacts import supernet_path
        return _supernet(str(supernet_path(weights or self._weights))).subnet(self.network).eval()

    def to_dict(self) -> dict:
        """``{"id", "generation", "genome", "metrics"}`` (plain, JSON-serializable)."""
        return {"id": self.id, "generation": self.generation, "genome": copy.deepcopy(self.genome),
                "metrics": dict(self.metrics)}


@lru_cache(maxsize=2)
def _supernet(path: str):
    from codesign.nn.supernet import load_supernet
    return load_supernet(path)
