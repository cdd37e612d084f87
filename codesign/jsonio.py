"""JSON in and out: plain (JSON-able) values from numpy ones, and JSON-lines files read the one
way every resumable writer here needs (a last line cut short by a killed writer is dropped)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from accelerators.errors import SpecError


def plain_value(v):
    """A JSON-able scalar: numpy scalars as Python ones, NaN as None (``json.dumps(default=...)``)."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def plain(x):
    """``x`` (dicts, lists, numpy scalars) as plain JSON data: what ``json.loads(json.dumps(x))`` gives."""
    return json.loads(json.dumps(x, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def read_jsonl(path, *, check=None, what: str = "a JSON object", cut_last: str = "drop",
               field: str = "dataset") -> list:
    """The rows of a JSON-lines file. ``check(row)`` raises ValueError for a row of the wrong kind.
    An unreadable last line (a killed writer's) is dropped (``cut_last="drop"``), also cut from the
    file (``"repair"``, which also ends a complete last line without its newline), or an error
    (``"error"``); an unreadable line elsewhere is a SpecError naming the file and the line."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(field, "no such file", str(p))
    data = p.read_bytes()
    rows, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        last = end < 0
        line = data[pos:] if last else data[pos:end]
        try:
            row = json.loads(line)
            if check is not None:
                check(row)
        except ValueError as e:
            if last and cut_last != "error":       # a partial line from a killed run
                if cut_last == "repair":
                    with open(p, "r+b") as f:
                        f.truncate(pos)
                break
            detail = "" if isinstance(e, json.JSONDecodeError) and check is None else f" ({e})"
            raise SpecError(f"line {len(rows) + 1}", f"not {what}{detail}", str(p)) from None
        if last and cut_last == "repair":       # complete JSON but no newline: finish the line
            with open(p, "ab") as f:
                f.write(b"\n")
        rows.append(row)
        if last:
            break
        pos = end + 1
    return rows
