"""``codesign export`` and ``codesign plot``: getting results out of a search or sweep directory.

``add_export_parsers(sub)`` adds both subcommands to the ``codesign`` parser; every bad input
raises ``SpecError`` (one line, exit status 2 from ``codesign.cli.main``)."""
from __future__ import annotations

import sys
from pathlib import Path

from accelerators.errors import SpecError
from codesign.cli.runner import add_renamed


def _design_id(text):
    if text is None:
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        raise SpecError("--design", f"must be an integer design id (the 'id' column), got {text!r}") from None


def cmd_export(args) -> int:
    from codesign.report.design import export_design
    from codesign.report.tables import FORMATS, export_table
    from codesign.rundir.base import run_kind
    design = _design_id(args.design)
    if design is None:
        if args.format not in FORMATS:
            raise SpecError("--format", f"unknown format {args.format!r} (one of {', '.join(FORMATS)})")
        df = export_table(args.dir, args.format, all_rows=args.all, out=args.out)
        if args.out:
            what = "results" if run_kind(args.dir) == "sweep" else ("evaluations" if args.all else "front designs")
            print(f"wrote {len(df)} {what} to {args.out}", file=sys.stderr)
        return 0
    if not args.out:
        raise SpecError("--out", "needed with --design (the output folder)")
    if args.all:
        raise SpecError("--design", "exports one design to --out OUTDIR (no --all)")
    if run_kind(args.dir) != "search":
        raise SpecError("--design", "only for a search run (this is a sweep directory)", args.dir)
    d = export_design(args.dir, design, args.out, weights=args.weights, onnx=not args.no_onnx,
                      log=lambda m: print(m, file=sys.stderr))
    files = ["arch.yaml", f"layers/ ({len(d['layers'])} files)", "design.json"]
    files += [d["files"][k] for k in ("subnet", "onnx") if d["files"].get(k)]
    m = d["metrics_recomputed"]
    print(f"design {d['id']}: {m['latency_ms']:.4g} ms, {m['energy_uj']:.4g} uJ, EDP {m['edp_uj_ms']:.4g} uJ ms "
          f"({'equal to' if d['matches_store'] else 'DIFFERENT from'} the stored metrics); wrote "
          f"{', '.join(files)} to {args.out}")
    return 0


def cmd_plot(args) -> int:
    from codesign.report.plots import parse_formats, plot_dir
    formats = parse_formats(args.format)
    design = _design_id(args.design)
    paths = plot_dir(args.dir, args.out, design=design, formats=formats, log=lambda m: print(m, file=sys.stderr))
    out = Path(args.out) if args.out else Path(args.dir) / "plots"
    print(f"wrote {len(paths)} figures to {out}: {', '.join(sorted({p.stem for p in paths}))} "
          f"({', '.join(formats)})")
    return 0


def add_export_parsers(sub) -> None:
    e = sub.add_parser("export", help="a search's front / all evaluations as CSV, JSON or Parquet, or one "
                       "design as Timeloop YAML + PyTorch subnet",
                       description="A table: the front (or --all evaluations) to --out FILE or standard output. "
                       "One design (--design ID): Timeloop v0.4 files, design.json and, with PyTorch installed, "
                       "subnet.pt / subnet.onnx, into the folder --out OUTDIR.")
    e.add_argument("dir", metavar="DIR", help="run directory (codesign search --out DIR, or a sweep directory)")
    e.add_argument("--format", default="csv", help="table format: csv, json or parquet (parquet needs pyarrow)")
    e.add_argument("--all", action="store_true", help="every evaluated design, not only the Pareto front")
    e.add_argument("--out", metavar="FILE|OUTDIR", help="a table: output file (default: standard output; parquet "
                   "needs a file); with --design: the folder for arch.yaml, layers/, design.json, subnet.pt, "
                   "subnet.onnx")
    add_renamed(e, "--to", "--out")                # before issue #21: --design ID --to OUTDIR
    e.add_argument("--design", metavar="ID", help="export this design (its 'id') instead of a table")
    e.add_argument("--weights", metavar="FILE", help="supernet state_dict for the PyTorch subnet "
                   "(default: codesign/weights/supernet.pt)")
    e.add_argument("--no-onnx", action="store_true", help="with --design: do not write subnet.onnx")
    e.set_defaults(func=cmd_export)
    p = sub.add_parser("plot", help="figures of a search (Pareto front, hypervolume, per-layer energy) or a "
                       "sweep (EDP heat-maps, energy vs latency)")
    p.add_argument("dir", metavar="DIR", help="run directory (search or sweep)")
    p.add_argument("--out", metavar="OUTDIR", help="folder for the figures (default DIR/plots)")
    p.add_argument("--design", metavar="ID", help="design of the per-layer energy figure (default: the front "
                   "design with the lowest EDP)")
    p.add_argument("--format", default="png", help="comma list of png, svg, pdf")
    p.set_defaults(func=cmd_plot)
