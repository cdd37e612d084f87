"""A search run directory: ``config.json`` (everything needed to rerun it: the resolved space,
the evaluator, the algorithm and its options), ``store.sqlite`` (every evaluated candidate,
committed as it arrives) and the outputs written at the end (``front.csv``, ``all.csv``,
``hypervolume.csv``).

``start_search(DIR, config)`` creates a run or continues one with the same config;
``resume_search(DIR)`` continues from DIR's own config. Either way the seeded search is replayed
and every stored candidate is taken from the store, so the final front equals an uninterrupted
run's and nothing is evaluated twice.

Extending a run: ``resume_search(DIR, budget=N)`` (``codesign search --resume DIR --budget N``),
or ``start_search`` with a configuration that differs from the stored one only in its budget,
sets the run's budget to N (``config.json`` keeps the earlier budgets under ``budget_history``)
and replays the seeded search with it. The algorithms draw every random number independently of
the budget (a generation's candidates are drawn whole, then cut at the budget), so the first
candidates of a longer run are the candidates of the shorter one: NSGA-II, scalar, random and
hw-only runs extended to N reuse every stored candidate and end with the front of a fresh run
of budget N with the same seed. The sequential baseline splits its budget in halves (NAS, then
hardware), so an extended sequential run also ends with the fresh run's front, but re-evaluates
the part of its hardware phase that moved."""
from __future__ import annotations

import json
from pathlib import Path

from accelerators.errors import SpecError

from codesign.search.algorithms import ALGORITHMS, Scorer, SearchResult, front_hypervolume, front_table
from codesign.search.problem import (ACCURACY_SOURCES, build_evaluator, check_scoring_files, evaluate_candidate,
                                     evaluate_candidate_detailed, file_sha256)
from codesign.search.executors import Executor
from codesign.space.joint import OBJECTIVES, space_from_dict
from codesign.rundir.base import CONFIG, create_or_check, read_config_json
from codesign.rundir.store import open_run

SEARCH_ALGORITHMS = tuple(ALGORITHMS)
RUN_KEYS = ("algorithm", "budget", "population", "seed", "mutation", "crossover", "objectives", "scalarize",
            "fixed_net")


INITIAL_ALGORITHMS = ("nsga2", "scalar", "random")


def baseline_genome(space) -> dict:
    """The space's baseline design: the largest subnet on its ``baseline`` accelerator."""
    if space.baseline is None:
        raise SpecError("--initial", "the space has no baseline accelerator (its YAML's baseline:)")
    return {"net": space.net.canonical(space.net.max_genome()), "hw": dict(space.baseline)}


def initial_genomes(space, initial, population: int | None = None, field: str = "--initial") -> list:
    """The first generation's given genomes, validated and canonical: a list of joint genomes
    (``{"net": ..., "hw": ...}``), no two alike and, with ``population``, at most that many."""
    if not isinstance(initial, list) or not initial:
        raise SpecError(field, "must be a non-empty list of joint genomes ({\"net\": ..., \"hw\": ...})")
    if population is not None and len(initial) > population:
        raise SpecError(field, f"{len(initial)} genomes, more than the population ({population})")
    out, seen = [], set()
    for i, g in enumerate(initial):
        if not isinstance(g, dict):
            raise SpecError(f"{field}[{i}]", "must be an object {\"net\": ..., \"hw\": ...}")
        g = space.validate(g, f"{field}[{i}]")
        g = {"net": space.net.canonical(g["net"]), "hw": g["hw"]}
        key = json.dumps(g, sort_keys=True)
        if key in seen:
            raise SpecError(f"{field}[{i}]", "the same genome twice")
        seen.add(key)
        out.append(g)
    return out


