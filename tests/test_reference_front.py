"""Refactor guard: a seeded search must write the same Pareto front, byte for byte.

``tests/data/front_budget64_seed3.csv`` is the ``front.csv`` of
``codesign search --budget 64 --seed 3 --predictor codesign/weights/predictor_v1.npz`` (default
space, accuracy from the first shipped predictor, kept for this and for old figures; mapped cost
model). Moving code must not change the order of the random draws nor any number. If the cost
model itself changes on purpose, regenerate the file with that command, in a commit of its own.
About 70 s on one CPU core."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')

STORED = REPO / "tests" / "data" / "front_budget64_seed3.csv"


def test_seeded_search_front_is_byte_identical(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "codesign.cli", "search", "--budget", "64", "--seed", "3",
                    "--predictor", str(REPO / "codesign" / "weights" / "predictor_v1.npz"), "--out", str(out), "--no-plot", "--quiet"], check=True, cwd=REPO)
    assert (out / "front.csv").read_bytes() == STORED.read_bytes()
