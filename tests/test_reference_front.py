"""Refactor guard: a seeded search must write the same Pareto front (every row and field; numbers to 1e-12).

``tests/data/front_budget64_seed3.csv`` is the ``front.csv`` of
``codesign search --budget 64 --seed 3 --predictor codesign/weights/predictor_v1.npz`` (default
space, accuracy from the first shipped predictor, kept for this and for old figures; mapped cost
model). Moving code must not change the order of the random draws nor any number. If the cost
model itself changes on purpose, regenerate the file with that command, in a commit of its own.
About 70 s on one CPU core.

Byte for byte except the last bit of a float: numpy's BLAS picks its kernels by CPU, so the
predictor's matrix products can round their last bit differently on another processor (found
2026-12-03: an AMD EPYC machine gives top1_pct 1 ulp away from the stored file's, made on
another CPU). So every row, header, id, genome and text field must be identical, and every
number equal to 1e-12 relative: a real change moves a figure far more than that."""
import csv
import io
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
    got = list(csv.reader(io.StringIO((out / "front.csv").read_text())))
    want = list(csv.reader(io.StringIO(STORED.read_text())))
    assert len(got) == len(want) and got[0] == want[0]
    for row_got, row_want in zip(got[1:], want[1:]):
        assert len(row_got) == len(row_want)
        for name, x, y in zip(want[0], row_got, row_want):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                raise AssertionError(f"{name}: {x!r} != {y!r}") from None
            assert fx == pytest.approx(fy, rel=1e-12, abs=0.0), name
