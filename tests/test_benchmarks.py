"""Smoke runs of the benchmark scripts: they run, and end with the lines the README quotes."""
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("script, last", [
    ("cost_model.py", ["batched_evals_per_s", "zigzag_ratio"]),
    ("mapper.py", ["resnet18_eyeriss_s", "resnet18_tpu_s", "zigzag_ratio"]),
])
def test_benchmark_smoke(script, last):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--smoke"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-len(last):]
    assert [l.split(":")[0] for l in lines] == last
    for l in lines[:-1]:
        assert float(l.split(": ")[1]) > 0


def test_cosearch_benchmark_smoke():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cosearch.py"), "--smoke"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-4:]
    assert [l.split(":")[0] for l in lines] == ["joint_beats_sequential", "joint_beats_random",
                                                "edp_reduction_vs_eyeriss", "candidates_per_min"]
    k, n = lines[0].split(": ")[1].split("/")
    assert 0 <= int(k) <= int(n) == 2
    assert float(lines[3].split(": ")[1]) > 0
