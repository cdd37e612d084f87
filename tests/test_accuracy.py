"""Accuracy measurement, the resumable measurement job, the predictor and the proxies, on tiny
synthetic data and an untrained supernet (the shipped-checkpoint figures are checked elsewhere)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from codesign.nn.measure import accuracy_dataset, measure          # noqa: E402
from codesign.cli import main                                    # noqa: E402
from codesign.space.genome import DEFAULT_SPACE as S                   # noqa: E402
from codesign.predictors.accuracy import Predictor, encode, train_predictor  # noqa: E402
from codesign.nn.proxies import correlations, proxies               # noqa: E402
from codesign.nn.supernet import Supernet                           # noqa: E402

RNG = np.random.default_rng(0)
IMAGES = (RNG.random((40, 3, 32, 32)) * 255).astype(np.uint8)
LABELS = RNG.integers(0, 10, 40)


@pytest.mark.slow
def test_measure_and_resumable_dataset(tmp_path):
    torch.manual_seed(0)
    net = Supernet().eval()
    top1 = measure(net, S.min_genome(), 8, IMAGES[:20], IMAGES[20:], LABELS[20:], calib_batches=2, batch=10)
    assert 0.0 <= top1 <= 100.0
    out = tmp_path / "acc.jsonl"
    kw = dict(progress=False, seed=1)
    rows3 = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], out, n=3, **kw)
    with open(out, "a") as fh:
        fh.write('{"genome": {"ks": [3')                 # a torn line, as after kill -9
    rows5 = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], out, n=5, **kw)
    assert len(rows5) == 5 and rows5[:3] == rows3
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(lines) == 5 and len({json.dumps(l["genome"]) + str(l["bits"]) for l in lines}) == 5


@pytest.mark.slow
def test_shards_together_are_the_single_run(tmp_path):
    """k shards (k processes or machines), concatenated, hold exactly the rows of one process."""
    torch.manual_seed(0)
    net = Supernet().eval()
    kw = dict(progress=False, seed=2, n=12)
    whole = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "all.jsonl", **kw)
    parts = [accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / f"s{i}.jsonl", shard=(i, 2),
                              eval_batch=7, **kw) for i in range(2)]
    def key(r):
        return json.dumps(r["genome"], sort_keys=True) + str(r["bits"])
    assert len(whole) == 12 and sum(len(p) for p in parts) == 12
    got = {key(r): r["top1"] for p in parts for r in p}
    assert got == {key(r): r["top1"] for r in whole}
    # each row names its genome's place in the plan (its measurement seed is seed + plan_index)
    assert sorted({r["plan_index"] for p in parts for r in p}) == sorted({r["plan_index"] for r in whole}) == [0, 1, 2]
    assert {r["plan_index"] % 2 for r in parts[1]} == {1}
    stopped = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "late.jsonl",
                               deadline=0.0, **kw)
    assert stopped == []
    with pytest.raises(ValueError):
        accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "x.jsonl", shard=(2, 2), **kw)
    assert main(["accuracy-data", "--data", str(tmp_path), "--out", str(tmp_path / "y.jsonl"),
                 "--shard", "3/2"]) == 2
    (tmp_path / "y.jsonl").write_text(json.dumps(whole[0]) + "\n")
    (tmp_path / "y.json").write_text(json.dumps({"clip": "minmax"}))
    assert main(["accuracy-data", "--data", str(tmp_path), "--out", str(tmp_path / "y.jsonl"), "--clip", "mse"]) == 2



@pytest.mark.slow
def test_repeated_draws_of_some_bit_widths(tmp_path, capsys):
    """--bits 4 --draws K: the full plan's genomes, each pair measured K times with independent
    calibration draws (draw 0 is the single measurement), top1 their mean; a later file's rows
    replace an earlier one's when the predictor reads both."""
    torch.manual_seed(0)
    net = Supernet().eval()
    kw = dict(progress=False, seed=3)
    single = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "all.jsonl", n=8, **kw)
    rep = accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "b4.jsonl", n=2, bits=(4,),
                           draws=3, **kw)
    four = [r for r in single if r["bits"] == 4]
    assert [r["genome"] for r in rep] == [r["genome"] for r in four]
    assert [r["plan_index"] for r in rep] == [r["plan_index"] for r in four] == [0, 1]
    for r, s in zip(rep, four):
        assert len(r["draws"]) == 3 and r["draws"][0] == s["top1"]
        assert r["top1"] == pytest.approx(np.mean(r["draws"]), abs=1e-4)
    assert "draws" not in single[0]
    with pytest.raises(ValueError):
        accuracy_dataset(net, IMAGES[:20], IMAGES[20:], LABELS[20:], tmp_path / "x.jsonl", n=2, bits=(5,), **kw)
    from codesign.predictors.accuracy import read_datasets
    merged = read_datasets([tmp_path / "all.jsonl", tmp_path / "b4.jsonl"])
    assert len(merged) == 8
    assert [r.get("draws") is not None for r in merged] == [b == 4 for b in (r["bits"] for r in merged)]
    # a file continued with other settings is refused (one line, exit 2)
    (tmp_path / "b4.json").write_text(json.dumps({"clip": "minmax", "bits": [4], "draws": 3, "bn": "quantized"}))
    base = ["accuracy-data", "--data", str(tmp_path), "--out", str(tmp_path / "b4.jsonl"), "--clip", "minmax"]
    for extra, flag in ((["--bits", "4", "--draws", "2"], "--draws 3"), (["--bits", "4,8", "--draws", "3"], "--bits 4"),
                        (["--bits", "4,5"], "--bits"), (["--bits", "4", "--draws", "3", "--bn", "float"], "--bn quantized")):
        capsys.readouterr()
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert flag in err and len(err.strip().splitlines()) == 1, err