def search_config(evaluator: dict, *, algorithm="nsga2", budget=200, population=24, seed=0, mutation=0.08,
                  crossover=0.9, objectives=None, scalarize=None, fixed_net=None, screen=0, topk=None,
                  initial=None) -> dict:
    space = space_from_dict(evaluator["space"], evaluator.get("space_name", "space"))
    if algorithm not in SEARCH_ALGORITHMS:
        raise SpecError("--algorithm", f"unknown algorithm {algorithm!r} (one of {', '.join(SEARCH_ALGORITHMS)})")
    objectives = list(objectives or space.objectives)
    for o in objectives:
        if o not in OBJECTIVES:
            raise SpecError("--objectives", f"unknown objective {o!r} (one of {', '.join(OBJECTIVES)})")
    for name, v, lo in (("--budget", budget, 1), ("--population", population, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise SpecError(name, f"must be an integer >= {lo}, got {v!r}"[:120])
    for name, v in (("--mutation", mutation), ("--crossover", crossover)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise SpecError(name, f"must be within [0, 1], got {v!r}")
    if algorithm == "scalar":
        from codesign.search.algorithms import parse_scalarize
        scalarize = parse_scalarize(scalarize)
    if fixed_net is not None:
        fixed_net = space.net.canonical(space.net.validate(fixed_net, where="--net"))
    cfg = {"evaluator": evaluator, "algorithm": algorithm, "budget": budget, "population": population,
           "seed": seed, "mutation": mutation, "crossover": crossover, "objectives": objectives,
           "scalarize": scalarize, "fixed_net": fixed_net}
    if screen:                     # (absent when off: configs of earlier runs stay valid)
        if not isinstance(screen, int) or isinstance(screen, bool) or screen < 2 or screen > 1000:
            raise SpecError("--screen", f"must be an integer within [2, 1000], got {screen!r}")
        if algorithm not in ("nsga2", "scalar"):
            raise SpecError("--screen", f"screening breeds children: nsga2 or scalar, not {algorithm}")
        from codesign.search.screening import Screener, screening_predictor_path
        Screener(space, evaluator)                        # fail now (accuracy source, predictor, space)
        cfg["screen"] = screen
        # which cost predictor chose the evaluated children (checked when the run continues)
        cfg["screen_predictor_sha256"] = file_sha256(screening_predictor_path(evaluator))
    if initial is not None:        # (absent when not given: configs of earlier runs stay valid)
        if algorithm not in INITIAL_ALGORITHMS:
            raise SpecError("--initial", f"a first generation is given to {', '.join(INITIAL_ALGORITHMS)}, not {algorithm}")
        cfg["initial"] = initial_genomes(space, initial, population)
    if algorithm == "sequential-topk":          # (only there: configs of other runs stay as they were)
        topk = 3 if topk is None else topk
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise SpecError("--topk", f"must be an integer >= 1, got {topk!r}"[:120])
        cfg["topk"] = topk
    return cfg


def start_search(directory, config: dict, *, workers: int = 1, scheduler=None, progress: bool = False,
                 log=None, details: bool = False) -> SearchResult:
    """Run ``config`` in ``directory``: a new run, the same run continued, or (when only the
    budget differs from the stored configuration) the stored run extended to the new budget;
    ``log(text)`` hears of an extension (default: print to stderr). ``details``: worker processes
    also send each candidate's per-layer breakdown; the result keeps those of its front
    (``SearchResult.layer_details``, for the report: see :func:`_execute`)."""
    d = Path(directory)
    if (d / CONFIG).is_file():
        stored = read_config(d)
        new = json.loads(json.dumps(config))
        if stored != new and _without_budget(stored) == _without_budget(new):
            return resume_search(d, budget=new["budget"], workers=workers, scheduler=scheduler, progress=progress,
                                 log=log, details=details)
    d = create_or_check(directory, config, read_config, what="run", indent=2)
    return _execute(d, config, workers=workers, scheduler=scheduler, progress=progress, details=details)


def _without_budget(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("budget", "budget_history")}


def read_config(directory) -> dict:
    cfg = read_config_json(directory)
    cp = str(Path(directory) / CONFIG)
    if not isinstance(cfg, dict) or "evaluator" not in cfg or any(k not in cfg for k in RUN_KEYS):
        raise SpecError("config", "incomplete run configuration", cp)
    check_evaluator_config(cfg, cp)        # what every reader (export, report, verify ...) builds on
    return cfg


def check_evaluator_config(cfg: dict, file: str) -> None:
    """The stored evaluator (space, accuracy source, mapper budget): a hand-edited mistake there
    is refused naming the file and the field, by every command that reads the run."""
    ev = cfg["evaluator"]
    if not isinstance(ev, dict) or not isinstance(ev.get("space"), dict):
        raise SpecError("config.evaluator.space", "missing or not a mapping", file)
    try:
        space_from_dict(ev["space"], str(ev.get("space_name", "space")))
    except SpecError as e:
        raise SpecError(f"config.evaluator.space.{e.field}", e.message, file) from None
    acc = ev.get("accuracy")
    if not isinstance(acc, dict) or not isinstance(acc.get("source"), str) or \
            acc["source"] not in ACCURACY_SOURCES and not acc["source"].startswith("proxy:"):
        raise SpecError("config.evaluator.accuracy", "missing or unknown accuracy source", file)
    for k in ("predictor", "weights", "data"):
        if acc.get(k) is not None and not isinstance(acc[k], str):
            raise SpecError(f"config.evaluator.accuracy.{k}", "must be a path (string) or null", file)
    from accelerators.limits import check_int
    try:
        check_int(ev.get("mapper_budget"), "config.evaluator.mapper_budget", limit="mapper_budget", file=file)
    except SpecError as e:
        raise e.in_file(file)


def check_screening_file(cfg: dict, file: str | None = None) -> None:
    """A screened run continues only with the cost predictor that chose its evaluated children
    (``screen_predictor_sha256``, recorded since 2026-12-03; earlier runs have none: not checked):
    with another, the replayed search would keep other children than the stored run did."""
    want = cfg.get("screen_predictor_sha256")
    if not cfg.get("screen") or want is None:
        return
    from codesign.search.screening import screening_predictor_path
    path = screening_predictor_path(cfg["evaluator"])
    if not path.is_file():
        raise SpecError("config.screen_predictor_sha256", f"the run was screened with {path}, which is missing", file)
    got = file_sha256(path)
    if got != want:
        raise SpecError("config.screen_predictor_sha256",
                        f"{path} changed since the run started (sha256 {want}, now {got}): the run's children were "
                        "screened with the old file; restore it, or start a new run in another --out", file)


def check_config(cfg: dict, file: str) -> None:
    """A stored run configuration has the types and ranges ``search_config`` gives (a hand-edited
    ``"budget": "400"`` is refused, naming the file and the field)."""
    check_evaluator_config(cfg, file)
    ev = cfg["evaluator"]
    from accelerators.limits import check_int
    try:
        check_int(cfg["budget"], "config.budget", limit="search_budget", file=file)
        check_int(cfg["population"], "config.population", lo=2, limit="population", file=file)
        check_int(cfg["seed"], "config.seed", lo=0, file=file)
    except SpecError as e:
        raise e.in_file(file)
    hist = cfg.get("budget_history", [])
    if not isinstance(hist, list) or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in hist):
        raise SpecError("config.budget_history", "must be a list of earlier budgets (integers >= 1)", file)
    for k in ("mutation", "crossover"):
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise SpecError(f"config.{k}", f"must be a number within [0, 1], got {v!r}"[:120], file)
    if cfg["algorithm"] not in SEARCH_ALGORITHMS:
        raise SpecError("config.algorithm", f"unknown algorithm {cfg['algorithm']!r}"[:120], file)
    if not isinstance(cfg["objectives"], list) or not cfg["objectives"] or \
            any(not isinstance(o, str) or o not in OBJECTIVES for o in cfg["objectives"]):
        raise SpecError("config.objectives", f"must be a list out of {', '.join(OBJECTIVES)}", file)
    try:
        search_config(ev, algorithm=cfg["algorithm"], budget=cfg["budget"], population=cfg["population"],
                      seed=cfg["seed"], mutation=cfg["mutation"], crossover=cfg["crossover"],
                      objectives=cfg["objectives"], scalarize=_scalarize_text(cfg.get("scalarize")),
                      fixed_net=cfg.get("fixed_net"), topk=cfg.get("topk"), initial=cfg.get("initial"))
    except SpecError as e:
        raise SpecError(f"config.{e.field.lstrip('-')}", e.message, file) from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise SpecError("config", f"not a valid run configuration ({type(e).__name__}: {str(e)[:100]})", file) from None


def _scalarize_text(sc):
    """``search_config`` parses --scalarize text; a stored (parsed) one is checked as it is."""
    if isinstance(sc, dict):
        kind = sc.get("kind")
        return f"{kind}:" + ",".join(f"{k}={v}" for k, v in sc.items() if k != "kind")
    if sc is None or isinstance(sc, str):
        return sc
    raise TypeError(f"scalarize: {sc!r}"[:80])


def resume_search(directory, *, budget: int | None = None, workers: int = 1, scheduler=None,
                  progress: bool = False, log=None, details: bool = False) -> SearchResult:
    """Continue the run in ``directory`` from its own configuration; with ``budget`` N (other
    than the stored one) extend it to N candidates first (module docstring)."""
    from codesign.rundir.store import check_run_store
    d = Path(directory)
    cfg = read_config(d)
    check_config(cfg, str(d / CONFIG))   # export and plot read what they need; a resume needs all of it
    check_run_store(d)                   # a broken row is refused before anything runs or is written
    check_scoring_files(cfg["evaluator"], str(d / CONFIG))   # so is another predictor file
    check_screening_file(cfg, str(d / CONFIG))
    if budget is not None and budget != cfg["budget"]:
        from accelerators.limits import check_int
        check_int(budget, "--budget", limit="search_budget")
        old = cfg["budget"]
        cfg = {**cfg, "budget": budget, "budget_history": [*cfg.get("budget_history", []), old]}
        store = open_run(d, create=True)
        try:
            store.retire()               # the replay adopts what it meets again (codesign.rundir.store)
        finally:
            store.close()
        write_config(d, cfg)
        (log or _stderr)(f"note: extending the run in {d} from budget {old} to {budget} (stored candidates are "
                         "reused; the seeded search is replayed with the new budget)")
    return _execute(d, cfg, workers=workers, scheduler=scheduler, progress=progress, details=details)


def write_config(d: Path, cfg: dict) -> None:
    """Replace ``d/config.json`` atomically."""
    tmp = (d / CONFIG).with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2))
    tmp.replace(d / CONFIG)


