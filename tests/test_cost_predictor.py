"""The learned latency/energy predictor: resumable data collection, the vectorized layer table
against genome_layers, save/load, training on a small dataset (mapper budget 100, a reduced
hardware space so that mappings are shared between candidates), bad files."""
import json

import numpy as np
import pytest

from accelerators.errors import SpecError
from codesign.cli.cost import main as cost_main
from codesign.predictors.cost_data import SHAPE_KEYS, cost_dataset, read_dataset
from codesign.predictors.features import LayerTable, spatial_best
from codesign.predictors.cost import CostPredictor, train_cost_predictor
from codesign.space.joint import load_space

SMALL_SPACE = """
hardware:
  template: eyeriss_like
  pe_x: [8, 14]
  pe_y: [12]
  bits: [8, 16]
  dataflow: [row-stationary, weight-stationary]
  dram_type: [LPDDR4, DDR3]
  dram_bw: [4]
  sizes_kib: {GlobalBuffer: [64]}
"""
BUDGET = 100
N = 40


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("cost")
    space_file = d / "space.yaml"
    space_file.write_text(SMALL_SPACE)
    space = load_space(space_file)
    data = d / "full.jsonl"
    rows = cost_dataset(space, N, data, seed=3, mapper_budget=BUDGET, progress=False)
    return space, space_file, data, rows


@pytest.mark.slow
def test_dataset_rows_match_the_model(small):
    space, _, _, rows = small
    assert len(rows) == N and all(r["status"] == "ok" for r in rows)
    r = rows[0]
    assert r["cycles"] == sum(l["cycles"] for l in r["layers"])
    assert r["latency_ms"] == pytest.approx(1e3 * r["cycles"] / (r["clock_ghz"] * 1e9))
    from accelerators.network import network_totals
    from codesign.space.layers import genome_layers
    tot = network_totals(genome_layers(r["genome"]["net"]), space.hw.architecture(r["genome"]["hw"]),
                         budget=BUDGET, seed=0)
    assert tot["cycles"] == r["cycles"] and tot["energy_pj"] == pytest.approx(r["energy_pj"])


def test_collection_resumes_after_a_kill(small, tmp_path):
    space, _, full, _ = small
    part = tmp_path / "part.jsonl"
    cost_dataset(space, 3, part, seed=3, mapper_budget=BUDGET, progress=False)
    with open(part, "a") as f:                      # a killed writer's half line
        f.write(full.read_text().splitlines()[3][:500])
    rows = cost_dataset(space, 5, part, seed=3, mapper_budget=BUDGET, progress=False)
    assert part.read_text().splitlines() == full.read_text().splitlines()[:5]
    assert [r["genome"] for r in rows] == [json.loads(l)["genome"] for l in full.read_text().splitlines()[:5]]
    with pytest.raises(SpecError) as e:             # another seed must not extend this file
        cost_dataset(space, 6, part, seed=4, mapper_budget=BUDGET, progress=False)
    assert str(part) in str(e.value) and "seed" in str(e.value)


def test_layer_table_equals_genome_layers(small):
    from codesign.space.layers import genome_layers
    from codesign.predictors.cost_data import layer_shape
    space = small[0]
    table = LayerTable(space.net)
    rng = np.random.default_rng(0)
    nets = [space.sample(rng)["net"] for _ in range(25)]
    shapes, owner, _ = table.shapes(nets)
    for n, net in enumerate(nets):
        want = sorted(tuple(layer_shape(l.work)[k] for k in SHAPE_KEYS) for l in genome_layers(net))
        assert sorted(map(tuple, shapes[owner == n].tolist())) == want


def test_spatial_best_respects_divisors():
    # K=24 on an X of 16 PEs: best divisor is 12; C=3 x R=3 on Y=8: 3 (9 does not fit, 3*... )
    best = spatial_best((1, 24, 3, 1, 1, 3, 1, 1, 1), ("K",), ("C", "R"), 16)
    assert best[16, 8] == 12 * 3 and best[16, 9] == 12 * 9 and best[1, 1] == 1


@pytest.fixture(scope="module")
def trained(small):
    space, _, _, rows = small
    return train_cost_predictor(rows, space, seed=0, holdout=0.25, hidden=32, epochs=60, members=2)


def test_training_gives_finite_correlated_metrics(small, trained):
    pred, m = trained
    assert m["n"] == 10 and m["n_train"] == 30
    for k in ("latency", "energy"):
        assert all(np.isfinite(v) for v in m[k].values())
        assert m[k]["kendall_tau"] > 0.5, m
    lat, en = pred.predict([r["genome"] for r in small[3]])
    assert lat.shape == en.shape == (N,) and np.all(lat > 0) and np.all(en > 0)


def test_training_is_seeded(small, trained):
    space, _, _, rows = small
    again, m = train_cost_predictor(rows, space, seed=0, holdout=0.25, hidden=32, epochs=60, members=2)
    assert m == trained[1]


