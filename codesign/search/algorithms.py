"""Joint network-accelerator search (NAAS-style): candidates are scored by an evaluator
(``codesign.search.problem``) and ranked with NSGA-II (``codesign.search.nsga2``), or by one
scalar score (``accuracy - alpha * latency`` or MnasNet's ``ACC * (LAT / T)^w``).

A problem (the space, an evaluator, objectives), an algorithm object registered by name in
``ALGORITHMS`` (``nsga2``, ``scalar``, ``random``, and the baselines ``sequential``,
``sequential-topk`` and ``hw-only``, which compose ``run_search``), and callbacks called after every generation (the
hypervolume log, progress). Results are plain dicts, one per evaluated candidate. With a
``store`` every result is committed as it arrives and candidates already stored are not
evaluated again, so a resumed run replays the same seeded search to the same front."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from codesign.search.problem import FAILED_VIOLATION, score_with
from codesign.search.nsga2 import binary_tournament, first_front, hypervolume, rank_and_crowding, select_survivors
from codesign.space.joint import JointSpace
from codesign.rundir.store import genome_key

# objective -> (metric column, sign for minimization)
OBJECTIVE_COLUMNS = {"accuracy": ("top1_pct", -1.0), "latency": ("latency_ms", 1.0),
                     "energy": ("energy_uj", 1.0), "edp": ("edp_uj_ms", 1.0), "area": ("area_mm2", 1.0)}
HW_ORDER = ["pe_x", "pe_y", "bits", "dataflow", "dram_type", "dram_bw", "sizes_kib"]
METRIC_ORDER = ["top1_pct", "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib", "macs", "utilization",
                "violation"]
WORST = 1e30               # objective value of a failed candidate (finite, so crowding stays defined)


# ---------------------------------------------------------------------- scalarization
def parse_scalarize(text: str | None) -> dict:
    """'acc-lat:alpha=0.5' (top1 - alpha * latency_ms) or 'mnas:target_ms=2,w=-0.07'
    (MnasNet: top1 * (latency_ms / target_ms)^w)."""
    from accelerators.errors import SpecError
    text = text or "acc-lat:alpha=1"
    kind, _, rest = text.partition(":")
    try:
        params = {k: float(v) for k, v in (p.split("=") for p in rest.split(",") if p)}
    except ValueError:
        raise SpecError("--scalarize", f"cannot read {text!r} (e.g. acc-lat:alpha=0.5 or mnas:target_ms=2,w=-0.07)") from None
    if kind == "acc-lat":
        unknown = set(params) - {"alpha"}
        params.setdefault("alpha", 1.0)
    elif kind == "mnas":
        unknown = set(params) - {"target_ms", "w"}
        params.setdefault("w", -0.07)
        if "target_ms" not in params or params["target_ms"] <= 0:
            raise SpecError("--scalarize", "mnas needs target_ms > 0")
    else:
        raise SpecError("--scalarize", f"unknown scalarization {kind!r} (acc-lat or mnas)")
    if unknown:
        raise SpecError("--scalarize", f"unknown parameter {sorted(unknown)[0]!r} for {kind}")
    return {"kind": kind, **params}


def scalar_score(m: dict, sc: dict) -> float:
    """Higher is better."""
    if m.get("top1_pct") is None:
        return -WORST
    if sc["kind"] == "acc-lat":
        return m["top1_pct"] - sc["alpha"] * m["latency_ms"]
    return m["top1_pct"] * (m["latency_ms"] / sc["target_ms"]) ** sc["w"]


# ---------------------------------------------------------------------- fronts
def objective_matrix(rows, objectives) -> np.ndarray:
    """Minimization form; a failed candidate gets WORST in every column."""
    def val(r, o):
        col, sign = OBJECTIVE_COLUMNS[o]
        v = r["metrics"].get(col)
        return WORST if v is None else sign * v
    return np.array([[val(r, o) for o in objectives] for r in rows], float).reshape(len(rows), len(objectives))


def violations(rows) -> np.ndarray:
    return np.array([r["metrics"]["violation"] for r in rows], float)


def pareto_front(rows, objectives) -> list[dict]:
    """The feasible non-dominated rows (all rows ranked if none is feasible)."""
    if not rows:
        return []
    front = first_front(objective_matrix(rows, objectives), violations(rows))
    return [rows[i] for i in front]


def front_hypervolume(rows, objectives, ref) -> float:
    feas = [r for r in rows if r["metrics"]["violation"] <= 0]
    return hypervolume(objective_matrix(feas, objectives), ref) if feas else 0.0


@dataclass
class SearchResult:
    rows: list = field(default_factory=list)         # every evaluation: {"id", "genome", "metrics", "generation"}
    screened: list = field(default_factory=list)     # screened out (--screen): {"key", "genome", "predicted", "generation"}
    hypervolume: list = field(default_factory=list)  # (generation, evaluations, hypervolume) per generation
    objectives: tuple = ()
    seconds: float = 0.0
    scalarize: dict | None = None
    evaluated: int = 0                               # evaluations run here (not taken from the store)
    mapping_cache: object = field(default=None, repr=False, compare=False)   # the serial evaluator's (reports reuse it)
    layer_details: dict = field(default_factory=dict, repr=False, compare=False)  # front id -> compressed breakdown
    stages: list = field(default_factory=list)       # composed baselines: {"stage", "net", "budget", "rows": [a, b]}

    def front(self) -> list[dict]:
        if self.scalarize is not None:
            best = self.best()
            return [best] if best else []
        return pareto_front(self.rows, self.objectives)

    def best(self) -> dict | None:
        """The best design of a scalarized search (feasible first)."""
        if not self.rows:
            return None
        return min(self.rows, key=lambda r: (r["metrics"]["violation"], -scalar_score(r["metrics"], self.scalarize or
                                                                                      {"kind": "acc-lat", "alpha": 1.0})))


class Scorer:
    """Turns genomes into rows: takes them from the store when present, else evaluates them
    (serially or on an executor) and commits each result as it arrives."""

    def __init__(self, evaluate=None, *, store=None, executor=None, task=None, cfg_json: str | None = None):
        self.evaluate, self.store, self.executor, self.task, self.cfg_json = evaluate, store, executor, task, cfg_json
        self.listeners = []          # fn(row), called as each candidate's result is in (progress)
        self.details = {}            # row id -> compressed per-layer breakdown, from a detailed task
        # with ``details_objectives`` set, the breakdowns are pruned to the front of the rows
        # scored so far whenever more than ``details_limit`` are kept (a dominated or infeasible
        # row never returns to the front: rows are only added)
        self.details_objectives = None
        self.details_limit = 2048
        self._scored = []

    def _heard(self, r) -> None:
        for fn in self.listeners:
            fn(r)

    def __call__(self, rows: list[dict]) -> int:
        todo = []
        for r in rows:
            got = self.store.lookup(r["key"]) if self.store is not None else None
            if got is not None:
                r["metrics"], r["status"] = _metrics(got), got["status"]
                if got.get("earlier"):                  # a run being extended meets a row again
                    self.store.adopt(r["key"], r["id"], r["generation"])
                self._heard(r)
            else:
                todo.append(r)

        def done(i, out):
            r = todo[i]
            r["metrics"], r["status"], r["seconds"] = _metrics(out), out["status"], out["seconds"]
            if out.get("details") is not None:
                self.details[r["id"]] = out["details"]
            if self.store is not None:
                self.store.put(r["id"], r["genome"], out["metrics"], r["generation"], out["seconds"], out["status"],
                               out["error"], out["worker"], key=r["key"])
            self._heard(r)

        if self.executor is not None and self.executor.kind != "serial":
            self.executor.map(self.task, [(self.cfg_json, r["genome"]) for r in todo], done)
        else:
            for i, r in enumerate(todo):
                done(i, score_with(self.evaluate, r["genome"]))
        if self.details_objectives is not None:
            self._scored.extend(rows)
            if len(self.details) > self.details_limit:
                front = {r["id"] for r in pareto_front(self._scored, self.details_objectives)}
                self.details = {i: b for i, b in self.details.items() if i in front}
                self.details_limit = max(self.details_limit, 2 * len(self.details))
        return len(todo)


def _metrics(out: dict) -> dict:
    if out["metrics"] is not None:
        return out["metrics"]
    return {"violation": FAILED_VIOLATION, "error": out.get("error")}


# ---------------------------------------------------------------------- algorithms
class HypervolumeLog:
    """A callback: appends (generation, evaluations, hypervolume of the feasible front) to the
    result's ``hypervolume`` after every generation."""

    def __init__(self, objectives, ref):
        self.objectives, self.ref = objectives, ref
        self._seen = 0                       # rows of the result already folded into the front
        self._front = np.zeros((0, len(objectives)))     # their feasible non-dominated points

    def __call__(self, res: "SearchResult", gen: int) -> None:
        # incremental: the feasible front so far plus the new rows, so a long run costs O(new rows)
        # per generation, not O(all rows); the hypervolume of the feasible non-dominated points is
        # that of all feasible points (dominated points add no volume)
        new = [r for r in res.rows[self._seen:] if r["metrics"]["violation"] <= 0]
        self._seen = len(res.rows)
        if new:
            F = np.vstack([self._front, objective_matrix(new, self.objectives)])
            self._front = F[first_front(F)]
        hv = hypervolume(self._front, self.ref) if len(self._front) else 0.0
        res.hypervolume.append((gen, len(res.rows), hv))


