"""Measurement protocols of the accuracy predictor's rows (predictor v2, issue #20): every row used
for fitting names its protocol, ``add-measured`` turns the repository's kept measurements (a
verified front folder, a benchmark's measured.jsonl) into rows of the ``verify`` protocol, and
``train-predictor`` records its sources and their protocols in the predictor's meta. Numpy only."""
import json
from pathlib import Path

import pytest

from accelerators.errors import SpecError
from codesign.artifacts import WEIGHTS_DIR
from codesign.cli import main
from codesign.predictors.accuracy import Predictor, read_datasets, train_predictor
from codesign.predictors.accuracy.protocols import (PROTOCOLS, count_protocols, measurement_protocol,
                                                    protocol_name, verify_protocol_name)
from codesign.rundir.verify import measured_rows

REPO = Path(__file__).resolve().parents[1]
VERIFY = {"split": "validation", "images": None, "holdout": 5000, "seed": 0, "weights_sha256": "ab" * 32}


def test_protocol_names():
    assert set(PROTOCOLS) == {"predictor", "verify"}
    assert measurement_protocol(2500, 5000, "quantized", 4) == "predictor"
    assert measurement_protocol(2500, 5000, "float", 8) == "predictor"
    assert measurement_protocol(2500, 5000, "quantized", 8) == "other"     # BN mode of verify, fewer images
    assert measurement_protocol(5000, 5000, "float", 8) == "other"
    assert verify_protocol_name(VERIFY) == "verify"
    assert verify_protocol_name({**VERIFY, "images": 500}) == "other"
    assert protocol_name({"protocol": VERIFY}) == "verify"                 # add-measured rows before names
    assert protocol_name({}, "predictor") == "predictor"


def test_shipped_rows_all_carry_the_predictor_protocol():
    for f in (WEIGHTS_DIR / "accuracy_data.jsonl", REPO / "experiments/predictor_extremes/extremes.jsonl"):
        assert count_protocols(read_datasets(f)) == {"predictor": len(read_datasets(f))}
    rows = read_datasets(REPO / "experiments/predictor_v2/front_rows.jsonl")
    assert count_protocols(rows) == {"verify": len(rows)}


def test_an_unknown_protocol_is_refused_naming_file_and_field(tmp_path):
    r = read_datasets(WEIGHTS_DIR / "accuracy_data.jsonl")[0]
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({**r, "protocol": "made-up"}) + "\n")
    with pytest.raises(SpecError, match="protocol") as e:
        read_datasets(f)
    assert "bad.jsonl" in str(e.value)
    assert main(["train-predictor", "--accuracy-data", str(f), "--out", str(tmp_path / "p.npz")]) == 2


def test_add_measured_reads_a_kept_front_and_a_benchmark_file(tmp_path):
    rows = measured_rows(REPO / "experiments/measured_front")
    assert len(rows) == 19 and {r["protocol"] for r in rows} == {"verify"}
    assert all("top1_predicted" in r for r in rows)
    rows = measured_rows(REPO / "experiments/bench_cosearch/2026-12-02/measured.jsonl")
    assert len(rows) > 100 and {r["protocol"] for r in rows} == {"verify"}
    bad = tmp_path / "measured.jsonl"
    bad.write_text(json.dumps({"net": {"ks": [3]}, "bits": 8, "top1": 80.0, "protocol": VERIFY}) + "\n")
    with pytest.raises(SpecError) as e:
        measured_rows(bad)
    assert "measured.jsonl:1" in str(e.value)
    assert main(["add-measured", str(bad), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert main(["add-measured", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "x.jsonl")]) == 2


def test_train_predictor_records_protocols_and_sources(tmp_path):
    base = read_datasets(WEIGHTS_DIR / "accuracy_data.jsonl")[:200]
    f = tmp_path / "base.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in base))
    extra = REPO / "experiments/predictor_v2/front_rows.jsonl"
    out = tmp_path / "p.npz"
    assert main(["train-predictor", "--accuracy-data", str(f), "--extra-data", str(extra), "--out", str(out)]) == 0
    meta = Predictor.load(out).meta
    assert set(meta["protocols"]["base"]) == {"predictor"}
    assert set(meta["protocols"]["extra"]) == {"verify"}
    assert [s["role"] for s in meta["sources"]] == ["accuracy-data", "extra-data"]
    assert meta["sources"][1]["protocols"] == {"verify": len(read_datasets(extra))}
    assert meta["command"].startswith("codesign train-predictor --accuracy-data ")
    _, m = train_predictor(base)
    assert m["n"] > 0