def _stderr(text: str) -> None:
    import sys
    print(text, file=sys.stderr)


def _execute(d: Path, cfg: dict, *, workers, scheduler, progress, details: bool = False) -> SearchResult:
    """Run the search. A serial run keeps its evaluator's mapping cache on the result (the
    report looks its front designs' layers up there); with worker processes and ``details``,
    each task also returns its candidate's per-layer breakdown (``evaluate_candidate_detailed``:
    about 4 ms and 2 KB per candidate, kept in memory during the run, pruned to the front of the
    rows so far past 2,048 of them) and the result keeps those of its front. Candidates taken from the store (a resumed run) have none: the report maps
    them."""
    ev_cfg = cfg["evaluator"]
    check_scoring_files(ev_cfg, str(d / CONFIG))     # in this process, before any worker starts
    check_screening_file(cfg, str(d / CONFIG))
    space = space_from_dict(ev_cfg["space"], ev_cfg.get("space_name", "space"))
    store = open_run(d, create=True)
    try:
        with Executor(workers, scheduler) as ex:
            evaluate = build_evaluator(ev_cfg) if ex.kind == "serial" else None
            task = evaluate_candidate_detailed if details and ex.kind != "serial" else evaluate_candidate
            scorer = Scorer(evaluate, store=store, executor=ex, task=task,
                            cfg_json=json.dumps(ev_cfg, sort_keys=True))
            if task is evaluate_candidate_detailed and cfg.get("scalarize") is None:
                scorer.details_objectives = cfg["objectives"]      # memory: the front's breakdowns only
            kw = dict(budget=cfg["budget"], population=cfg["population"], seed=cfg["seed"],
                      mutation=cfg["mutation"], crossover=cfg["crossover"], objectives=cfg["objectives"],
                      progress=progress, scorer=scorer)
            if cfg.get("screen"):
                from codesign.search.screening import Screener
                kw.update(screen=cfg["screen"], screener=Screener(space, ev_cfg))
            if cfg.get("topk"):
                kw["k"] = cfg["topk"]
            if cfg.get("initial"):
                kw["initial"] = cfg["initial"]
            res = ALGORITHMS[cfg["algorithm"]].run(space, evaluate, scalarize=cfg.get("scalarize"),
                                                   fixed_net=cfg.get("fixed_net"), **kw)
            res.mapping_cache = getattr(getattr(evaluate, "cost", None), "cache", None)
            front = {r["id"] for r in res.front()}
            res.layer_details = {i: b for i, b in scorer.details.items() if i in front}
        write_outputs(d, res, population=cfg["population"], constraints=space.constraints)
        return res
    finally:
        store.close()


