"""The active-learning loop of the accuracy predictor (issue #20, item 3): the measured front of a
verified search run -> ``codesign add-measured RUN --out FILE`` (predictor-data rows, deduplicated
by subnet and bit-width) -> ``codesign train-predictor --extra-data FILE`` -> a predictor that has
moved towards the measurements on those genomes, and whose held-out figures are still those of
the base data's held-out genomes. Numpy only (no torch, no data set): a few seconds."""
import json

import numpy as np
import pytest

from codesign.artifacts import WEIGHTS_DIR
from codesign.cli import main
from codesign.predictors.accuracy import Predictor, read_datasets, split_by_genome, train_predictor
from codesign.rundir.store import genome_key, open_run
from codesign.rundir.verify import SUMMARY, add_measured, measured_rows
from codesign.space.genome import DEFAULT_SPACE

PROTOCOL = {"split": "validation", "images": None, "holdout": 5000, "seed": 0, "weights_sha256": "ab" * 32}
HW = {"bits": 8, "dataflow": "free", "dram_bw": 4, "dram_type": "HBM2", "pe_x": 8, "pe_y": 8,
      "sizes_kib": {"GlobalBuffer": 32, "InputSpad": 0.09375, "PsumSpad": 0.046875, "WeightSpad": 0.21875}}
SHIFT = 3.0            # the fake measurements lie this far above the predictor's figure


@pytest.fixture(scope="module")
def base_rows():
    """The first 60 genomes of the shipped data (240 rows): a predictor fits in about a second."""
    rows = read_datasets(WEIGHTS_DIR / "accuracy_data.jsonl")
    keep = []
    for r in rows:
        keep.append(r)
        if len({json.dumps(k["genome"], sort_keys=True) for k in keep}) > 60:
            return keep[:-1]
    return keep


def _genomes(n, seed=7):
    rng = np.random.default_rng(seed)
    return [DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng)) for _ in range(n)]


def _fake_run(d, genomes, top1, verified=True):
    """A search run directory as ``codesign verify`` leaves it: the designs in the store, their
    measured top-1 under PROTOCOL, the summary naming that protocol."""
    store = open_run(d, create=True)
    try:
        for i, (g, t) in enumerate(zip(genomes, top1)):
            genome = {"net": g, "hw": HW}
            key = genome_key(genome)
            store.put(i, genome, {"top1_pct": t - SHIFT}, 0, key=key)
            if verified:
                store.put_measured(key, 8, PROTOCOL, t, 1.0)
    finally:
        store.close()
    if verified:
        (d / SUMMARY).write_text(json.dumps({"protocol": PROTOCOL, "source": "predictor"}))
    return d


def test_add_measured_train_with_extra_moves_the_predictor(tmp_path, base_rows, capsys):
    shipped = Predictor.load(WEIGHTS_DIR / "predictor.npz")
    genomes = _genomes(4)
    measured = shipped.predict(genomes, 8) + SHIFT
    run = _fake_run(tmp_path / "run", genomes, measured)

    rows = measured_rows(run)
    assert len(rows) == 4 and all(r["bits"] == 8 and r["protocol"] == "verify" and r["protocol_detail"] == PROTOCOL
                                  for r in rows)
    assert sorted(r["top1"] for r in rows) == pytest.approx(sorted(measured))

    out = tmp_path / "extra.jsonl"
    assert main(["add-measured", str(run), "--out", str(out)]) == 0
    assert "4 measured designs added" in capsys.readouterr().out
    assert main(["add-measured", str(run), "--out", str(out)]) == 0          # dedup by genome + bits
    assert "0 measured designs added" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 4
    assert add_measured(run, out)["skipped"] == 4

    base = tmp_path / "base.jsonl"
    base.write_text("".join(json.dumps(r) + "\n" for r in base_rows))
    p0, p1 = tmp_path / "p0.npz", tmp_path / "p1.npz"
    assert main(["train-predictor", "--accuracy-data", str(base), "--out", str(p0)]) == 0
    assert main(["train-predictor", "--accuracy-data", str(base), "--extra-data", str(out), "--out", str(p1)]) == 0
    assert "+4 extra rows of 4 genomes fitted" in capsys.readouterr().out
    before = Predictor.load(p0).predict(genomes, 8)
    after = Predictor.load(p1).predict(genomes, 8)
    # towards the measurements: closer on every genome, and higher on average
    assert np.all(np.abs(after - measured) < np.abs(before - measured))
    assert (after - before).mean() > 0.5
    meta = Predictor.load(p1).meta
    assert meta["extra"] == {"rows": 4, "left_out_heldout_genome": 0, "genomes": 4}
    assert meta["test"] == Predictor.load(p0).meta["test"]                     # same held-out genomes

    # the loop's last step: a search ranked by the refitted predictor
    d = tmp_path / "search"
    assert main(["search", "--budget", "4", "--population", "2", "--cost", "predictor", "--predictor", str(p1),
                 "--no-plot", "--no-report", "--quiet", "--out", str(d)]) == 0
    import pandas as pd
    front = pd.read_csv(d / "front.csv")
    nets = [json.loads(g)["net"] for g in front["genome_json"]]
    bits = [json.loads(g)["hw"]["bits"] for g in front["genome_json"]]
    assert np.allclose(front["top1_pct"], Predictor.load(p1).predict(nets, bits))


def test_extra_rows_of_held_out_genomes_are_never_fitted(base_rows):
    _, test = split_by_genome(base_rows, 0.2, 0)
    held = [base_rows[i] for i in test[:3]]
    extra = [{**r, "top1": r["top1"] + 5} for r in held]
    pred, m = train_predictor(base_rows, extra=extra)
    ref, m0 = train_predictor(base_rows)
    assert pred.meta["extra"]["left_out_heldout_genome"] == 3 and pred.meta["extra"]["rows"] == 0
    assert m["rmse"] == pytest.approx(m0["rmse"])


def test_a_run_not_verified_is_refused(tmp_path):
    from accelerators.errors import SpecError
    run = _fake_run(tmp_path / "run", _genomes(2), [80.0, 81.0], verified=False)
    with pytest.raises(SpecError, match="front_verification"):
        measured_rows(run)
    with pytest.raises(SpecError, match="no such run"):
        measured_rows(tmp_path / "none")
