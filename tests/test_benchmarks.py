"""Smoke runs of the benchmark scripts: they run, and end with the lines the README quotes."""
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')


@pytest.mark.parametrize("script, last", [
    ("cost_model.py", ["batched_evals_per_s", "batched_evals_per_s_tpu_like", "scalar_evals_per_s", "zigzag_ratio_scalar", "zigzag_ratio"]),
    ("mapper.py", ["resnet18_eyeriss_s", "resnet18_tpu_s", "zigzag_ratio"]),
    ("link_transfers.py", ["link_transfer_share"]),
])
def test_benchmark_smoke(script, last):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--smoke"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-len(last):]
    assert [l.split(":")[0] for l in lines] == last
    for l in lines:
        v = float(l.split(": ")[1])
        assert v > 0 or (l.startswith("zigzag") and v != v)     # ZigZag is not run by --smoke


def test_cosearch_benchmark_smoke_and_resume(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "cosearch.py"), "--smoke", "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-6:]
    assert [l.split(":")[0] for l in lines] == ["joint_beats_sequential", "joint_beats_random",
                                                "edp_reduction_vs_eyeriss", "candidates_per_min",
                                                "cold_candidates_per_min", "screened_candidates_per_min"]
    assert float(lines[4].split(": ")[1]) > 0 and float(lines[5].split(": ")[1]) > 0
    k, n = lines[0].split(": ")[1].split("/")
    assert 0 <= int(k) <= int(n) == 2
    assert float(lines[3].split(": ")[1].split()[0]) > 0
    # a second run (as after a kill) takes the finished runs from the directory: same figures
    runs = (tmp_path / "runs.jsonl").read_text().splitlines()
    (tmp_path / "runs.jsonl").write_text("\n".join(runs[:4]) + "\n" + runs[4][:50])   # torn last line
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("(from ") == 4 and again.stdout.splitlines()[-6:-3] == r.stdout.splitlines()[-6:-3]
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 6
    (tmp_path / "config.json").write_text('{"other": 1}')
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "config.json" in refused.stderr and "Traceback" not in refused.stderr


def test_scalesim_peer_without_its_venv_says_how_to_make_it(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scalesim_peer.py"),
                        "--scalesim-python", str(tmp_path / "no-venv" / "bin" / "python")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "python3 -m venv" in lines[0] and "pip install scalesim" in lines[0]


def test_scalesim_peer_with_a_python_lacking_scalesim_exits_2():
    import importlib.util
    if importlib.util.find_spec("scalesim") is not None:
        pytest.skip("scalesim is importable here: the peer would run")
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scalesim_peer.py"),
                        "--scalesim-python", sys.executable, "--layers", "resnet18_conv4_x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot import SCALE-Sim" in lines[0] and "pip install scalesim" in lines[0]


def test_proxies_benchmark_smoke(tmp_path):
    """benchmarks/proxies.py --smoke: a few small genomes, synthetic data; ends with the README's
    lines, writes the table, the per-genome scores and a plot per proxy."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "proxies.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-3:]
    assert [l.split(":")[0] for l in lines] == ["best_proxy", "ensemble_spearman", "macs_spearman"]
    assert -1 <= float(lines[0].split()[-1]) <= 1
    assert (tmp_path / "table.md").is_file() and len((tmp_path / "scores.jsonl").read_text().splitlines()) == 10
    assert (tmp_path / "plots" / "macs.png").is_file()
