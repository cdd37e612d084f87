"""Measured fronts (issue #20): a search with --data re-measures every front design on the
supernet, on the validation split, and front.csv carries top1_measured beside top1_predicted;
the measurements are committed to the store (a second verify measures nothing); the test split
is never read by search, verify or accuracy's default (only model-card and --split test)."""
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from codesign.cli import main                 # noqa: E402

pytestmark = pytest.mark.slow          # measures subnets (fast subset: pytest -m "not slow")


def _tiny_imagefolder(root, per_class=16, test_per_class=2):
    from codesign.nn.data import write_synthetic_imagefolder
    return write_synthetic_imagefolder(root, per_class, test_per_class)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _tiny_imagefolder(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture
def splits_read(monkeypatch):
    """Every split any loader is asked for, in order."""
    import codesign.nn.data as D
    seen, real = [], D.load_split

    def spy(root, split, *a, **kw):
        seen.append(split)
        return real(root, split, *a, **kw)
    monkeypatch.setattr(D, "load_split", spy)
    return seen


SEARCH = ["search", "--budget", "6", "--population", "3", "--cost", "predictor", "--seed", "2", "--no-plot",
          "--no-report", "--quiet"]


def test_search_with_data_measures_the_front_on_the_validation_split(tmp_path, data, splits_read, capsys):
    d = tmp_path / "run"
    assert main([*SEARCH, "--data", str(data), "--out", str(d)]) == 0
    out = capsys.readouterr().out
    assert "front re-measured on the validation split" in out and "predictor error on the front" in out
    front = pd.read_csv(d / "front.csv")
    assert len(front) >= 1 and front["top1_measured"].notna().all()
    assert (front["top1_predicted"] == front["top1_pct"]).all()
    assert np.allclose(front["top1_error_pct"], front["top1_predicted"] - front["top1_measured"])
    # a measurement on 80 held-out images is a multiple of 1/80
    assert np.allclose((front["top1_measured"] * 80 / 100) % 1, 0)
    summary = json.loads((d / "front_verification.json").read_text())
    assert summary["designs"] == len(front) == summary["measured_now"]
    assert summary["protocol"]["split"] == "validation" and summary["error"]["n"] == len(front)
    err = front["top1_error_pct"].to_numpy()
    assert summary["error"]["rmse_pct"] == pytest.approx(float(np.sqrt((err ** 2).mean())))
    # the front's hypervolume with measured accuracy, computed here by pymoo from front.csv
    from pymoo.indicators.hv import HV
    from codesign.api import load_space
    ref = load_space().joint.reference_point(("accuracy", "latency", "energy"))
    F = front[["top1_measured", "latency_ms", "energy_uj"]].to_numpy(float) * [-1, 1, 1]
    F = F[np.all(F < ref, axis=1)]
    assert summary["hypervolume_measured"] == pytest.approx(float(HV(ref_point=ref)(F)), rel=1e-9)
    assert "on measured accuracy" in out
    with sqlite3.connect(d / "store.sqlite") as db:
        assert db.execute("SELECT count(*) FROM measured").fetchone()[0] == len(front)
    assert "test" not in splits_read and "train" in splits_read

    # resumable: a second verification measures nothing, the front keeps its column
    assert main(["verify", str(d), "--quiet"]) == 0
    assert "(0 measured now)" in capsys.readouterr().out
    again = pd.read_csv(d / "front.csv")
    pd.testing.assert_frame_equal(again, front)
    all_rows = pd.read_csv(d / "all.csv")
    assert all_rows["top1_measured"].notna().sum() == len(front)


def test_measured_value_is_the_supernet_measurement(tmp_path, data):
    """The stored figure is exactly what measure() gives for that design and protocol."""
    from codesign.artifacts import predictor_split, supernet_path
    from codesign.nn.measure import measure
    from codesign.nn.supernet import load_supernet
    d = tmp_path / "run"
    assert main([*SEARCH, "--budget", "3", "--data", str(data), "--out", str(d)]) == 0
    row = pd.read_csv(d / "front.csv").iloc[0]
    g = json.loads(row["genome_json"])
    calib, val = predictor_split(data, 5000, seed=0)
    top1 = measure(load_supernet(supernet_path()), g["net"], g["hw"]["bits"], calib, val.images, val.labels)
    assert row["top1_measured"] == top1


def test_no_verify_and_missing_data(tmp_path, data, capsys):
    d = tmp_path / "run"
    assert main([*SEARCH, "--budget", "3", "--data", str(data), "--no-verify", "--out", str(d)]) == 0
    assert "top1_measured" not in pd.read_csv(d / "front.csv").columns
    e = tmp_path / "nodata"
    assert main([*SEARCH, "--budget", "3", "--out", str(e)]) == 0
    assert main(["verify", str(e)]) == 2
    assert "--data" in capsys.readouterr().err


def test_measured_search_reads_no_test_images(tmp_path, data, splits_read):
    assert main([*SEARCH, "--budget", "2", "--accuracy", "measured", "--data", str(data), "--no-verify",
                 "--out", str(tmp_path / "m")]) == 0
    assert main(["accuracy", "--genome", "min", "--bits", "8", "--data", str(data)]) == 0
    assert main([*SEARCH, "--budget", "2", "--accuracy", "naswot", "--data", str(data), "--no-verify",
                 "--out", str(tmp_path / "n")]) == 0
    rows = tmp_path / "rows.jsonl"
    from codesign.space.genome import DEFAULT_SPACE as S
    rng = np.random.default_rng(0)
    rows.write_text("".join(json.dumps({"genome": S.canonical(S.sample(rng)), "bits": 8, "top1": 80.0 + i}) + "\n"
                            for i in range(4)))
    assert main(["proxies", "--data", str(data), "--accuracy-data", str(rows), "--subnets", "4", "--bits", "8", "--json"]) == 0
    assert "test" not in splits_read
    assert main(["accuracy", "--genome", "min", "--bits", "8", "--data", str(data), "--split", "test"]) == 0
    assert splits_read[-1] == "test"