def hypervolume_table(res: SearchResult, population: int | None = None):
    """``hypervolume.csv``: one row per generation with ``evaluations`` (all so far), ``candidates``
    (evaluated in that generation), ``hypervolume`` (of the feasible front so far) and ``partial``:
    True for a last generation the budget cut short (fewer candidates than ``population``, e.g.
    the 1 candidate of budget 9 with population 4). Its hypervolume is that of the front after
    those evaluations: honest, but not a whole generation's step."""
    import pandas as pd
    t = pd.DataFrame(res.hypervolume, columns=["generation", "evaluations", "hypervolume"])
    t.insert(2, "candidates", t["evaluations"].diff().fillna(t["evaluations"]).astype(int))
    t["partial"] = False
    if population and len(t) and t["candidates"].iloc[-1] < population:
        t.loc[t.index[-1], "partial"] = True
    return t


def measured_columns(rows, measured: dict, source: str) -> list[dict]:
    """Per row: ``top1_predicted`` (the search's figure, when it came from the predictor),
    ``top1_measured`` and ``top1_error_pct`` (predicted - measured) where it was measured."""
    out = []
    for r in rows:
        k = (r.get("key"), int(r["genome"]["hw"]["bits"]))
        rec = {}
        top1 = (r["metrics"] or {}).get("top1_pct")
        if source == "predictor":
            rec["top1_predicted"] = top1
        if k in measured:
            rec["top1_measured"] = measured[k]
            if source == "predictor" and top1 is not None:
                rec["top1_error_pct"] = top1 - measured[k]
        out.append(rec)
    return out


