"""A run's store: an embedded SQLite file with one row per evaluated candidate (genome, metrics,
timing, status), committed the moment the result arrives, plus the run's resolved configuration.

A run killed at any point (``kill -9`` included) keeps every committed row; resuming replays the
seeded search and takes each candidate already in the store from it instead of evaluating it
again, so the resumed run ends with the front an uninterrupted run gives, with no evaluation lost
or repeated (``key`` is unique).

Extending a run to a larger budget (``codesign.rundir.search``) first retires its rows to the
``earlier`` table: the replay with the new budget adopts each one it meets again (under the id
and generation of the new trajectory) instead of evaluating it, and ``rows()`` then holds exactly
the extended run's candidates. Rows the new trajectory never meets stay in ``earlier`` (the
sequential baseline's halves move with the budget), so nothing evaluated is lost."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from accelerators.errors import SpecError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,           -- order of the candidate in the run (deterministic)
    key TEXT UNIQUE NOT NULL,         -- sha1 of the canonical genome JSON
    genome TEXT NOT NULL,             -- JSON
    metrics TEXT,                     -- JSON (units in the names); NULL when it failed
    generation INTEGER NOT NULL,
    status TEXT NOT NULL,             -- ok | failed
    error TEXT,
    seconds REAL,                     -- wall time of the evaluation
    worker TEXT,
    created REAL NOT NULL             -- unix time of the commit
);
CREATE TABLE IF NOT EXISTS earlier (  -- rows of the run before it was extended, not met again yet
    id INTEGER NOT NULL, key TEXT UNIQUE NOT NULL, genome TEXT NOT NULL, metrics TEXT,
    generation INTEGER NOT NULL, status TEXT NOT NULL, error TEXT, seconds REAL, worker TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measured (  -- front designs re-measured on the supernet (codesign.rundir.verify)
    key TEXT NOT NULL,                -- the candidate's key
    bits INTEGER NOT NULL,
    protocol TEXT NOT NULL,           -- JSON: split, images, weights' sha256, holdout, seed
    top1 REAL NOT NULL,               -- measured top-1 (%)
    seconds REAL,
    created REAL NOT NULL,
    PRIMARY KEY (key, bits, protocol)
);
"""
COLUMNS = "id, key, genome, metrics, generation, status, error, seconds, worker, created"


