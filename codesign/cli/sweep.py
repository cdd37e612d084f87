"""``codesign sweep FILE.yaml --out DIR``: a design-space sweep (see :mod:`codesign.space.sweep`, :mod:`codesign.rundir.sweep`).

``add_sweep_parser(subparsers)`` adds the subcommand to the ``codesign`` command line;
``python3 -m codesign.cli.sweep FILE ...`` runs it on its own (same options, same exit codes:
bad input prints one line naming the file and the field and exits with status 2)."""
from __future__ import annotations

import argparse
import json
import sys

from accelerators.errors import SpecError

SHOWN_ROWS = 30          # print every point up to this many, else the best per network
BEST_PER_NETWORK = 5


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    sw = sub.add_parser("sweep", help="design-space sweep: networks x a grid / random set of hardware points; "
                        "resumable, results.csv")
    sw.add_argument("file", nargs="?", help="sweep YAML (e.g. specs/sweeps/pe_buffer_bits.yaml)")
    sw.add_argument("--out", default="runs/sweep", help="run directory (config.json, store.sqlite, results.csv); "
                    "an existing one with the same sweep is continued")
    sw.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its own config.json")
    sw.add_argument("--limit", type=int, help="evaluate at most N new points now (rerun to continue)")
    sw.add_argument("--workers", type=int, default=1, help="local worker processes")
    sw.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): evaluate on that cluster")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.add_argument("--json", action="store_true", help="print one JSON object (rows and paths) instead of a table")
    sw.add_argument("--no-report", action="store_true", help="skip DIR/report.html (the interactive HTML report; "
                    "codesign report DIR writes it later)")
    sw.set_defaults(func=cmd_sweep)
    return sw


def cmd_sweep(args) -> int:
    from codesign.rundir.sweep import resume_sweep, run_sweep
    from codesign.space.sweep import load_sweep
    if args.limit is not None and args.limit < 0:
        raise SpecError("--limit", f"must be >= 0, got {args.limit}")
    kw = dict(workers=args.workers, scheduler=args.scheduler, progress=not args.quiet, limit=args.limit)
    if args.resume:
        if args.file:
            raise SpecError("--resume", "give either a sweep FILE or --resume DIR, not both")
        res = resume_sweep(args.resume, **kw)
    elif args.file:
        res = run_sweep(load_sweep(args.file), args.out, **kw)
    else:
        raise SpecError("sweep", "give a sweep FILE (e.g. specs/sweeps/smoke.yaml) or --resume DIR")
    table = res.table()
    csv = res.directory / "results.csv"
    report = None
    if not args.no_report and res.rows:
        from codesign.cli.report import write_run_report
        report = write_run_report(res.directory, quiet=args.quiet or args.json)
    if args.json:
        print(json.dumps({"results_csv": str(csv), "layers_csv": str(res.directory / "layers.csv"),
                          "report_html": None if report is None else str(report),
                          "points": res.total, "stored": len(res.rows), "evaluated_now": res.evaluated,
                          "failed": res.failed, "rows": json.loads(table.to_json(orient="records"))}))
        return 0
    print_table(table, {r['id']: r['error'] for r in res.rows if r['status'] != 'ok'})
    print(f"{len(res.rows)} of {res.total} points stored ({res.evaluated} evaluated now, "
          f"{len(res.rows) - res.evaluated} from the store, {res.failed} failed); results: {csv}")
    if report is not None:
        print(f"report: {report} (interactive, self-contained HTML; open it in a browser)")
    if not res.complete:
        print(f"not complete: continue with  codesign sweep --resume {res.directory}")
    return 0


def print_table(table, errors: dict | None = None) -> None:
    if not len(table):
        return
    cols = [c for c in table.columns if c not in ("seconds", "onchip_kib", "macs")]
    shown = table
    if len(table) > SHOWN_ROWS:
        ok = table[table.status == "ok"]
        shown = ok.sort_values("edp_uj_ms").groupby("network", sort=False).head(BEST_PER_NETWORK)
        shown = shown.sort_values(["network", "edp_uj_ms"])
        print(f"lowest EDP per network ({BEST_PER_NETWORK} each of {len(table)} points; all in results.csv):")
    print(shown[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if errors:
        ids = sorted(errors)
        print(f"{len(ids)} failed points: ids {', '.join(map(str, ids[:20]))}{' ...' if len(ids) > 20 else ''}; "
              f"id {ids[0]}: {errors[ids[0]]}")


def main(argv=None) -> int:
    """``codesign sweep ARGS`` on its own (the one command line's error handling: one line, exit 2)."""
    from codesign.cli.runner import run, subcommand_parser
    return run(subcommand_parser(add_sweep_parser), ["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