def run_tables(res: SearchResult, population: int | None = None, constraints=(), measured: dict | None = None,
               source: str = "") -> dict:
    """The run's tables as DataFrames: ``front`` and ``all`` (``front_table``; ``all`` with a
    ``violates`` column: the constraints of ``constraints``, the space's, that each design breaks,
    ``;``-joined, empty when feasible, ``failed`` without metrics; both with ``top1_predicted`` /
    ``top1_measured`` / ``top1_error_pct`` where ``measured`` {(key, bits): top-1} has the
    design, ``codesign.rundir.verify``) and ``hypervolume`` (:func:`hypervolume_table`)."""
    front, everything = front_table(res.front()), front_table(res.rows)
    if len(everything):
        from codesign.search.problem import violated_constraints
        pos = list(everything.columns).index("violation") + 1 if "violation" in everything.columns \
            else len(everything.columns)
        everything.insert(pos, "violates", [violated_constraints(constraints, r["metrics"]) for r in res.rows])
    if measured:
        import pandas as pd
        for table, rows in ((front, res.front()), (everything, res.rows)):
            extra = pd.DataFrame(measured_columns(rows, measured, source), index=table.index)
            at = list(table.columns).index("top1_pct") + 1 if "top1_pct" in table.columns else len(table.columns)
            for j, col in enumerate(c for c in ("top1_predicted", "top1_measured", "top1_error_pct") if c in extra):
                table.insert(at + j, col, extra[col])
    return {"front": front, "all": everything, "hypervolume": hypervolume_table(res, population)}


