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


class JsonlMemo:
    """An append-only JSON-lines memo that several processes may share (the benchmarks' measurement
    caches): ``get(key)`` answers from memory and re-reads the file on a miss (another process may
    have added the row since); ``put(key, value, row)`` keeps the value and appends ``row``.
    ``entry(row)`` gives ``(key, value)`` for a row that counts here, None for one that does not
    (e.g. another measurement protocol). Unreadable lines (a killed writer's last one) are skipped.
    Where the file holds a key twice, ``keep`` says which row wins: ``"first"`` or ``"last"``."""

    def __init__(self, path, entry, keep: str = "first"):
        if keep not in ("first", "last"):
            raise ValueError(f"keep: 'first' or 'last', not {keep!r}")
        self.path = None if path is None else Path(path)
        self.entry, self.keep = entry, keep
        self.cache: dict = {}
        self.reload()

    def reload(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            got = self.entry(row)
            if got is None:
                continue
            if self.keep == "first":
                self.cache.setdefault(got[0], got[1])
            else:
                self.cache[got[0]] = got[1]

    def __contains__(self, key) -> bool:
        return key in self.cache

    def get(self, key):
        """The value of ``key``, or None (after re-reading the file)."""
        if key not in self.cache:
            self.reload()
        return self.cache.get(key)

    def put(self, key, value, row: dict) -> None:
        self.cache[key] = value
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
