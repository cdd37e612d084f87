"""``codesign report RUN``: the interactive HTML report of a search or sweep directory (one
self-contained file, plotly.js embedded; see :mod:`codesign.report.html`). ``codesign search``
and ``codesign sweep`` write it into their run directory at the end too."""
from __future__ import annotations

import sys
from pathlib import Path


def add_report_parser(sub) -> None:
    r = sub.add_parser("report", help="interactive HTML report of a search or sweep directory (Pareto front in "
                       "2-D and 3-D, per-layer breakdown on click, hypervolume, sortable table); works offline")
    r.add_argument("dir", metavar="RUN", help="run directory (codesign search --out DIR, or a sweep directory)")
    r.add_argument("--out", metavar="FILE", help="the HTML file to write (default RUN/report.html)")
    r.add_argument("--max-details", type=int, default=None, metavar="N",
                   help="map again and embed the per-layer breakdown of at most N front designs, the lowest EDP "
                   "first (default 40; 0: none)")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="map the front designs again in N processes (default 1)")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    r.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from codesign.report.html import MAX_DETAIL_DESIGNS, write_report
    n = MAX_DETAIL_DESIGNS if args.max_details is None else args.max_details
    log = (lambda *a: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    if isinstance(args.workers, bool) or args.workers < 1:
        from accelerators.errors import SpecError
        raise SpecError("--workers", f"must be an integer >= 1, got {args.workers}")
    path = write_report(args.dir, args.out, max_details=n, log=log, workers=args.workers)
    if not args.quiet:
        print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained; open it in a browser)")
    return 0


def write_run_report(directory, quiet: bool = False, cache=None, workers: int = 1, details=None) -> Path | None:
    """The report at the end of ``codesign search`` / ``codesign sweep``: written into the run
    directory; a failure is a warning (the run itself succeeded), never the command's error.
    ``workers``: the run's worker processes (the front designs are mapped again on as many);
    ``details``: the per-layer breakdowns the run's workers sent (``SearchResult.layer_details``)."""
    from codesign.report.html import write_report
    try:
        return write_report(directory, cache=cache, workers=workers, details=details, log=(lambda *a: None) if quiet else (lambda m: print(m, file=sys.stderr)))
    except Exception as e:                              # noqa: BLE001 -- the run's results are written already
        print(f"warning: no report.html ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
              f"codesign report {directory} retries", file=sys.stderr)
        return None
