"""Search runs that lose nothing: a run killed with SIGKILL at random points and resumed ends with
exactly the front of an uninterrupted run, with every candidate in the store once; the Dask and
process-pool executors give the serial run's results; bad run directories fail with one line."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesign.cli import main
from codesign.rundir.store import RunStore

ARGS = ["search", "--accuracy", "macs", "--budget", "14", "--population", "4", "--mapper-budget", "100",
        "--seed", "5", "--quiet", "--no-plot", "--no-report"]
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "codesign", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _stored(d: Path) -> int:
    p = d / "store.sqlite"
    if not p.is_file():
        return 0
    try:
        with sqlite3.connect(p, timeout=5) as db:
            return db.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _rows(d: Path):
    with RunStore(d / "store.sqlite") as s:
        return [(r["id"], r["key"], r["generation"], json.dumps(r["metrics"], sort_keys=True)) for r in s.rows()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    assert main(ARGS + ["--out", str(d)]) == 0
    return d


@pytest.mark.parametrize("kill_after", [1, 6, 11])
def test_kill_9_and_resume_gives_the_uninterrupted_front(tmp_path, reference, kill_after):
    d = tmp_path / "run"
    p = _cli(*ARGS, "--out", str(d))
    deadline = time.time() + 120
    while _stored(d) < kill_after and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    partial = _stored(d)
    assert partial >= kill_after
    assert main(["search", "--resume", str(d), "--quiet", "--no-plot", "--no-report"]) == 0
    assert _rows(d) == _rows(reference)                          # none lost, none repeated, same values
    assert (d / "front.csv").read_text() == (reference / "front.csv").read_text()
    ids = [r[0] for r in _rows(d)]
    assert ids == list(range(14))


def test_same_out_same_config_continues_and_other_config_refuses(tmp_path, reference, capsys):
    d = tmp_path / "run"
    assert main(ARGS + ["--out", str(d), "--budget", "6"]) == 0
    before = _rows(d)
    assert main(ARGS + ["--out", str(d), "--budget", "6"]) == 0     # same config: nothing new evaluated
    assert "0 evaluated now" in capsys.readouterr().out
    assert main(ARGS + ["--out", str(d), "--budget", "6", "--seed", "6"]) == 2   # other config: refused, store kept
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and str(d) in err[0]
    assert _rows(d) == before


def _extend_and_compare(tmp_path, args, small, large, via):
    """A run of budget ``small`` extended to ``large`` (``via``: --resume DIR --budget N, or the
    same command with a larger --budget) ends with the rows, all.csv and front.csv of a fresh
    run of budget ``large``; returns the extended run's directory."""
    ext, fresh = tmp_path / "ext", tmp_path / "fresh"
    assert main([*args, "--budget", str(small), "--out", str(ext)]) == 0
    if via == "resume":
        assert main(["search", "--resume", str(ext), "--budget", str(large), "--quiet", "--no-plot", "--no-report"]) == 0
    else:
        assert main([*args, "--budget", str(large), "--out", str(ext)]) == 0
    assert main([*args, "--budget", str(large), "--out", str(fresh)]) == 0
    assert _rows(ext) == _rows(fresh)
    for f in ("front.csv", "all.csv", "hypervolume.csv"):
        assert (ext / f).read_text() == (fresh / f).read_text(), f
    cfg = json.loads((ext / "config.json").read_text())
    assert cfg["budget"] == large and cfg["budget_history"] == [small]
    return ext


@pytest.mark.parametrize("via, cost", [("resume", "model"), ("out", "predictor")])
def test_extending_a_16_candidate_run_to_32_gives_the_fresh_32_front(tmp_path, capsys, via, cost):
    """Issue #21 acceptance: the default search (accuracy predictor, every layer mapped on the
    exact model) extended from 16 to 32 candidates equals a fresh 32-candidate run, and only the
    16 new candidates are evaluated; the same through --out with the cost predictor's fast path."""
    args = ["search", "--population", "8", "--mapper-budget", "150", "--seed", "3", "--cost", cost, "--quiet",
            "--no-plot", "--no-report"]
    _extend_and_compare(tmp_path, args, 16, 32, via)
    out = capsys.readouterr()
    assert "32 candidates (16 evaluated now, 16 from the store)" in out.out
    assert "extending the run" in out.err and "from budget 16 to 32" in out.err