def test_vectorized_prediction_equals_the_per_layer_sum(small, trained):
    from codesign.predictors.features import hw_matrix
    pred, rows = trained[0], small[3][:6]
    cyc, en = pred.predict_cycles_energy([r["genome"] for r in rows])
    for n, r in enumerate(rows):
        shapes = np.array([[l["shape"][k] for k in SHAPE_KEYS] for l in r["layers"]])
        hw = hw_matrix([r["genome"]["hw"]], pred.meta)[[0] * len(shapes)]
        per_layer = pred.layer_cost(shapes, hw)
        np.testing.assert_allclose([cyc[n], en[n]], per_layer.sum(0), rtol=1e-6)
    lat, en_uj = pred.predict([r["genome"] for r in rows])
    np.testing.assert_allclose(lat, 1e3 * cyc / (rows[0]["clock_ghz"] * 1e9))
    np.testing.assert_allclose(en_uj, en / 1e6)


def test_hardware_metrics_match_the_evaluator_where_exact(small, trained):
    from codesign.search.problem import Evaluator
    space, rows = small[0], small[3][:3]
    pred = trained[0]
    pred.check_space(space)
    ev = Evaluator(space, lambda net, bits: 0.0, mapper_budget=BUDGET)
    for r, got in zip(rows, pred.hardware_metrics(space, [r["genome"] for r in rows])):
        want = ev.hardware(r["genome"]["hw"], r["genome"]["net"])
        assert set(want) == set(got)
        for k in ("area_mm2", "onchip_kib", "macs"):
            assert got[k] == pytest.approx(want[k])
        assert got["latency_ms"] == pytest.approx(want["latency_ms"], rel=0.5)
    with pytest.raises(SpecError):
        pred.check_space(load_space())            # another template version / size genes


def test_save_load_round_trip(small, trained, tmp_path):
    pred = trained[0]
    f = tmp_path / "cost.npz"
    pred.save(f)
    back = CostPredictor.load(f)
    genomes = [r["genome"] for r in small[3]]
    for a, b in zip(pred.predict(genomes), back.predict(genomes)):
        np.testing.assert_array_equal(a, b)
    assert back.meta["heldout"] == trained[1]


def test_bad_files_raise_spec_errors(tmp_path, small, trained):
    missing = tmp_path / "nope.npz"
    with pytest.raises(SpecError) as e:
        CostPredictor.load(missing)
    assert str(missing) in str(e.value)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(SpecError) as e:
        CostPredictor.load(junk)
    assert str(junk) in str(e.value)
    other = tmp_path / "other.npz"
    np.savez(other, W0=np.zeros((2, 2)))
    with pytest.raises(SpecError):
        CostPredictor.load(other)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"i": 0, "genome": {}}\nnot json\n{"i": 2, "genome": {}}\n')
    with pytest.raises(SpecError) as e:
        read_dataset(bad)
    assert "line 2" in str(e.value) and str(bad) in str(e.value)
    with pytest.raises(SpecError):
        train_cost_predictor([], small[0])
    g = small[3][0]["genome"]
    with pytest.raises(SpecError):
        trained[0].predict([{"net": g["net"], "hw": dict(g["hw"], pe_x=64)}])
    with pytest.raises(SpecError):
        trained[0].predict([{"net": dict(g["net"], r=31), "hw": g["hw"]}])


def test_cli(small, tmp_path, capsys):
    _, space_file, data, _ = small
    out = tmp_path / "p.npz"
    assert cost_main(["train-cost-predictor", "--cost-data", str(data), "--space", str(space_file), "--out",
                      str(out), "--json", "--members", "1", "--hidden", "16", "--epochs", "20"]) == 0
    m = json.loads(capsys.readouterr().out)["heldout"]
    assert 0 <= m["latency"]["within_10pct"] <= 1 and out.is_file()
    assert cost_main(["train-cost-predictor", "--cost-data", str(tmp_path / "none.jsonl"), "--out", str(out)]) == 2
    assert "none.jsonl" in capsys.readouterr().err
    assert cost_main(["cost-data", "--genomes", "-1", "--out", str(tmp_path / "x.jsonl")]) == 2


@pytest.mark.parametrize("edit, words", [
    (lambda r: r.update(energy_pj=None), "energy_pj: must be a finite number > 0, got None"),
    (lambda r: r.update(cycles=-5), "cycles: must be a finite number > 0"),
    (lambda r: r.update(energy_pj="x"), "energy_pj: must be a finite number > 0, got 'x'"),
    (lambda r: r.update(energy_pj=float("nan")), "energy_pj: must be a finite number > 0, got nan"),
    (lambda r: r.pop("layers"), "layers: must be a non-empty list"),
    (lambda r: r.update(layers=[{"name": "x"}]), "layers[0].shape: missing"),
    (lambda r: r["layers"][0].update(energy_pj=-1.0), "layers[0].energy_pj"),
    (lambda r: r["genome"]["hw"].update(pe_x=3), "line 2.genome.hw.pe_x"),
], ids=["energy-null", "cycles-negative", "energy-text", "energy-nan", "no-layers", "layer-no-shape",
        "layer-energy-negative", "genome-off-space"])
def test_train_cost_predictor_refuses_broken_rows(tmp_path, small, capsys, edit, words):
    """A hand-edited cost dataset: every mapped row's totals and layers are finite figures and its
    genome is the space's, else one line naming the file and line 2 (a null or negative energy
    used to train a NaN model; text ended in an internal error)."""
    _, space_file, data, _ = small
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    edit(rows[1])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from codesign.cli import main
    assert main(["train-cost-predictor", "--cost-data", str(bad), "--space", str(space_file),
                 "--out", str(tmp_path / "p.npz"), "--members", "1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 2" in err and words in err and "Traceback" not in err
    assert not (tmp_path / "p.npz").exists()
