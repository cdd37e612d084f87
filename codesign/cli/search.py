"""``codesign search``: the joint network-accelerator co-search, resumable (see
:mod:`codesign.search`, :mod:`codesign.rundir.search`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from codesign.artifacts import WEIGHTS_DIR
from codesign.space.genome import named_genome


DEFAULT_BUDGET = 200


def add_search_parser(sub) -> None:
    se = sub.add_parser("search", help="joint network-accelerator search (NSGA-II, scalarized, random, "
                        "or the sequential / hardware-only baselines); resumable")
    se.add_argument("--space", help="search space YAML (default specs/spaces/default.yaml)")
    se.add_argument("--objectives", help="comma list of accuracy, latency, energy, edp, area")
    se.add_argument("--budget", type=int, default=None,
                    help="candidate evaluations (default 200). With --resume DIR, or an --out run whose configuration "
                    "differs only in its budget: extend the run to this many. nsga2, scalar, random and hw-only then "
                    "reuse every stored candidate and end with the front of a fresh run of this budget and seed; "
                    "sequential ends with that front too but re-evaluates part of its hardware phase (its halves move)")
    se.add_argument("--population", type=int, default=24, help="candidates per generation")
    se.add_argument("--algorithm", choices=("nsga2", "scalar", "random", "sequential", "sequential-topk", "hw-only",
                                             "darts"),
                    default="nsga2", help="search algorithm (sequential: network first, then its accelerator; "
                    "sequential-topk: then accelerators for the 3 most accurate networks; hw-only: --net fixed; "
                    "darts: the differentiable search of codesign darts on one accelerator (--budget = its steps, "
                    "--lambda, --bits, --hw-space, --darts-args; needs --data; resume with codesign darts --resume)")
    se.add_argument("--lambda", dest="darts_lambda", default="0.1", help="with --algorithm darts: the cost weight "
                    "(codesign darts --lambda; a comma list sweeps a front)")
    se.add_argument("--bits", type=int, default=8, help="with --algorithm darts: the bit-width of the accelerator "
                    "and of the measured accuracy (codesign darts --bits)")
    se.add_argument("--hw-space", action="store_true", help="with --algorithm darts: relax the accelerator's genes "
                    "too (codesign darts --hw-space)")
    se.add_argument("--darts-args", default=None, help="with --algorithm darts: further codesign darts options as one "
                    "quoted string, e.g. \"--hw baseline --warmup-epochs 1 --entropy-reg 0.5\" (they win over the "
                    "ones derived here; --epochs E spreads --budget over E epochs, default 2)")
    se.add_argument("--scalarize", help="with --algorithm scalar: acc-lat:alpha=A (top1 - A*latency_ms) or "
                    "mnas:target_ms=T,w=-0.07 (top1*(latency/T)^w)")
    se.add_argument("--net", help="with --algorithm hw-only: the fixed network (JSON genome, max or min; default max)")
    se.add_argument("--initial", metavar="baseline|FILE", help="nsga2, scalar, random: start the first generation "
                    "from these genomes (the rest drawn at random): baseline (the largest subnet on the space's "
                    "baseline accelerator) or a JSON file holding a list of joint genomes {\"net\": ..., \"hw\": ...}")
    se.add_argument("--mutation", type=float, default=0.08, help="per-gene mutation probability")
    se.add_argument("--crossover", type=float, default=0.9, help="crossover probability per pair of parents")
    se.add_argument("--accuracy", default="predictor", metavar="{predictor,measured,naswot,macs,proxy:NAME}",
                    help="accuracy source: the shipped predictor, measured on the supernet (--data), or a "
                    "zero-shot proxy (naswot needs --data; macs needs nothing; proxy:NAME a proxy of the "
                    "study, e.g. proxy:trained:zen, or proxy:vote, needs --data)")
    se.add_argument("--predictor", help="accuracy predictor .npz (default: the shipped one)")
    se.add_argument("--weights", help="supernet state_dict for --accuracy measured / proxies (default: the shipped one)")
    se.add_argument("--data", help="data set root (train/test) for --accuracy measured, naswot, proxy:NAME")
    se.add_argument("--mapper-budget", type=int, default=1500, help="mapper evaluations per layer shape")
    se.add_argument("--cost", choices=("model", "predictor"), default="model",
                    help="latency/energy from the mapped model or the learned cost predictor (fast path)")
    se.add_argument("--cost-predictor", help="cost predictor .npz (default: the shipped one)")
    se.add_argument("--screen", type=int, default=0, metavar="K",
                    help="multi-fidelity: breed K x population children per generation, screen them with the "
                    "learned cost predictor and evaluate only the best population exactly (nsga2, scalar)")
    se.add_argument("--seed", type=int, default=0, help="random seed")
    se.add_argument("--out", default="runs/search", help="run directory (config.json, store.sqlite, front.csv)")
    se.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its own configuration (only "
                    "--budget, --workers, --scheduler and the output options may be given with it)")
    se.add_argument("--workers", type=int, default=1, help="local worker processes")
    se.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): evaluate on that cluster")
    se.add_argument("--no-plot", action="store_true", help="skip DIR/plots (Pareto front, hypervolume, "
                    "per-layer energy of the lowest-EDP design)")
    se.add_argument("--no-report", action="store_true", help="skip DIR/report.html (the interactive HTML report; "
                    "codesign report DIR writes it later)")
    se.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                    help="re-measure every front design on the supernet, on the validation split, and write "
                    "top1_measured beside top1_predicted in front.csv (default: on when --data is given and torch "
                    "is installed)")
    se.add_argument("--verify-images", type=int, metavar="N",
                    help="with --verify: measure on a class-balanced subset of N validation images (default: all "
                    "5,000)")
    se.add_argument("--quiet", action="store_true", help="no progress bars")
    se.set_defaults(func=cmd_search, _search_parser=se)

    ve = sub.add_parser("verify", help="re-measure the front of a search run on the supernet (validation split): "
                        "top1_measured in front.csv, the predictor's error on the front; resumable")
    ve.add_argument("run", metavar="DIR", help="search run directory")
    ve.add_argument("--data", help="data set root (default: the run's own --data)")
    ve.add_argument("--weights", help="supernet weights (default: the run's, else the shipped supernet)")
    ve.add_argument("--images", type=int, metavar="N", help="a class-balanced subset of N validation images "
                    "(default: all 5,000)")
    ve.add_argument("--quiet", action="store_true", help="no progress bar")
    ve.set_defaults(func=cmd_verify)

    am = sub.add_parser("add-measured", help="append a verified run's measured front designs to an accuracy-data "
                        "file (the active-learning loop: then train-predictor --extra-data FILE)")
    am.add_argument("run", metavar="DIR", help="search run directory, verified (codesign verify DIR --data D); "
                    "or a kept verified front (folder with front.csv and front_verification.json) or a co-search "
                    "benchmark's measured.jsonl")
    am.add_argument("--out", required=True, metavar="FILE",
                    help="accuracy-data JSONL to append to (created if missing; a (subnet, bit-width) it has is skipped)")
    am.set_defaults(func=cmd_add_measured)

    au = sub.add_parser("audit-screening", help="score a --screen run's screened-out children exactly and count "
                        "those the exact model puts on the front (designs screening would have lost); resumable")
    au.add_argument("run", metavar="DIR", help="search run directory made with --screen K")
    au.add_argument("--sample", type=int, metavar="N", help="a seeded sample of N screened-out children (default: all)")
    au.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    au.add_argument("--quiet", action="store_true", help="no progress bar")
    au.set_defaults(func=cmd_audit_screening)


def cmd_search(args) -> int:
    from codesign.rundir.search import resume_search, search_config, start_search
    if args.algorithm == "darts":
        return _cmd_darts(args)
    for flag, dest in (("--lambda", "darts_lambda"), ("--bits", "bits"), ("--hw-space", "hw_space"),
                       ("--darts-args", "darts_args")):
        parser = getattr(args, "_search_parser", None)
        if parser is not None and getattr(args, dest) != parser.get_default(dest):
            from accelerators.errors import SpecError
            raise SpecError(flag, "only with --algorithm darts")
    if args.verify_images is not None:             # before the search, not after it
        from accelerators.limits import check_int
        check_int(args.verify_images, "--verify-images", lo=10)
    if args.resume:
        _check_resume_options(args)
        out = Path(args.resume)
        res = resume_search(out, budget=args.budget, workers=args.workers, scheduler=args.scheduler,
                            progress=not args.quiet)
    else:
        from codesign.search.problem import evaluator_config
        from codesign.space.joint import read_space
        space_dict, name = read_space(args.space)
        if args.accuracy in ("measured", "naswot") and args.data:      # the data set, before the run starts
            from codesign.cli.inputs import check_dataset
            check_dataset(args.data, split="validation", min_images=64 if args.accuracy == "naswot" else 1)
        cost = None
        if args.cost == "predictor":
            from codesign.predictors.cost import CostPredictor
            from codesign.space.joint import space_from_dict
            cost = Path(args.cost_predictor) if args.cost_predictor else WEIGHTS_DIR / "cost_predictor.npz"
            CostPredictor.load(cost).check_space(space_from_dict(space_dict, name))   # fail now, not in a worker
        ev = evaluator_config(space_dict, name, args.accuracy, predictor=args.predictor, weights=args.weights,
                              data=args.data, mapper_budget=args.mapper_budget, cost_predictor=cost)
        if args.accuracy == "predictor":
            from codesign.predictors.accuracy import Predictor
            Predictor.load(args.predictor or WEIGHTS_DIR / "predictor.npz")      # fail now, not in a worker
        objectives = [o.strip() for o in args.objectives.split(",")] if args.objectives else None
        cfg = search_config(ev, algorithm=args.algorithm, budget=DEFAULT_BUDGET if args.budget is None else args.budget, population=args.population,
                            seed=args.seed, mutation=args.mutation, crossover=args.crossover, objectives=objectives,
                            scalarize=args.scalarize, fixed_net=named_genome(args.net, "--net") if args.net else None,
                            screen=args.screen, initial=read_initial(args.initial, space_dict, name))
        out = Path(args.out)
        res = start_search(out, cfg, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet,
                           details=not args.no_report)
    _print_front(res, out)
    _maybe_verify(args, out)
    if not args.no_plot:
        from codesign.report.plots import plot_dir
        paths = plot_dir(out, formats=("png",), log=lambda *a: None, cache=getattr(res, "mapping_cache", None),
                         details=getattr(res, "layer_details", None))
        print(f"plots: {', '.join(str(p) for p in paths)}")
    if not args.no_report:
        from codesign.cli.report import write_run_report
        report = write_run_report(out, quiet=args.quiet, cache=getattr(res, "mapping_cache", None),
                                  workers=args.workers if args.scheduler is None else 1,
                                  details=getattr(res, "layer_details", None))
        if report is not None:
            print(f"report: {report} (interactive, self-contained HTML; open it in a browser)")
    return 0


def darts_argv(args) -> list[str]:
    """The ``codesign darts`` command line of ``codesign search --algorithm darts``: --budget is the
    number of steps (spread over the epochs: 2 unless --darts-args gives --epochs), then
    --darts-args as given (argparse keeps an option's last value, so they win)."""
    import shlex
    from accelerators.errors import SpecError
    try:
        extra = shlex.split(args.darts_args or "")
    except ValueError as e:
        raise SpecError("--darts-args", f"cannot split it: {e}") from None
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    epochs = 2
    for i, a in enumerate(extra):
        if a == "--epochs" and i + 1 < len(extra) or a.startswith("--epochs="):
            val = a.split("=", 1)[1] if "=" in a else extra[i + 1]
            try:
                epochs = int(val)
            except ValueError:
                raise SpecError("--darts-args", f"--epochs {val!r} is not an integer") from None
    if budget < 1 or epochs < 1:
        raise SpecError("--budget", "with --algorithm darts: the number of steps, at least 1 (and --epochs >= 1)")
    argv = ["darts", "--lambda", str(args.darts_lambda), "--bits", str(args.bits), "--out", str(args.out),
            "--seed", str(args.seed), "--mapper-budget", str(args.mapper_budget),
            "--epochs", str(epochs), "--steps-per-epoch", str(max(1, budget // epochs))]
    for flag, v in (("--data", args.data), ("--space", args.space), ("--weights", args.weights)):
        if v:
            argv += [flag, str(v)]
    if args.hw_space:
        argv.append("--hw-space")
    if args.quiet:
        argv.append("--quiet")
    return argv + extra


def _cmd_darts(args) -> int:
    """``codesign search --algorithm darts``: delegates to ``codesign darts``."""
    from accelerators.errors import SpecError
    if args.resume:
        raise SpecError("--resume", "a darts run resumes with codesign darts --resume DIR")
    if not args.data:
        raise SpecError("--data", "required with --algorithm darts (the data set root)")
    from codesign.cli.darts import add_darts_parser
    from codesign.cli.runner import subcommand_parser
    ns = subcommand_parser(add_darts_parser).parse_args(darts_argv(args))
    return ns.func(ns)


def read_initial(spec: str | None, space_dict: dict, name: str):
    """``--initial``: None, the space's baseline design, or the genomes of a JSON file (a list of
    joint genomes, or one); a bad file or genome exits 2 naming the file and the field."""
    if spec is None:
        return None
    from accelerators.errors import SpecError
    from codesign.rundir.search import baseline_genome, initial_genomes
    from codesign.space.joint import space_from_dict
    space = space_from_dict(space_dict, name)
    if spec == "baseline":
        return [baseline_genome(space)]
    path = Path(spec)
    if not path.is_file():
        raise SpecError("--initial", "not 'baseline' and no such file", spec)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError("initial", f"not JSON ({str(e)[:80]})", spec) from None
    data = [data] if isinstance(data, dict) else data
    try:
        return initial_genomes(space, data, field="initial")     # (the population is checked later)
    except SpecError as e:
        raise e.in_file(spec)


# what a resumed run takes from its own config.json: giving one of these with --resume is refused
RUN_OPTIONS = ("space", "objectives", "population", "algorithm", "scalarize", "net", "mutation", "crossover",
               "accuracy", "predictor", "weights", "data", "mapper_budget", "cost", "cost_predictor", "screen", "seed",
               "initial")


def _check_resume_options(args) -> None:
    from accelerators.errors import SpecError
    parser = getattr(args, "_search_parser", None)
    for name in RUN_OPTIONS:
        if parser is not None and getattr(args, name, None) != parser.get_default(name):
            raise SpecError(f"--{name.replace('_', '-')}", "a resumed run keeps the configuration in its config.json; "
                            "with --resume DIR only --budget (to extend it), --workers and --scheduler may change")


def _maybe_verify(args, out: Path) -> None:
    """--verify (explicit, or by default when the run has --data and torch is installed)."""
    from codesign.rundir.search import read_config
    data = args.data or read_config(out)["evaluator"]["accuracy"].get("data")
    if args.verify is False or (args.verify is None and not data):
        return
    if args.verify is None:
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            print("note: the front is not re-measured (torch is not installed: pip install -e '.[torch]')")
            return
    from codesign.rundir.verify import verify_front
    verify_front(out, data, weights=args.weights, images=args.verify_images,
                 progress=not args.quiet)


def cmd_verify(args) -> int:
    from codesign.rundir.verify import verify_front
    if args.images is not None:
        from accelerators.limits import check_int
        check_int(args.images, "--images", lo=10)
    verify_front(args.run, args.data, weights=args.weights, images=args.images, progress=not args.quiet)
    return 0


def cmd_add_measured(args) -> int:
    from codesign.rundir.verify import add_measured
    r = add_measured(args.run, args.out)
    print(f"{r['added']} measured designs added to {r['out']} ({r['skipped']} already there; {r['rows']} rows); "
          f"next: codesign train-predictor --accuracy-data codesign/weights/accuracy_data.jsonl "
          f"--extra-data {r['out']} --out P.npz")
    return 0


def cmd_audit_screening(args) -> int:
    from accelerators.limits import check_int
    from codesign.rundir.audit import audit_run
    if args.sample is not None:
        check_int(args.sample, "--sample", lo=1)
    r = audit_run(args.run, sample=args.sample, seed=args.seed, progress=not args.quiet)
    print(f"screening audit of {r['run']}: {r['scored_exactly']} of {r['screened_out']} screened-out children "
          f"scored exactly; {r['front_from_screened_out']} of them on the exact front of {r['front']} "
          f"(rows + audited); lost per audited child {r['lost_per_audited']:.4f} (kept rows on that front: "
          f"{r['front_per_kept']:.4f} each); hypervolume {r['hypervolume_run']:.6g} -> "
          f"{r['hypervolume_with_audited']:.6g} with the audited children; "
          f"written to {Path(r['run']) / 'screening_audit.json'}")
    return 0


def _print_front(res, out: Path) -> None:
    from codesign.search.algorithms import front_table
    front = front_table(res.front())
    cols = [c for c in ["id", "top1_pct", "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "hw_pe_x", "hw_pe_y",
                        "hw_bits", "hw_dataflow", "net_r"] if c in front.columns]
    if len(front):
        print(front[cols].sort_values(cols[2] if len(cols) > 2 else "id").to_string(index=False))
    hv = res.hypervolume[-1][2] if res.hypervolume else 0.0
    print(f"{len(res.rows)} candidates ({res.evaluated} evaluated now, {len(res.rows) - res.evaluated} from the "
          f"store) in {res.seconds:.1f} s; hypervolume {hv:.6g}; front of {len(front)} written to {out / 'front.csv'}")
