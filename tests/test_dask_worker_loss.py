"""A Dask cluster that loses a worker mid-run loses no evaluation (issue #19): a local scheduler
and two worker processes on the loopback address, one killed with SIGKILL while the search runs;
the search finishes with the same store and front as a one-process run with the same seed."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARGS = ["search", "--budget", "12", "--population", "4", "--accuracy", "macs", "--mapper-budget", "400",
        "--seed", "5", "--no-plot", "--no-report", "--quiet"]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("CODESIGN_DEBUG", None)
    return env


def _rows(d: Path):
    from codesign.rundir.store import RunStore
    with RunStore(d / "store.sqlite", create=False) as s:
        return [(r["id"], r["key"], r["generation"], r["status"], json.dumps(r["metrics"], sort_keys=True))
                for r in s.rows()]


def _stored(d: Path) -> int:
    p = d / "store.sqlite"
    if not p.is_file():
        return 0
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT count(*) FROM evaluations").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_worker_killed_mid_search_costs_no_evaluation(tmp_path):
    pytest.importorskip("distributed")
    from dask.distributed import Client, LocalCluster

    ref = tmp_path / "ref"
    r = subprocess.run([sys.executable, "-m", "codesign.cli", *ARGS, "--out", str(ref)], env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    out = tmp_path / "dask"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)                         # {worker address: pid}
        assert len(pids) == 2
        victim = sorted(pids.values())[0]
        p = subprocess.Popen([sys.executable, "-m", "codesign.cli", *ARGS, "--out", str(out),
                              "--scheduler", cluster.scheduler_address], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed_at = None
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            n = _stored(out)
            if n >= 1:                                        # the run is under way: kill a worker now
                os.kill(victim, signal.SIGKILL)
                killed_at = n
                break
            time.sleep(0.05)
        try:
            stdout, stderr = p.communicate(timeout=600)
        finally:
            if p.poll() is None:
                p.kill()
    assert p.returncode == 0, stderr[-2000:]
    assert killed_at is not None, "the search ended before a worker could be killed"
    rows = _rows(out)
    assert all(r[3] == "ok" for r in rows), rows               # nothing failed because of the lost worker
    assert rows == _rows(ref)                                  # every evaluation, same values, same ids
    front = (out / "front.csv").read_text().splitlines()
    assert front == (ref / "front.csv").read_text().splitlines()