def _synthetic_top1(g, b):
    used = [i for _, i in S.active_blocks(g)]
    return (70 + 0.4 * sum(g["e"][i] for i in used) / 4 + 0.3 * sum(g["ks"][i] for i in used) / 7
            + 0.15 * (g["r"] - 24) - (6.0 if b == 4 else 1.0 if b == 6 else 0.0))


def _synthetic_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        g = S.canonical(S.sample(rng))
        b = int(rng.choice([4, 6, 8, 16]))
        rows.append({"genome": g, "bits": b, "top1": _synthetic_top1(g, b) + rng.normal(0, 0.2)})
    return rows


@pytest.mark.slow
def test_predictor_learns_and_round_trips(tmp_path):
    rows = _synthetic_rows(400)
    pred, m = train_predictor(rows, seed=0)                     # kernel ridge, settings by CV over genomes
    assert m["kendall_tau"] > 0.8 and m["rmse"] < 1.0 and pred.meta["kind"] == "kernel"
    assert m["per_bits"]["8"]["rmse"] < 1.0
    f = tmp_path / "p.npz"
    pred.save(f)
    again = Predictor.load(f)
    gs = [r["genome"] for r in rows[:10]]
    assert np.allclose(pred.predict(gs, 8), again.predict(gs, 8))
    assert np.isfinite(pred.predict([S.max_genome(), S.min_genome()], [4, 16])).all()
    with pytest.raises(Exception, match="bit-widths"):
        pred.predict([S.max_genome()], [5])
    lin, m_lin = train_predictor(rows, seed=0, kind="ridge")
    assert lin.meta["kind"] == "ridge" and m_lin["kendall_tau"] > 0.8
    lin.save(tmp_path / "lin.npz")
    assert np.allclose(Predictor.load(tmp_path / "lin.npz").predict(gs, 8), lin.predict(gs, 8))
    code = main(["accuracy", "--genome", "max", "--bits", "8", "--predictor", str(f), "--json"])
    assert code == 0



@pytest.mark.slow
def test_four_bit_rows_shared_or_separate_by_cross_validation():
    """The 4-bit treatment is the one of least cross-validated RMSE over all rows; 4-bit accuracy
    collapsed to noise (min/max calibration) gets its own model, clearly."""
    rng = np.random.default_rng(5)
    genomes = [S.canonical(S.sample(rng)) for _ in range(60)]
    smooth, collapsed = [], []
    for g in genomes:
        for b in (4, 6, 8, 16):
            t = _synthetic_top1(g, b) + rng.normal(0, 0.2)
            smooth.append({"genome": g, "bits": b, "top1": t})      # 4 bits: 6 points below, same shape
            collapsed.append({"genome": g, "bits": b, "top1": 10 + abs(rng.normal(0, 3)) if b == 4 else t})
    pred, m = train_predictor(smooth, seed=0, kind="ridge")
    cv = pred.meta["cv_rmse_all_by_four_bit"]
    assert set(cv) == {"shared", "separate"} and pred.meta["four_bit"] == min(cv, key=cv.get)
    assert m["per_bits"]["4"]["rmse"] < 1.0
    pred, m = train_predictor(collapsed, seed=0, kind="ridge")
    cv = pred.meta["cv_rmse_all_by_four_bit"]
    assert pred.meta["four_bit"] == "separate" and cv["shared"] > 1.1 * cv["separate"]
    assert m["per_bits"]["8"]["rmse"] < 1.0