def genome_key(genome) -> str:
    return hashlib.sha1(json.dumps(genome, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class RunStore:
    """``RunStore(path)`` opens (creating if needed) a store; corrupt files raise SpecError."""

    def __init__(self, path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise SpecError("store", "no such file", str(self.path))
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")   # survives a killed process
            self.db.executescript(SCHEMA)
            self.db.execute("SELECT count(*) FROM evaluations").fetchone()
        except sqlite3.DatabaseError as e:
            raise SpecError("store", f"not a readable run store ({e})", str(self.path)) from None

    # ------------------------------------------------------------------ config
    def get_meta(self, key: str):
        r = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if r is None else json.loads(r[0])

    def set_meta(self, key: str, value) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    # ------------------------------------------------------------------ evaluations
    def lookup(self, key: str) -> dict | None:
        """The stored result of a candidate: {"metrics", "status", "error", "seconds", "earlier"}
        or None; ``earlier`` is true for a row retired by an extension and not adopted yet."""
        for table in ("evaluations", "earlier"):
            r = self.db.execute(f"SELECT metrics, status, error, seconds FROM {table} WHERE key = ?", (key,)).fetchone()
            if r is not None:
                return {"metrics": None if r[0] is None else json.loads(r[0]), "status": r[1], "error": r[2],
                        "seconds": r[3], "earlier": table == "earlier"}
        return None

    def retire(self) -> int:
        """Move every row to ``earlier`` (before an extension replays the run); returns how many."""
        with self.db:
            n = self.count()
            self.db.execute(f"INSERT OR REPLACE INTO earlier ({COLUMNS}) SELECT {COLUMNS} FROM evaluations")
            self.db.execute("DELETE FROM evaluations")
        return n

    def adopt(self, key: str, id: int, generation: int) -> None:
        """Move the retired row of ``key`` back under the replay's ``id`` and ``generation``."""
        with self.db:
            self.db.execute(f"INSERT INTO evaluations ({COLUMNS}) SELECT ?, key, genome, metrics, ?, status, error, "
                            "seconds, worker, created FROM earlier WHERE key = ?", (int(id), int(generation), key))
            self.db.execute("DELETE FROM earlier WHERE key = ?", (key,))

    def put(self, id: int, genome, metrics: dict | None, generation: int, seconds: float | None = None,
            status: str = "ok", error: str | None = None, worker: str | None = None, key: str | None = None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO evaluations (id, key, genome, metrics, generation, status, error, seconds, worker, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(id), key or genome_key(genome), json.dumps(genome, sort_keys=True),
                 None if metrics is None else json.dumps(metrics, sort_keys=True), int(generation), status, error,
                 seconds, worker, time.time()))

    def put_measured(self, key: str, bits: int, protocol: dict, top1: float, seconds: float | None = None) -> None:
        """Commit one re-measured accuracy (``codesign.rundir.verify``)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO measured VALUES (?, ?, ?, ?, ?, ?)",
                            (key, int(bits), json.dumps(protocol, sort_keys=True), float(top1), seconds, time.time()))

    def measured(self, protocol: dict | None = None) -> dict:
        """{(key, bits): top-1 %} re-measured under ``protocol`` (default: the latest protocol used)."""
        if protocol is None:
            last = self.db.execute("SELECT protocol FROM measured ORDER BY created DESC LIMIT 1").fetchone()
            if last is None:
                return {}
            text = last[0]
        else:
            text = json.dumps(protocol, sort_keys=True)
        return {(k, int(b)): float(t) for k, b, t in
                self.db.execute("SELECT key, bits, top1 FROM measured WHERE protocol = ?", (text,))}

    def measured_protocol(self) -> dict | None:
        """The protocol of the latest re-measurement, or None."""
        last = self.db.execute("SELECT protocol FROM measured ORDER BY created DESC LIMIT 1").fetchone()
        return None if last is None else json.loads(last[0])

    def rows(self) -> list[dict]:
        """Every evaluation in id order, as {"id", "genome", "metrics", "generation", "status", ...}."""
        cur = self.db.execute("SELECT id, key, genome, metrics, generation, status, error, seconds, worker "
                              "FROM evaluations ORDER BY id")
        return [{"id": r[0], "key": r[1], "genome": json.loads(r[2]),
                 "metrics": None if r[3] is None else json.loads(r[3]), "generation": r[4], "status": r[5],
                 "error": r[6], "seconds": r[7], "worker": r[8]} for r in cur]

    def check(self) -> int:
        """Every stored row and meta value decodes (genome and metrics JSON objects, integer id and
        generation); a broken one is a SpecError naming the store and the row. Returns the row count."""
        n = 0
        try:
            tables = ["evaluations"] + (["earlier"] if self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'earlier'").fetchone() else [])
            for r in (row for t in tables for row in self.db.execute(
                    f"SELECT id, genome, metrics, generation FROM {t} ORDER BY id")):
                n += 1
                try:
                    if not isinstance(r[0], int) or not isinstance(r[3], int):
                        raise ValueError("id / generation not integers")
                    g = json.loads(r[1])
                    m = None if r[2] is None else json.loads(r[2])
                    if not isinstance(g, dict) or not (m is None or isinstance(m, dict)):
                        raise ValueError("genome / metrics not JSON objects")
                except (ValueError, TypeError) as e:
                    raise SpecError(f"row id {r[0]}", f"corrupt stored evaluation ({str(e)[:100]})",
                                    str(self.path)) from None
            for k, v in self.db.execute("SELECT key, value FROM meta"):
                try:
                    json.loads(v)
                except (ValueError, TypeError):
                    raise SpecError(f"meta {k}", "corrupt stored value (not JSON)", str(self.path)) from None
        except sqlite3.DatabaseError as e:
            raise SpecError("store", f"not a readable run store ({e})", str(self.path)) from None
        return n

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM evaluations").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_run_store(directory) -> None:
    """Before a run is resumed: its store (when there is one) decodes row by row. Opened and
    closed without a write, so a refused resume leaves the directory as it was."""
    p = Path(directory) / "store.sqlite"
    if not p.exists():
        return
    if not p.is_file():
        raise SpecError("store", "not a file", str(p))
    db = None
    if not Path(f"{p}-wal").exists():      # a closed store: read it as an immutable file (no -wal/-shm made)
        try:
            db = sqlite3.connect(f"file:{p.resolve()}?mode=ro&immutable=1", uri=True)
            db.execute("SELECT count(*) FROM evaluations").fetchone()
        except sqlite3.Error:
            db = None
    if db is not None:
        st = RunStore.__new__(RunStore)
        st.path, st.db = p, db
    else:
        st = RunStore(p, create=False)
    try:
        st.check()
    finally:
        st.close()


def open_run(directory, create: bool = False) -> RunStore:
    """The store of a run directory (``DIR/store.sqlite``); a clear error when it is missing."""
    d = Path(directory)
    p = d / "store.sqlite"
    if not create and not p.is_file():
        raise SpecError("run", "not a run directory (no store.sqlite)", str(d))
    d.mkdir(parents=True, exist_ok=True)
    return RunStore(p, create=create)