def test_extending_a_sequential_run_keeps_what_the_new_trajectory_leaves(tmp_path):
    """The sequential baseline's halves move with the budget: the extended run still equals the
    fresh one, and the earlier hardware-phase rows it does not meet again stay in the store."""
    args = ["search", "--algorithm", "sequential", "--population", "8", "--cost", "predictor", "--seed", "1",
            "--quiet", "--no-plot", "--no-report"]
    ext = _extend_and_compare(tmp_path, args, 16, 30, "resume")
    with sqlite3.connect(ext / "store.sqlite") as db:
        kept = db.execute("SELECT count(*) FROM earlier").fetchone()[0]
    assert kept > 0
    assert main(["search", "--resume", str(ext), "--quiet", "--no-plot", "--no-report"]) == 0   # and it resumes as it is


def test_resume_refuses_options_that_would_be_ignored(tmp_path, reference, capsys):
    assert main(["search", "--resume", str(reference), "--population", "9", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--population" in err[0] and "--budget" in err[0]


@pytest.mark.parametrize("bad, field", [
    ("corrupt", "store"), ("noconfig", "not a run directory"), ("badjson", "config"),
])
def test_bad_run_directories(tmp_path, reference, capsys, bad, field):
    d = tmp_path / "run"
    d.mkdir()
    if bad == "corrupt":
        (d / "config.json").write_text((reference / "config.json").read_text())
        (d / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    elif bad == "badjson":
        (d / "config.json").write_text("{not json")
    assert main(["search", "--resume", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and str(d) in err[0]
    if bad == "corrupt":
        assert (d / "store.sqlite").read_bytes() == b"this is not sqlite" * 100


@pytest.mark.slow
def test_process_pool_and_dask_give_the_serial_results(tmp_path, reference):
    from dask.distributed import Client, LocalCluster

    from codesign.rundir.search import read_config, start_search
    cfg = read_config(reference)
    pool = start_search(tmp_path / "pool", cfg, workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = start_search(tmp_path / "dask", cfg, scheduler=client)
    assert _rows(tmp_path / "pool") == _rows(reference)
    assert _rows(tmp_path / "dask") == _rows(reference)
    assert len(pool.front()) == len(dask.front())
    workers = {r["worker"] for r in RunStore(tmp_path / "dask" / "store.sqlite").rows()}
    assert all(w.startswith("tcp://") for w in workers)


@pytest.mark.parametrize("args, field", [
    (["--objectives", "accuracy,speed"], "--objectives"),
    (["--budget", "0"], "--budget"),
    (["--population", "1"], "--population"),
    (["--mutation", "1.5"], "--mutation"),
    (["--space", "/nonexistent/space.yaml"], "space"),
    (["--algorithm", "scalar", "--scalarize", "mnas:w=1"], "--scalarize"),
    (["--accuracy", "naswot"], "--data"),
    (["--accuracy", "predictor", "--predictor", "/nonexistent/p.npz"], "predictor"),
    (["--algorithm", "hw-only", "--net", '{"ks": [3]}'], "--net"),
    (["--initial", "/nonexistent/genomes.json"], "--initial"),
    (["--initial", "baseline", "--algorithm", "sequential"], "--initial"),
])
def test_bad_search_arguments_exit_2_with_one_line(tmp_path, capsys, args, field):
    base = ["search", "--accuracy", "macs", "--budget", "4", "--population", "2", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "r" / "store.sqlite").exists()


def test_cost_predictor_fast_path_search(tmp_path):
    """--cost predictor: latency/energy from the shipped learned predictor, area exact, no mapping."""
    from codesign.artifacts import WEIGHTS_DIR
    if not (WEIGHTS_DIR / "cost_predictor.npz").is_file():
        pytest.skip("no shipped cost predictor")
    d = tmp_path / "fast"
    assert main(["search", "--accuracy", "macs", "--cost", "predictor", "--budget", "40", "--population", "8",
                 "--out", str(d), "--quiet", "--no-report"]) == 0
    assert {p.name for p in (d / "plots").iterdir()} >= {"pareto.png", "hypervolume.png"}   # written by default
    rows = RunStore(d / "store.sqlite").rows()
    assert len(rows) == 40 and all(r["metrics"]["latency_ms"] > 0 and r["metrics"]["area_mm2"] > 0 for r in rows)
    from codesign.search.problem import Evaluator, accuracy_function
    from codesign.space.joint import load_space
    space = load_space()
    exact = Evaluator(space, accuracy_function({"source": "macs"}), mapper_budget=300)
    m = exact(rows[0]["genome"])
    assert rows[0]["metrics"]["area_mm2"] == pytest.approx(m["area_mm2"])
    assert rows[0]["metrics"]["macs"] == m["macs"]


def test_progress_moves_per_candidate(tmp_path, monkeypatch):
    """Issue #21: the bar moves as each candidate's result comes in, not once per generation."""
    from codesign.search import algorithms
    seen = []
    monkeypatch.setattr(algorithms.ProgressBar, "tick", lambda self, row=None: seen.append(("tick", self.bar.n)))
    real_call = algorithms.ProgressBar.__call__
    monkeypatch.setattr(algorithms.ProgressBar, "__call__",
                        lambda self, res, gen: (seen.append(("gen", gen)), real_call(self, res, gen)))
    assert main(["search", "--budget", "12", "--population", "6", "--cost", "predictor", "--no-plot", "--no-report",
                 "--out", str(tmp_path / "run")]) == 0
    assert [e for e in seen if e[0] == "tick"].__len__() == 12
    assert seen[:7] == [("tick", 0)] * 6 + [("gen", 0)]       # six results heard before generation 0 ends


def test_a_run_continues_only_with_the_predictor_file_it_was_scored_with(tmp_path, capsys):
    import shutil
    pred = tmp_path / "predictor.npz"
    shutil.copy(ROOT / "codesign" / "weights" / "predictor.npz", pred)
    d = tmp_path / "run"
    args = ["search", "--accuracy", "predictor", "--predictor", str(pred), "--budget", "8", "--population", "4",
            "--mapper-budget", "100", "--seed", "1", "--quiet", "--no-plot", "--no-report", "--no-verify"]
    assert main(args + ["--out", str(d)]) == 0
    import hashlib
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["evaluator"]["accuracy"]["predictor_sha256"] == hashlib.sha256(pred.read_bytes()).hexdigest()[:16]
    assert main(["search", "--resume", str(d), "--budget", "12", "--quiet", "--no-plot", "--no-report",
                 "--no-verify"]) == 0
    capsys.readouterr()
    shutil.copy(ROOT / "codesign" / "weights" / "predictor_v1.npz", pred)       # another predictor, same path
    before, config = _rows(d), (d / "config.json").read_text()
    assert main(["search", "--resume", str(d), "--budget", "16", "--quiet", "--no-plot", "--no-report",
                 "--no-verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.evaluator.accuracy.predictor_sha256" in err[0] and "changed" in err[0]
    assert _rows(d) == before and (d / "config.json").read_text() == config   # nothing scored or changed
    assert main(args + ["--out", str(d)]) == 2                 # the same command, now another configuration
    assert "--out" in capsys.readouterr().err


def test_a_zero_shot_run_resumes(tmp_path):
    d = tmp_path / "run"
    args = ["search", "--accuracy", "proxy:macs", "--budget", "8", "--population", "4", "--mapper-budget", "100",
            "--seed", "2", "--quiet", "--no-plot", "--no-report", "--no-verify"]
    assert main(args + ["--out", str(d)]) == 0
    assert main(["search", "--resume", str(d), "--budget", "12", "--quiet", "--no-plot", "--no-report",
                 "--no-verify"]) == 0
    assert len(_rows(d)) == 12


def test_cost_predictor_digest_is_recorded_and_checked(tmp_path):
    import shutil
    from accelerators.errors import SpecError
    from codesign.search.problem import check_scoring_files, evaluator_config
    from codesign.space.joint import read_space
    cost = tmp_path / "cost.npz"
    shutil.copy(ROOT / "codesign" / "weights" / "cost_predictor.npz", cost)
    space_dict, name = read_space(None)
    ev = evaluator_config(space_dict, name, "macs", cost_predictor=cost)
    assert len(ev["cost_predictor_sha256"]) == 16 and "predictor_sha256" not in ev["accuracy"]
    check_scoring_files(ev)
    cost.write_bytes(cost.read_bytes() + b"\0")
    with pytest.raises(SpecError) as e:
        check_scoring_files(ev, "run/config.json")
    assert e.value.field == "config.evaluator.cost_predictor_sha256"


def test_screening_predictor_digest_is_recorded_and_checked(tmp_path, monkeypatch):
    """A screened run records the digest of the cost predictor that chose its children
    (``screen_predictor_sha256``); it continues only with that file."""
    import shutil

    import codesign.search.screening as screening
    from accelerators.errors import SpecError
    from codesign.rundir.search import check_screening_file, search_config
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    cost = tmp_path / "cost.npz"
    shutil.copy(ROOT / "codesign" / "weights" / "cost_predictor.npz", cost)
    monkeypatch.setattr(screening, "screening_predictor_path", lambda ev: cost)
    space_dict, name = read_space(None)
    cfg = search_config(evaluator_config(space_dict, name, "macs"), budget=8, population=4, screen=4)
    assert len(cfg["screen_predictor_sha256"]) == 16
    check_screening_file(cfg)
    assert "screen_predictor_sha256" not in search_config(evaluator_config(space_dict, name, "macs"), budget=8)
    cost.write_bytes(cost.read_bytes() + b"\0")
    with pytest.raises(SpecError) as e:
        check_screening_file(cfg, "run/config.json")
    assert e.value.field == "config.screen_predictor_sha256" and "changed" in e.value.message


def test_initial_genomes_start_the_first_generation_and_stay_with_the_run(tmp_path, capsys):
    """--initial baseline: the space's baseline design is candidate 0; the run's config keeps it,
    so an extended run (--resume --budget) is the fresh longer run with the same start; a file of
    genomes works the same; a bad genome in a file exits 2 naming the file and the field."""
    from codesign.space.joint import load_space
    space = load_space()
    base = {"net": space.net.canonical(space.net.max_genome()), "hw": dict(space.baseline)}
    args = ARGS[:3] + ["--budget", "8"] + ARGS[5:]
    assert main(args + ["--initial", "baseline", "--out", str(tmp_path / "a")]) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["initial"] == [base]
    with RunStore(tmp_path / "a" / "store.sqlite") as s:
        first = s.rows()[0]
    assert first["generation"] == 0 and first["genome"] == base
    assert main(["search", "--resume", str(tmp_path / "a"), "--budget", "14", "--quiet", "--no-plot", "--no-report"]) == 0
    assert main(args + ["--budget", "14", "--initial", "baseline", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "front.csv").read_text() == (tmp_path / "b" / "front.csv").read_text()
    # a file of genomes: the same start as baseline, and not the random one
    (tmp_path / "g.json").write_text(json.dumps([base]))
    assert main(args + ["--initial", str(tmp_path / "g.json"), "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "config.json").read_text())["initial"] == [base]
    assert main(args + ["--out", str(tmp_path / "d")]) == 0
    with RunStore(tmp_path / "d" / "store.sqlite") as s:
        assert s.rows()[0]["genome"] != base
    capsys.readouterr()
    bad = dict(base, hw=dict(base["hw"], bits=5))
    (tmp_path / "bad.json").write_text(json.dumps([base, bad]))
    assert main(args + ["--initial", str(tmp_path / "bad.json"), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0] and "initial[1].hw.bits" in err[0]
    assert not (tmp_path / "e").exists() or not (tmp_path / "e" / "store.sqlite").exists()
