"""The shipped artifacts: the accuracy predictor reproduces the figures in its file from the
shipped measurements, and (with the CIFAR-10 of ../shared) the shipped supernet reproduces its
model card and the measurements the predictor was trained on."""
import json

import numpy as np
import pytest

from conftest import REPO, SHARED

from codesign.artifacts import WEIGHTS_DIR
from codesign.predictors.accuracy import Predictor, evaluate, split_by_genome

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')

DATASET = WEIGHTS_DIR / "accuracy_data.jsonl"
CIFAR = SHARED / "data" / "cifar10"


def _rows():
    return [json.loads(line) for line in DATASET.read_text().splitlines()]


def _need_cifar():
    if not (CIFAR / "train.zip").is_file():
        pytest.skip(f"CIFAR-10 not found at {CIFAR} (set CODESIGN_SHARED to the folder holding data/cifar10)")
    pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")


@pytest.mark.parametrize("name, tau, rmse", [("predictor.npz", 0.85, 0.49),        # v2 (README: 0.855 / 0.48)
                                             ("predictor_v1.npz", 0.81, 0.60)])    # v1 (README: 0.812 / 0.59)
def test_shipped_predictor_reproduces_its_heldout_figures(name, tau, rmse):
    pred = Predictor.load(WEIGHTS_DIR / name)
    rows = _rows()
    extra = (pred.meta.get("extra") or {}).get("rows", 0)      # extreme and front rows (v2): fitted only
    assert len(rows) >= pred.meta["train"] - extra + pred.meta["test"]
    _, test = split_by_genome(rows, pred.meta.get("holdout", 0.2), pred.meta["seed"])
    m = evaluate(pred, [rows[i] for i in test])
    assert m["n"] == pred.meta["test"]
    assert m["kendall_tau"] == pytest.approx(pred.meta["heldout"]["kendall_tau"], abs=1e-9)
    assert m["rmse"] == pytest.approx(pred.meta["heldout"]["rmse"], abs=1e-6)
    # the README's figures for this file: held-out tau and RMSE over all bit-widths
    assert m["kendall_tau"] >= tau and m["rmse"] <= rmse, m
    # what the co-search relies on: the ranking of held-out genomes at the bit-widths that work
    for b in ("6", "8", "16"):
        assert m["per_bits"][b]["kendall_tau"] >= 0.6, (b, m["per_bits"][b])


def test_shipped_predictor_v2_is_reproduced_by_its_recorded_command(tmp_path):
    """v2's meta names its data files (each with its rows per measurement protocol) and the command;
    running that command again gives the same predictor (numpy only, about 15 s)."""
    import shlex
    from codesign.cli import main
    from codesign.predictors.accuracy import read_datasets
    from codesign.predictors.accuracy.protocols import count_protocols
    pred = Predictor.load(WEIGHTS_DIR / "predictor.npz")
    for src in pred.meta["sources"]:
        rows = read_datasets(REPO / src["file"])
        assert len(rows) == src["rows"] and count_protocols(rows) == src["protocols"], src
    assert {k for s in pred.meta["sources"] for k in s["protocols"]} == {"predictor", "verify"}
    argv = shlex.split(pred.meta["command"])[1:]
    out = tmp_path / "p.npz"
    argv[argv.index("--out") + 1] = str(out)
    import os
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(argv) == 0
    finally:
        os.chdir(cwd)
    again = Predictor.load(out)
    genomes = [r["genome"] for r in _rows()[:40]]
    for bits in (4, 6, 8, 16):
        assert np.allclose(again.predict(genomes, bits), pred.predict(genomes, bits), atol=1e-9)
    # every measured genome is a valid genome of the default space, every bit-width a known one
    from codesign.space.genome import DEFAULT_SPACE
    for r in rows[:50]:
        DEFAULT_SPACE.validate(r["genome"])
        assert r["bits"] in (4, 6, 8, 16) and 0 <= r["top1"] <= 100


def test_shipped_supernet_reproduces_model_card_and_dataset():
    _need_cifar()
    import torch
    from codesign.nn.measure import measure, measure_many
    from codesign.nn.supernet import load_supernet
    from codesign.artifacts import eval_split, predictor_split
    torch.set_num_threads(2)
    net = load_supernet(WEIGHTS_DIR / "supernet.pt")
    card = json.loads((WEIGHTS_DIR / "MODEL_CARD.json").read_text())
    row = next(r for r in card["measurements"] if r["name"] == "smallest" and r["bits"] == 8)
    hold, test = eval_split(CIFAR)
    top1 = measure(net, row["genome"], 8, hold.images, test.images, test.labels, clip=card.get("clip", "minmax"),
                   bn=card.get("bn", "float"))
    # thread count and BLAS change float rounding; measured spread here is about 0.2 points
    assert top1 == pytest.approx(row["top1"], abs=0.6)
    # an 8-bit row, measured with the float subnet's BN statistics (bn is recorded per bit-width)
    d = next(r for r in _rows() if r["bits"] == 8)
    meta = json.loads((WEIGHTS_DIR / "accuracy_data.json").read_text())
    calib, ev = predictor_split(CIFAR, holdout=meta["holdout"], eval_images=meta["eval_images"])
    bn = meta.get("bn", "float")                  # one mode, or one per bit-width
    got = measure_many(net, d["genome"], [d["bits"]], calib, ev.images, ev.labels,
                       seed=meta["seed"] + d.get("plan_index", 0), clip=meta.get("clip", "minmax"),
                       bn=bn[str(d["bits"])] if isinstance(bn, dict) else bn)
    assert got[d["bits"]] == pytest.approx(d["top1"], abs=0.6)