class ProgressBar:
    """A callback: a tqdm bar of the candidates, moved by each result as it comes in (``tick``,
    a listener of the :class:`Scorer`; tqdm shows the rate), with the generation and the
    hypervolume of the front so far updated after every generation."""

    def __init__(self, budget: int, desc: str, start: int = 0):
        from tqdm import tqdm
        self.bar, self.start = tqdm(total=budget, desc=desc, unit="cand", smoothing=0.1), start

    def tick(self, row=None) -> None:
        self.bar.update(1)

    def __call__(self, res: "SearchResult", gen: int) -> None:
        self.bar.n = len(res.rows) - self.start
        self.bar.set_postfix(gen=gen, hv=f"{res.hypervolume[-1][2]:.4g}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class Algorithm:
    """A search strategy, registered by name in ``ALGORITHMS``: ``run(space, evaluate, **options)``
    returns a :class:`SearchResult`."""
    name = ""

    def run(self, space, evaluate=None, *, scalarize=None, fixed_net=None, **kw) -> "SearchResult":
        raise NotImplementedError


class Generational(Algorithm):
    """A population search (``run_search``): an initial random population, then one generation
    after another from ``next_population`` until the budget is spent."""
    scalar = False               # ranks by one scalar score (``scalarize``) instead of the objectives

    def ranking(self, rows, objectives, sc) -> np.ndarray:
        """The matrix (minimization form) that ranks ``rows``."""
        return objective_matrix(rows, objectives)

    def next_population(self, space, pop, rng, score, fix, F_of, *, population, mutation, crossover) -> list:
        raise NotImplementedError

    def run(self, space, evaluate=None, *, scalarize=None, fixed_net=None, **kw) -> "SearchResult":
        return run_search(space, evaluate, algorithm=self, scalarize=scalarize, **kw)


class NSGA2(Generational):
    """NSGA-II: binary tournaments on (rank, crowding), crossover and mutation, then the best of
    parents and children survive."""
    name = "nsga2"

    def next_population(self, space, pop, rng, score, fix, F_of, *, population, mutation, crossover,
                        screen=None, factor: int = 1) -> list:
        F, v = F_of(pop), violations(pop)
        rank, crowd = rank_and_crowding(F, v)
        n = population * factor              # with screening: factor x more children, screened
        parents = binary_tournament(rank, crowd, rng, 2 * n)
        kids = []
        for i in range(n):
            a, b = pop[parents[2 * i]]["genome"], pop[parents[2 * i + 1]]["genome"]
            child = space.crossover(a, b, rng) if rng.random() < crossover else a
            kids.append(fix(space.mutate(child, rng, mutation)))
        if screen is not None:
            kids = screen(kids, population)
        kids = score(kids)
        ids = {p["id"] for p in pop}
        union = pop + [k for k in kids if k["id"] not in ids and not ids.add(k["id"])]
        keep = select_survivors(F_of(union), violations(union), population)
        return [union[i] for i in keep]


class Scalar(NSGA2):
    """NSGA-II's operators on one scalar score (``acc-lat`` or MnasNet's ``mnas``)."""
    name = "scalar"
    scalar = True

    def ranking(self, rows, objectives, sc) -> np.ndarray:
        return np.array([[-scalar_score(r["metrics"], sc)] for r in rows], float).reshape(len(rows), 1)


class RandomSearch(Generational):
    """A fresh random population every generation."""
    name = "random"

    def next_population(self, space, pop, rng, score, fix, F_of, *, population, mutation, crossover,
                        screen=None, factor: int = 1) -> list:
        return score([fix(space.sample(rng)) for _ in range(population)])


class Sequential(Algorithm):
    """The sequential-design baseline (``run_sequential``)."""
    name = "sequential"

    def run(self, space, evaluate=None, *, scalarize=None, fixed_net=None, **kw) -> "SearchResult":
        return run_sequential(space, evaluate, **kw)


class SequentialTopK(Algorithm):
    """The stronger sequential baseline (``run_sequential_topk``): NAS on the baseline hardware,
    then a hardware search for each of the ``k`` most accurate networks of the NAS front."""
    name = "sequential-topk"

    def run(self, space, evaluate=None, *, scalarize=None, fixed_net=None, k: int = 3, **kw) -> "SearchResult":
        return run_sequential_topk(space, evaluate, k=k, **kw)


class HardwareOnly(Algorithm):
    """The hardware-only baseline for one fixed network (``run_hardware_only``)."""
    name = "hw-only"

    def run(self, space, evaluate=None, *, scalarize=None, fixed_net=None, **kw) -> "SearchResult":
        return run_hardware_only(space, evaluate, net=fixed_net, **kw)


ALGORITHMS = {a.name: a for a in (NSGA2(), Scalar(), RandomSearch(), Sequential(), SequentialTopK(), HardwareOnly())}


def run_search(space: JointSpace, evaluate=None, *, algorithm: str = "nsga2", budget: int = 200,
               population: int = 24, seed: int = 0, mutation: float = 0.08, crossover: float = 0.9,
               objectives=None, scalarize: dict | str | None = None, progress=False, fixed_hw: dict | None = None,
               fixed_net: dict | None = None, initial: list | None = None, scorer: Scorer | None = None,
               result: SearchResult | None = None, first_generation: int = 0, callbacks=(),
               screen: int = 0, screener=None, time_limit_s: float | None = None) -> SearchResult:
    """``budget`` candidate evaluations of a generational ``algorithm`` (a name of ``ALGORITHMS`` or
    a :class:`Generational` object). ``fixed_hw`` / ``fixed_net`` freeze one half of the genome
    (the sequential and hardware-only baselines; ``fixed_hw`` also gives a network-only search on
    one accelerator). ``time_limit_s``: also stop once this many seconds of wall time have passed
    (no new candidate is started after it; the one running then finishes), so that searches can be
    compared at equal time; ``budget`` then only caps the count. ``result`` continues an earlier result (its rows
    count towards nothing here; ids continue). ``screen`` K > 0 with a ``screener``
    (``codesign.search.screening``): each generation breeds K x ``population`` children and only
    the best ``population`` by their predicted figures are evaluated (``budget`` counts those)."""
    alg = ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else algorithm
    if not isinstance(alg, Generational):
        raise ValueError(f"unknown algorithm {algorithm!r}")
    objectives = tuple(objectives or space.objectives)
    sc = parse_scalarize(scalarize) if (alg.scalar and not isinstance(scalarize, dict)) else scalarize
    scorer = scorer or Scorer(evaluate)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    res = result or SearchResult(objectives=objectives, scalarize=sc if alg.scalar else None)
    start = len(res.rows)
    seen = {r["key"]: r for r in res.rows}
    ref = space.reference_point(objectives)

    def fix(g):
        if fixed_hw is not None:
            g = {"net": g["net"], "hw": fixed_hw}
        if fixed_net is not None:
            g = {"net": fixed_net, "hw": g["hw"]}
        return g

    def out_of_time() -> bool:
        return time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s

    # with a time limit and serial scoring, candidates are scored one at a time so that the limit
    # is checked before each (an executor gets the generation's batch at once)
    ex = getattr(scorer, "executor", None)
    one_by_one = time_limit_s is not None and (ex is None or ex.kind == "serial")

    def score(genomes, gen):
        out, new = [], []
        for g in genomes:
            key = genome_key(g)
            if key in seen:                            # identical candidate: reuse, costs nothing
                out.append(seen[key])
                continue
            if len(res.rows) - start >= budget or out_of_time():
                break
            row = {"id": len(res.rows), "key": key, "genome": g, "metrics": None, "generation": gen}
            res.rows.append(row)
            seen[key] = row
            out.append(row)
            if one_by_one:
                res.evaluated += scorer([row])
            else:
                new.append(row)
        res.evaluated += scorer(new)
        return out

    def F_of(rows):
        return alg.ranking(rows, objectives, sc)

    bar = ProgressBar(budget, f"{alg.name} search", start) if progress else None
    callbacks = [HypervolumeLog(objectives, ref), *(callbacks or ()), *([bar] if bar else [])]
    if bar is not None:
        scorer.listeners.append(bar.tick)

    def record(gen):
        for cb in callbacks:
            cb(res, gen)

    def screened(kids, n):
        """The ``n`` children to evaluate exactly: the new distinct ones ranked on predicted
        figures (non-dominated sorting and crowding, as the survivors are), the rest kept aside."""
        new, keys = [], set()
        for g in kids:
            k = genome_key(g)
            if k not in seen and k not in keys:
                keys.add(k)
                new.append((k, g))
        if len(new) <= n:
            return [g for _, g in new]
        pred = [{"metrics": m} for m in screener([g for _, g in new])]
        keep = set(select_survivors(F_of(pred), violations(pred), n))
        for i, (k, g) in enumerate(new):
            if i not in keep:
                res.screened.append({"key": k, "genome": g, "predicted": pred[i]["metrics"], "generation": gen})
        return [new[i][1] for i in sorted(keep)]

    screen_kw = {"screen": screened, "factor": int(screen)} if screen and screener is not None else {}
    gen = first_generation
    init = [fix(g) for g in (initial or [])]
    pop = score(init + [fix(space.sample(rng)) for _ in range(population - len(init))], gen)
    record(gen)
    stall = 0
    while len(res.rows) - start < budget and stall < 50 and not out_of_time():
        gen += 1
        before = len(res.rows)
        pop = alg.next_population(space, pop, rng, lambda genomes: score(genomes, gen), fix, F_of,
                                  population=population, mutation=mutation, crossover=crossover, **screen_kw)
        stall = stall + 1 if len(res.rows) == before else 0    # a converged population: stop
        record(gen)
    for cb in callbacks:
        if hasattr(cb, "close"):
            cb.close()
    if bar is not None:
        scorer.listeners.remove(bar.tick)
    res.seconds += time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------- baselines
def run_sequential(space: JointSpace, evaluate=None, *, budget: int = 200, seed: int = 0,
                   baseline_hw: dict | None = None, **kw) -> SearchResult:
    """Sequential design: NAS on a fixed accelerator (half the budget), then hardware search for
    the chosen network (its most accurate feasible design) with the rest."""
    hw0 = baseline_hw or space.baseline
    if hw0 is None:
        from accelerators.errors import SpecError
        raise SpecError("baseline", "the space has no baseline hardware for the sequential search")
    first = budget // 2
    res = run_search(space, evaluate, budget=first, seed=seed, fixed_hw=hw0, **kw)
    feas = [r for r in res.rows if r["metrics"]["violation"] <= 0] or res.rows
    chosen = max(feas, key=lambda r: r["metrics"].get("top1_pct") or -WORST)["genome"]["net"]
    gen = res.hypervolume[-1][0] + 1 if res.hypervolume else 0
    return run_search(space, evaluate, budget=budget - len(res.rows), seed=seed + 1, fixed_net=chosen, result=res,
                      first_generation=gen, initial=[{"net": chosen, "hw": hw0}], **kw)


def run_sequential_topk(space: JointSpace, evaluate=None, *, budget: int = 200, seed: int = 0, k: int = 3,
                        baseline_hw: dict | None = None, **kw) -> SearchResult:
    """Sequential design with k networks: NAS on the fixed baseline accelerator with half the
    budget (as ``run_sequential``), then a hardware search for each of the ``k`` most accurate
    feasible networks of the NAS front (fewer when the front has fewer), the rest of the budget
    split evenly between them (the first ones get the remainder), seeds ``seed + 1 + i``. The same
    total budget as every other method; ``result.stages`` records each stage's network, budget
    and row range. Candidates met again cost nothing (each hardware search starts from its
    network on the baseline hardware, already evaluated)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    hw0 = baseline_hw or space.baseline
    if hw0 is None:
        from accelerators.errors import SpecError
        raise SpecError("baseline", "the space has no baseline hardware for the sequential search")
    first = budget // 2
    res = run_search(space, evaluate, budget=first, seed=seed, fixed_hw=hw0, **kw)
    res.stages.append({"stage": "nas", "net": None, "budget": first, "rows": [0, len(res.rows)]})
    nets = topk_networks(res.rows, res.objectives, k)
    rest = budget - len(res.rows)
    for i, net in enumerate(nets):
        share = rest // len(nets) + (1 if i < rest % len(nets) else 0)
        gen = res.hypervolume[-1][0] + 1 if res.hypervolume else 0
        a = len(res.rows)
        run_search(space, evaluate, budget=share, seed=seed + 1 + i, fixed_net=net, result=res,
                   first_generation=gen, initial=[{"net": net, "hw": hw0}], **kw)
        res.stages.append({"stage": "hw", "net": net, "budget": share, "rows": [a, len(res.rows)]})
    return res


def topk_networks(rows, objectives, k: int) -> list[dict]:
    """The networks of the ``k`` most accurate feasible designs of the front of ``rows`` (distinct
    networks, ties by id); the most accurate feasible row's when nothing is feasible on the front."""
    front = [r for r in pareto_front(rows, objectives) if r["metrics"]["violation"] <= 0
             and r["metrics"].get("top1_pct") is not None]
    if not front:
        feas = [r for r in rows if r["metrics"]["violation"] <= 0] or rows
        front = [max(feas, key=lambda r: r["metrics"].get("top1_pct") or -WORST)]
    out, seen = [], set()
    for r in sorted(front, key=lambda r: (-r["metrics"]["top1_pct"] if r["metrics"].get("top1_pct") is not None
                                          else WORST, r["id"])):
        key = json.dumps(r["genome"]["net"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(r["genome"]["net"])
        if len(out) == k:
            break
    return out


def run_hardware_only(space: JointSpace, evaluate=None, *, net: dict | None = None, **kw) -> SearchResult:
    """Hardware search for one fixed network (default: the largest subnet)."""
    net = net or space.net.max_genome()
    return run_search(space, evaluate, fixed_net=space.net.canonical(net), **kw)


def front_table(rows) -> "pandas.DataFrame":
    """One row per design: genome columns, then metric columns with units in their names."""
    import pandas as pd
    recs = []
    for r in rows:
        g, m = r["genome"], r["metrics"] or {}
        rec = {"id": r["id"], "generation": r.get("generation")}
        for key in ("ks", "e", "d"):
            rec.update({f"net_{key}_{i}": v for i, v in enumerate(g["net"][key])})
        rec["net_r"] = g["net"]["r"]
        hw = g["hw"]
        for k in sorted(hw, key=lambda k: (HW_ORDER.index(k) if k in HW_ORDER else len(HW_ORDER), k)):
            if k == "sizes_kib":
                rec.update({f"hw_size_{lv}_kib": s for lv, s in hw[k].items()})
            else:
                rec[f"hw_{k}"] = hw[k]
        for k in sorted(m, key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else len(METRIC_ORDER), k)):
            rec[k] = m[k]
        rec["genome_json"] = json.dumps(g, sort_keys=True)
        recs.append(rec)
    return pd.DataFrame(recs)
