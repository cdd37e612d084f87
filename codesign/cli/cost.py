"""``codesign cost-data`` and ``codesign train-cost-predictor``: the learned latency / energy
predictor (see :mod:`codesign.predictors.cost`).

``add_cost_parsers(subparsers)`` adds both subcommands to the ``codesign`` command line;
``python3 -m codesign.cli.cost ...`` runs them on their own (bad input prints one line naming the
file and the field and exits with status 2)."""
from __future__ import annotations

import json
import sys

from accelerators.errors import SpecError
from codesign.cli.runner import add_renamed


def add_cost_parsers(sub) -> None:
    cd = sub.add_parser("cost-data", help="map random joint genomes for the latency/energy predictor "
                        "(resumable JSONL)")
    cd.add_argument("--space", help="search space YAML (default specs/spaces/default.yaml)")
    cd.add_argument("--genomes", type=int, required=True, metavar="N",
                    help="count of random joint genomes to map (rerun with a larger N to extend the file)")
    add_renamed(cd, "--n", "--genomes")
    cd.add_argument("--out", required=True, help="JSONL file; re-running continues it")
    cd.add_argument("--mapper-budget", type=int, default=1500, help="mapper evaluations per layer (as the "
                    "co-search's --mapper-budget)")
    cd.add_argument("--seed", type=int, default=0, help="random seed")
    cd.add_argument("--quiet", action="store_true", help="no progress bar")
    cd.set_defaults(func=cmd_cost_data)
    tc = sub.add_parser("train-cost-predictor", help="fit the latency/energy predictor on a cost-data file; "
                        "prints held-out metrics")
    tc.add_argument("--cost-data", required=True, metavar="FILE", help="codesign cost-data JSONL file")
    add_renamed(tc, "--dataset", "--cost-data")
    tc.add_argument("--out", required=True, help="predictor .npz")
    tc.add_argument("--space", help="the space the data was collected on (default specs/spaces/default.yaml)")
    tc.add_argument("--seed", type=int, default=0, help="random seed")
    tc.add_argument("--holdout-fraction", type=float, default=0.2,
                    help="fraction of the candidates held out for the metrics (0 < F < 1)")
    add_renamed(tc, "--holdout", "--holdout-fraction")
    tc.add_argument("--members", type=int, default=5, help="ensemble size (MLPs averaged in log space)")
    tc.add_argument("--hidden", type=int, default=64, help="hidden units per layer")
    tc.add_argument("--epochs", type=int, default=200, help="training epochs per member")
    tc.add_argument("--json", action="store_true", help="print one JSON object")
    tc.set_defaults(func=cmd_train_cost_predictor)


def cmd_cost_data(args) -> int:
    from codesign.predictors.cost_data import cost_dataset
    from codesign.space.joint import load_space
    if args.genomes < 0:
        raise SpecError("--genomes", f"must be >= 0, got {args.genomes}")
    if args.mapper_budget < 1:
        raise SpecError("--mapper-budget", f"must be >= 1, got {args.mapper_budget}")
    rows = cost_dataset(load_space(args.space), args.genomes, args.out, seed=args.seed, mapper_budget=args.mapper_budget,
                        progress=not args.quiet)
    failed = sum(r.get("status") != "ok" for r in rows)
    print(f"{len(rows)} candidates in {args.out} ({failed} could not be mapped)")
    return 0


def cmd_train_cost_predictor(args) -> int:
    from codesign.predictors.cost_data import read_dataset
    from codesign.predictors.cost import train_cost_predictor
    from codesign.space.joint import load_space
    if not 0 < args.holdout_fraction < 1:
        raise SpecError("--holdout-fraction", f"must be between 0 and 1, got {args.holdout_fraction}")
    for name in ("members", "hidden", "epochs"):
        if getattr(args, name) < 1:
            raise SpecError(f"--{name}", f"must be >= 1, got {getattr(args, name)}")
    rows = read_dataset(args.cost_data)
    space = load_space(args.space)
    for k, r in enumerate(rows):              # the genomes must be the space's (the features assume it)
        if r.get("status") == "ok":
            try:
                space.validate(r["genome"], f"line {k + 1}.genome")
            except SpecError as e:
                raise e.in_file(args.cost_data)
    try:
        pred, m = train_cost_predictor(rows, space, seed=args.seed, holdout=args.holdout_fraction,
                                       members=args.members, hidden=args.hidden, epochs=args.epochs)
    except SpecError as e:
        raise e.in_file(args.cost_data)
    pred.save(args.out)
    if args.json:
        print(json.dumps({"heldout": m, "out": args.out}))
        return 0
    print(f"held-out ({m['n']} candidates, trained on {m['n_train']}):")
    for k in ("latency", "energy"):
        print(f"  {k:<8} within +-10%: {100 * m[k]['within_10pct']:.1f}%   Kendall tau {m[k]['kendall_tau']:.3f}   "
              f"MAPE {100 * m[k]['mape']:.2f}%")
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    """``codesign cost-data|train-cost-predictor ARGS`` on their own (same errors, same exit codes)."""
    from codesign.cli.runner import run, subcommand_parser
    return run(subcommand_parser(add_cost_parsers), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
