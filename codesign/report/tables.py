"""Tables of run directories: a search's front (or every evaluation) or a sweep's results, as a
DataFrame and as CSV / JSON / Parquet."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from accelerators.errors import SpecError

from codesign.jsonio import plain_value
from codesign.rundir.base import run_kind
from codesign.rundir.search import load_run

FORMATS = ("csv", "json", "parquet")
METRIC_KEYS = ("top1_pct", "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib", "macs", "utilization")


def sweep_table(directory):
    """A sweep's ``results.csv`` as a DataFrame."""
    import pandas as pd
    p = Path(directory) / "results.csv"
    if not p.is_file():
        raise SpecError("DIR", "sweep directory without results.csv (still running?)", str(directory))
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise SpecError("results.csv", f"not a readable CSV ({e})", str(p)) from None
    for col in ("hw_pe_x", "hw_pe_y", "latency_ms", "energy_uj"):
        if col not in df.columns:
            raise SpecError(f"results.csv.{col}", "missing column", str(p))
    return df


def results_table(directory, all_rows: bool = False):
    """The front (default) or every evaluation of a search (``all_rows``): one row per design, genome
    columns (``net_*``, ``hw_*``), metric columns with units in their names, ``status``,
    ``eval_seconds`` and ``genome_json``. For a sweep directory: its results table."""
    if run_kind(directory) == "sweep":
        return sweep_table(directory)
    from codesign.search.algorithms import front_table
    _, res = load_run(directory)
    rows = res.rows if all_rows else res.front()
    df = front_table(rows)
    if len(df):
        pos = list(df.columns).index("generation") + 1
        df.insert(pos, "status", [r.get("status") for r in rows])
        df.insert(pos + 1, "eval_seconds", [r.get("seconds") for r in rows])
    return df


def table_records(df) -> list[dict]:
    """JSON-ready records (NaN -> null, numpy scalars -> Python); ``genome_json`` becomes a nested
    ``genome`` object."""
    out = []
    for rec in df.to_dict("records"):
        r = {k: plain_value(v) for k, v in rec.items() if k != "genome_json"}
        if rec.get("genome_json") is not None and not (isinstance(rec["genome_json"], float)):
            r["genome"] = json.loads(rec["genome_json"])
        out.append(r)
    return out


def write_table(df, fmt: str, out=None, stream=None) -> str | None:
    """Write ``df`` as csv / json / parquet to ``out`` (a path) or, for text formats, to ``stream``
    (default stdout). Returns the path written, if any."""
    if fmt not in FORMATS:
        raise SpecError("--format", f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise SpecError("--format", "parquet needs pyarrow (pip install pyarrow)") from None
        if out is None:
            raise SpecError("--out", "parquet is a binary format: give --out FILE")
    if out is not None:
        p = Path(out)
        if p.is_dir():
            raise SpecError("--out", "is a directory (give a file name)", str(p))
        p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        if out is None:
            df.to_csv(stream or sys.stdout, index=False)
        else:
            df.to_csv(out, index=False)
    elif fmt == "json":
        text = json.dumps(table_records(df), indent=1) + "\n"
        if out is None:
            (stream or sys.stdout).write(text)
        else:
            Path(out).write_text(text)
    else:
        df.to_parquet(out, index=False)
    return None if out is None else str(out)


def export_table(directory, fmt: str = "csv", all_rows: bool = False, out=None, stream=None):
    if fmt not in FORMATS:                     # before any work
        raise SpecError("--format", f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    df = results_table(directory, all_rows)
    write_table(df, fmt, out, stream)
    return df