def test_predictor_ensemble_with_size_features_and_genome_split(tmp_path):
    from codesign.predictors.accuracy import split_by_genome
    rows = _synthetic_rows(300)
    rows += [dict(r, bits=b, top1=_synthetic_top1(r["genome"], b))          # genomes at two bit-widths
             for r in rows[:60] for b in [6 if r["bits"] != 6 else 8]]
    train, test = split_by_genome(rows, 0.2, seed=0)
    key = lambda i: json.dumps(rows[i]["genome"], sort_keys=True)      # noqa: E731
    assert not {key(i) for i in train} & {key(i) for i in test} and len(train) + len(test) == len(rows)
    pred, m = train_predictor(rows, seed=0, kind="mlp", epochs=150, members=2, use_summary=True)
    assert pred.meta["members"] == 2 and pred.meta["summary"] and set(m["per_bits"]) <= {"4", "6", "8", "16"}
    assert encode([S.max_genome()], [8]).shape[1] + 2 == pred.meta["features"]
    assert m["kendall_tau"] > 0.7
    f = tmp_path / "e.npz"
    pred.save(f)
    gs = [r["genome"] for r in rows[:10]]
    assert np.allclose(Predictor.load(f).predict(gs, 6), pred.predict(gs, 6))
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    assert main(["accuracy", "--genome", "max", "--bits", "8", "--predictor", str(bad)]) == 2


@pytest.mark.slow
def test_proxies_are_finite_and_rank(tmp_path):
    imgs = IMAGES[:16]
    p_small = proxies(S.min_genome(), imgs)
    p_big = proxies(S.max_genome(), imgs)
    for p in (p_small, p_big):
        assert all(np.isfinite(v) for v in p.values())
    assert p_big["params"] > p_small["params"] and p_big["macs"] > p_small["macs"]
    rows = _synthetic_rows(6, seed=3)
    res = correlations(rows, imgs)
    assert res["n"] == 6 and -1 <= res["naswot"]["spearman"] <= 1


@pytest.mark.slow
def test_bn_reestimated_on_the_quantized_subnet():
    """bn="quantized": after the activation ranges are set, the BN statistics are re-estimated with
    weights and activations fake-quantized (each BN then sees its quantized convolution's output);
    at 16 bits that changes nothing measurable, at 4 bits the statistics move."""
    from codesign.nn.measure import measure_many, recalibrate_bn
    from codesign.nn.quant import ActQuant, finish_calibration, quantize_model
    torch.manual_seed(0)
    net = Supernet().eval()
    g = S.max_genome()
    sub = net.subnet(g)
    x = [torch.randn(6, 3, g["r"], g["r"]) for _ in range(3)]
    recalibrate_bn(sub, x)
    q = quantize_model(sub, 4, "mse").eval()
    for xb in x:
        q(xb)
    finish_calibration(q)
    seen = {}                              # what the first BN of the first block sees, per batch
    bn = q.blocks[0].bn1
    conv_in = {}
    hooks = [bn.register_forward_pre_hook(lambda m, a: seen.setdefault("x", []).append(a[0].detach().clone())),
             q.blocks[0].expand.layer.register_forward_pre_hook(
                 lambda m, a: conv_in.setdefault("x", []).append(a[0].detach().clone()))]
    recalibrate_bn(q, x)
    for h in hooks:
        h.remove()
    assert not q.training and not any(m.calibrating for m in q.modules() if isinstance(m, ActQuant))
    # the expand convolution ran on 4-bit activations (at most 16 levels) while BN was estimated
    assert all(len(torch.unique(t)) <= 16 for t in conv_in["x"])
    # cumulative average: the running mean is the mean of the per-batch means of what BN saw
    want = torch.stack([t.mean((0, 2, 3)) for t in seen["x"]]).mean(0)
    assert torch.allclose(bn.running_mean, want, atol=1e-5)
    assert not torch.allclose(bn.running_mean, sub.blocks[0].bn1.running_mean, atol=1e-3)
    q16 = quantize_model(sub, 16, "mse").eval()
    for xb in x:
        q16(xb)
    recalibrate_bn(finish_calibration(q16), x)
    b16 = q16.blocks[-1].bn3
    assert torch.allclose(b16.running_mean, sub.blocks[-1].bn3.running_mean, rtol=1e-2, atol=1e-3)
    assert torch.allclose(b16.running_var, sub.blocks[-1].bn3.running_var, rtol=1e-2, atol=1e-3)
    kw = dict(calib_batches=2, batch=10, seed=5)
    one = measure_many(net, g, [4, 8], IMAGES[:20], IMAGES[20:], LABELS[20:], **kw)      # default: quantized
    assert one == measure_many(net, g, [4, 8], IMAGES[:20], IMAGES[20:], LABELS[20:], bn="quantized", **kw)
    with pytest.raises(ValueError, match="bn"):
        measure_many(net, g, [8], IMAGES[:20], IMAGES[20:], LABELS[20:], bn="folded", **kw)