def write_outputs(d: Path, res: SearchResult, population: int | None = None, constraints=()) -> None:
    """``front.csv``, ``all.csv``, ``hypervolume.csv`` (:func:`run_tables`, with the run's
    re-measurements from its store) and, with screening, ``screened.csv``."""
    measured, source = _measurements(d)
    t = run_tables(res, population, constraints, measured, source)
    t["front"].to_csv(d / "front.csv", index=False)
    t["all"].to_csv(d / "all.csv", index=False)
    t["hypervolume"].to_csv(d / "hypervolume.csv", index=False)
    if res.screened:               # screened out: predicted figures only, never on a front
        t = front_table([{"id": i, "genome": r["genome"], "metrics": r["predicted"], "generation": r["generation"]}
                         for i, r in enumerate(res.screened)])
        t.insert(0, "figures", "predicted")
        t.to_csv(d / "screened.csv", index=False)


def _measurements(d: Path) -> tuple[dict, str]:
    """The run's latest re-measurements {(key, bits): top-1} and its accuracy source."""
    if not (d / "store.sqlite").is_file():
        return {}, ""
    store = open_run(d)
    try:
        measured = store.measured()
    finally:
        store.close()
    return measured, read_config(d)["evaluator"]["accuracy"]["source"] if measured else ""


def load_result(directory) -> SearchResult:
    """A finished or partial run, rebuilt from its store (for export, plots, notebooks)."""
    d = Path(directory)
    cfg = read_config(d)
    store = open_run(d)
    try:
        rows = store.rows()
    finally:
        store.close()
    for r in rows:
        if r["metrics"] is None:
            from codesign.search.problem import FAILED_VIOLATION
            r["metrics"] = {"violation": FAILED_VIOLATION, "error": r["error"]}
    space = space_from_dict(cfg["evaluator"]["space"], cfg["evaluator"].get("space_name", "space"))
    res = SearchResult(rows=rows, objectives=tuple(cfg["objectives"]),
                       scalarize=cfg.get("scalarize") if cfg["algorithm"] == "scalar" else None)
    ref = space.reference_point(res.objectives)
    gens = sorted({r["generation"] for r in rows})
    res.hypervolume = [(g, sum(1 for r in rows if r["generation"] <= g),
                        front_hypervolume([r for r in rows if r["generation"] <= g], res.objectives, ref)) for g in gens]
    return res


def load_run(directory):
    """(config, SearchResult) of a search run; every problem with the files is a SpecError."""
    d = Path(directory)
    cfg = read_config(d)
    if not (d / "store.sqlite").is_file():
        raise SpecError("run", "not a run directory (no store.sqlite)", str(d))
    try:
        res = load_result(d)
    except SpecError:
        raise
    except (KeyError, TypeError, ValueError) as e:        # readable SQLite, unreadable contents
        raise SpecError("store", f"corrupt run store ({type(e).__name__}: {e})", str(d / "store.sqlite")) from None
    return cfg, res
