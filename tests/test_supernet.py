"""Supernet, genomes, data, quantization and training on tiny synthetic data (no real data)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from accelerators.errors import SpecError                        # noqa: E402
from accelerators.torch_frontend import layers_from_torch         # noqa: E402
from codesign.nn.data import holdout_split, load_split               # noqa: E402
from codesign.space.genome import DEFAULT_SPACE as S, subnet_key         # noqa: E402
from codesign.space.layers import genome_layers, genome_macs      # noqa: E402
from codesign.nn.quant import finish_calibration, quantize_model, quantize_weight  # noqa: E402
from codesign.nn.supernet import Supernet, resize                     # noqa: E402
from codesign.nn.train import TrainConfig, train_supernet             # noqa: E402


def test_genome_validation_names_the_field():
    g = S.max_genome()
    assert S.validate(json.dumps(g)) == g
    for bad, field in [({**g, "ks": g["ks"][:3]}, "genome.ks"), ({**g, "e": [5] * 16}, "genome.e[0]"),
                       ({**g, "r": 30}, "genome.r"), ({**g, "x": 1}, "genome.x"), ("{not json", "genome")]:
        with pytest.raises(SpecError) as e:
            S.validate(bad)
        assert e.value.field == field
    # unused slots do not change the network
    a = dict(g, d=[2, 2, 2, 2])
    b = dict(a, ks=[3 if i % 4 >= 2 else 7 for i in range(16)])
    assert subnet_key(a) == subnet_key(b)


def test_weight_sharing_shapes_and_kernel_transform():
    torch.manual_seed(0)
    net = Supernet()
    dw = net.blocks[4].dw
    c = dw.weight.shape[0] // 2
    for k in (3, 5, 7):
        assert dw.kernel(c, k).shape == (c, 1, k, k)
    # transforms start at identity: a 5x5 kernel is the centre crop of the 7x7 one
    assert torch.allclose(dw.kernel(c, 5), dw.weight[:c, :, 1:6, 1:6])
    with torch.no_grad():
        dw.transforms["7to5"].mul_(2)
    assert torch.allclose(dw.kernel(c, 5), 2 * dw.weight[:c, :, 1:6, 1:6])
    x = torch.randn(2, 3, 32, 32)
    for g in (S.max_genome(), S.min_genome()):
        assert net(x, g).shape == (2, 10)


@pytest.mark.slow
def test_subnet_extraction_matches_the_active_path():
    torch.manual_seed(1)
    net = Supernet()
    with torch.no_grad():              # non-trivial BN statistics and transforms
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        for p in net.parameters():
            if p.dim() == 2 and p.shape[0] == p.shape[1]:
                p.add_(0.05 * torch.randn_like(p))
    net.eval()
    rng = np.random.default_rng(0)
    x = torch.randn(3, 3, 32, 32)
    for g in [S.max_genome(), S.min_genome()] + [S.sample(rng) for _ in range(5)]:
        sub = net.subnet(g).eval()
        assert torch.allclose(net(x, g), sub(resize(x, g["r"])), atol=1e-5)
        layers = layers_from_torch(sub, (1, 3, g["r"], g["r"]))
        assert [l.work.macs for l in layers] == [l.work.macs for l in genome_layers(g)]
    assert genome_macs(S.max_genome()) > 5 * genome_macs(S.min_genome())


@pytest.mark.slow
def test_fake_quant_error_bounds():
    torch.manual_seed(2)
    w = torch.randn(8, 4, 3, 3)
    errs = {}
    for bits in (4, 6, 8, 16):
        q = quantize_weight(w, bits)
        scale = w.reshape(8, -1).abs().amax(1) / (2 ** (bits - 1) - 1)
        err = (q - w).reshape(8, -1).abs().amax(1)
        assert torch.all(err <= scale / 2 + 1e-7)
        assert len(torch.unique(q[0])) <= 2 ** bits
        errs[bits] = float((q - w).abs().mean())
    assert errs[4] > errs[6] > errs[8] > errs[16]
    net = Supernet()
    sub = net.subnet(S.min_genome())
    x = torch.randn(16, 3, 24, 24)
    with torch.no_grad():
        sub.train()
        for m in sub.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None             # BN statistics of this input (an untrained net)
        sub(x)
        sub.eval()
        ref = sub(x)
        outs = {}
        for bits in (4, 8, 16):
            q = quantize_model(sub, bits).eval()
            q(x)                              # calibration
            finish_calibration(q)
            outs[bits] = float((q(x) - ref).abs().mean())
    assert outs[4] > outs[8] > outs[16]


def _tiny_imagefolder(tmp_path, per_class=6, test_per_class=2):
    from codesign.nn.data import write_synthetic_imagefolder
    return write_synthetic_imagefolder(tmp_path, per_class, test_per_class)


def test_data_formats(tmp_path):
    root = _tiny_imagefolder(tmp_path)
    tr = load_split(root, "train")
    assert tr.images.shape == (60, 3, 32, 32) and tr.classes == [f"class{c}" for c in range(10)]
    a, b = holdout_split(tr, 10, seed=0)
    assert len(a) == 50 and len(b) == 10 and sorted(b.labels.tolist()) == list(range(10))
    small = load_split(root, "test", size=24)
    assert small.images.shape == (20, 3, 24, 24)
    with pytest.raises(SpecError):
        load_split(tmp_path / "nowhere", "train")


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_state(tmp_path):
    root = _tiny_imagefolder(tmp_path / "data" if (tmp_path / "data").mkdir() is None else tmp_path)
    cfg = dict(data=str(root), epochs={"full": 2, "kernel": 1, "depth": 1, "expand": 1}, batch_size=16,
               holdout=10, max_batches=2, eval_images=10, threads=1)
    whole = train_supernet(TrainConfig(out=str(tmp_path / "a"), **cfg), progress=False, log=lambda *_: None)
    out_b = tmp_path / "b"
    assert train_supernet(TrainConfig(out=str(out_b), **cfg), progress=False, log=lambda *_: None,
                          stop_after_epochs=1) is None
    assert train_supernet(TrainConfig(out=str(out_b), **cfg), resume=True, progress=False, log=lambda *_: None,
                          stop_after_epochs=2) is None      # killed again after the teacher exists
    resumed = train_supernet(TrainConfig(out=str(out_b), **cfg), resume=True, progress=False, log=lambda *_: None)
    sa = torch.load(whole, weights_only=True)
    sb = torch.load(resumed, weights_only=True)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    log_a = [json.loads(l) for l in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(l) for l in (out_b / "train_log.jsonl").read_text().splitlines()]
    assert [(e["phase"], e["loss"]) for e in log_a] == [(e["phase"], e["loss"]) for e in log_b]


@pytest.mark.slow
def test_model_card_of_a_finished_run(tmp_path, capsys):
    from codesign.cli import main
    root = tmp_path / "data"
    root.mkdir()
    _tiny_imagefolder(root)
    cfg = dict(data=str(root), epochs={"full": 1, "kernel": 1, "depth": 1, "expand": 1}, batch_size=16,
               holdout=10, max_batches=1, eval_images=10, threads=1)
    train_supernet(TrainConfig(out=str(tmp_path / "run"), **cfg), progress=False, log=lambda *_: None)
    out = tmp_path / "card" / "MODEL_CARD.md"
    assert main(["model-card", "--run", str(tmp_path / "run"), "--data", str(root), "--out", str(out),
                 "--samples", "1", "--quiet"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert {(r["name"], r["bits"]) for r in card["measurements"]} == \
        {(n, b) for n in ("largest", "smallest", "sample1") for b in (4, 6, 8, 16)}
    assert all(0 <= r["top1"] <= 100 for r in card["measurements"])
    assert card["training"]["epochs"] == {"full": 1, "kernel": 1, "depth": 1, "expand": 1}
    text = out.read_text()
    assert "| largest |" in text and "codesign train-supernet" in text
    assert main(["model-card", "--run", str(tmp_path / "nowhere"), "--data", str(root), "--out", str(out)]) == 2


def test_predictor_split_measures_only_images_training_held_out(tmp_path):
    """A smaller evaluation set is a subset of the supernet training's held-out images (drawing a
    fresh, smaller hold-out would take images the supernet was trained on)."""
    from codesign.artifacts import predictor_split
    root = _tiny_imagefolder(tmp_path, per_class=12)
    tr = load_split(root, "train")
    trained_on, held = holdout_split(tr, 40, seed=0)
    calib, ev = predictor_split(root, holdout=40, calib_images=30, eval_images=20, seed=0)
    keys = {x.tobytes() for x in held.images}
    assert len(ev) == 20 and all(x.tobytes() in keys for x in ev.images)
    assert sorted(np.bincount(ev.labels).tolist()) == [2] * 10
    assert not any(x.tobytes() in keys for x in calib) and len(calib) == 30



def test_mse_clipping_never_worse_than_minmax_and_better_on_outliers():
    from codesign.nn.quant import ActQuant
    torch.manual_seed(3)
    w = torch.distributions.StudentT(2.0).sample((16, 8, 3, 3))      # heavy-tailed weights
    for bits in (4, 6, 8):
        e_mm = ((quantize_weight(w, bits) - w) ** 2).reshape(16, -1).sum(1)
        e_mse = ((quantize_weight(w, bits, "mse") - w) ** 2).reshape(16, -1).sum(1)
        assert torch.all(e_mse <= e_mm + 1e-9)
        if bits == 4:
            assert float(e_mse.sum()) < 0.95 * float(e_mm.sum())
    x = torch.relu(torch.randn(4, 8, 16, 16))
    x[0, 0, 0, 0] = 40.0                               # one activation outlier
    errs, ranges = {}, {}
    for clip in ("minmax", "mse"):
        q = ActQuant(4, clip)
        q(x)
        q.finish()
        errs[clip] = float(((q(x) - x) ** 2).mean())
        ranges[clip] = (float(q.lo), float(q.hi))
    assert errs["mse"] < 0.7 * errs["minmax"]
    assert ranges["minmax"] == (0.0, 40.0) and 0 < ranges["mse"][1] < 40.0
    again = ActQuant(4, "mse")                        # the sample is seeded: same data, same range
    again(x)
    again.finish()
    assert (float(again.lo), float(again.hi)) == ranges["mse"]
    with pytest.raises(ValueError, match="clip"):
        quantize_weight(w, 4, "percentile")
    # a whole subnet at 4 bits with an activation outlier in its input: closer to float with mse
    net = Supernet()
    sub = net.subnet(S.min_genome())
    xin = torch.randn(8, 3, 24, 24)
    xin[0, :, 0, 0] = 30.0
    with torch.no_grad():
        sub.train()
        for m in sub.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None             # BN statistics of this input (an untrained net)
        sub(xin)
        sub.eval()
        ref = sub(xin)
        dev = {}
        for clip in ("minmax", "mse"):
            q = quantize_model(sub, 4, clip).eval()
            q(xin)
            finish_calibration(q)
            dev[clip] = float((q(xin) - ref).abs().mean())
    assert dev["mse"] < dev["minmax"]


def _first_run(tmp_path):
    """Tiny data and a one-epoch full run to warm-start from: (config kwargs, its weights)."""
    root = tmp_path / "data"
    root.mkdir()
    _tiny_imagefolder(root)
    cfg = dict(data=str(root), batch_size=16, holdout=10, max_batches=1, eval_images=10, threads=1)
    first = train_supernet(TrainConfig(out=str(tmp_path / "a"), epochs={"full": 1, "kernel": 0, "depth": 0,
                                                                        "expand": 0}, **cfg),
                           progress=False, log=lambda *_: None)
    return cfg, first


@pytest.mark.slow
def test_warm_start_from_an_earlier_runs_weights(tmp_path):
    cfg, first = _first_run(tmp_path)
    w0 = torch.load(first, weights_only=True)
    # no phase to run: the result is exactly the warm start
    same = train_supernet(TrainConfig(out=str(tmp_path / "b"), epochs={"full": 0, "kernel": 0, "depth": 0, "expand": 0},
                                      init_from=str(first), **cfg), progress=False, log=lambda *_: None)
    assert all(torch.equal(v, torch.load(same, weights_only=True)[k]) for k, v in w0.items())
    # elastic phases only: the warm start is the distillation teacher, and a killed run resumes to the same state
    el = {"full": 0, "kernel": 1, "depth": 1, "expand": 0}
    whole = train_supernet(TrainConfig(out=str(tmp_path / "c"), epochs=el, init_from=str(first), **cfg),
                           progress=False, log=lambda *_: None)
    teacher = torch.load(tmp_path / "c" / "teacher.pt", weights_only=True)
    assert all(torch.equal(v, teacher[k]) for k, v in w0.items())
    assert train_supernet(TrainConfig(out=str(tmp_path / "d"), epochs=el, init_from=str(first), **cfg),
                          progress=False, log=lambda *_: None, stop_after_epochs=1) is None
    resumed = train_supernet(TrainConfig(out=str(tmp_path / "d"), epochs=el, init_from=str(first), **cfg),
                             resume=True, progress=False, log=lambda *_: None)
    sa, sb = torch.load(whole, weights_only=True), torch.load(resumed, weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], w0[k]) for k in sa)
    with pytest.raises(SpecError, match="init_from"):
        train_supernet(TrainConfig(out=str(tmp_path / "e"), epochs=el, init_from=str(tmp_path / "data" / "train.zip"), **cfg),
                       progress=False, log=lambda *_: None)


@pytest.mark.slow
def test_sandwich_phase_trains_both_ends_and_resumes(tmp_path):
    from codesign.space.genome import DEFAULT_SPACE
    from codesign.nn.supernet import Supernet
    from codesign.nn.train import _sandwich_step
    torch.manual_seed(0)
    model = Supernet(num_classes=10)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    cfg = TrainConfig(data="-", out="-", sandwich_random=0)
    total = _sandwich_step(model, x, y, np.random.default_rng(0), cfg)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    # the summed loss is the largest subnet's label loss plus the smallest's distillation loss
    with torch.no_grad():
        big = model(x, DEFAULT_SPACE.max_genome())
        small = model(x, DEFAULT_SPACE.min_genome())
        want = torch.nn.functional.cross_entropy(big, y, label_smoothing=0.1) + \
            torch.sum(-torch.softmax(big, 1) * torch.log_softmax(small, 1), 1).mean()
    assert total == pytest.approx(float(want), rel=1e-5)
    # the teacher's output is detached: only the largest's label loss reaches the weights through it,
    # so with zero distillation weight the gradients equal the label loss's alone
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x, DEFAULT_SPACE.max_genome()), y, label_smoothing=0.1).backward()
    only_big = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    _sandwich_step(model, x, y, np.random.default_rng(0), TrainConfig(data="-", out="-", sandwich_random=0, kd_weight=0.0))
    assert all(torch.allclose(p.grad, only_big[n]) for n, p in model.named_parameters() if n in only_big)
    assert any(not torch.allclose(grads[n], only_big[n]) for n in only_big)

    base, first = _first_run(tmp_path)
    sw = {"full": 0, "kernel": 0, "depth": 0, "expand": 0, "sandwich": 2}
    whole = train_supernet(TrainConfig(out=str(tmp_path / "b"), epochs=sw, init_from=str(first), **base),
                           progress=False, log=lambda *_: None)
    assert train_supernet(TrainConfig(out=str(tmp_path / "c"), epochs=sw, init_from=str(first), **base),
                          progress=False, log=lambda *_: None, stop_after_epochs=1) is None
    resumed = train_supernet(TrainConfig(out=str(tmp_path / "c"), epochs=sw, init_from=str(first), **base),
                             resume=True, progress=False, log=lambda *_: None)
    sa, sb, w0 = (torch.load(p, weights_only=True) for p in (whole, resumed, first))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], w0[k]) for k in sa)
    assert not (tmp_path / "b" / "teacher.pt").exists()          # in-place distillation: no fixed teacher
    log = [json.loads(l) for l in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in log] == ["sandwich", "sandwich"]


def test_model_card_follows_warm_starts_back_to_the_first_run(tmp_path, monkeypatch):
    from codesign.nn.model_card import training_summary, write_card
    monkeypatch.chdir(tmp_path)
    base = {"data": "D", "batch_size": 128, "seed": 0, "threads": 2, "holdout": 5000}
    runs = [("r1", {"full": 2, "kernel": 1}, None, 3600.0),
            ("r2", {"full": 0, "sandwich": 2}, "r1/supernet.pt", 1800.0),
            ("r3", {"sandwich": 1}, "r2/supernet.pt", 900.0)]
    for name, epochs, init, secs in runs:
        (tmp_path / name).mkdir()
        log = [{"phase": ph, "epoch": i + 1} for ph, n in epochs.items() for i in range(n)]
        cfg = dict(base, out=name, epochs=epochs, init_from=init, **({"sandwich_random": 2} if name == "r3" else {}))
        (tmp_path / name / "train_state.json").write_text(json.dumps({"config": cfg, "log": log, "seconds": secs}))
    s = training_summary("r3")
    assert [r["run"] for r in s["lineage"]] == ["r1", "r2"]
    assert s["total_wall_hours"] == 1.75 and s["wall_hours"] == 0.25
    card = write_card([], s, tmp_path / "card.md", weights="w.pt", data="D", test_images=10)
    text = (tmp_path / "card.md").read_text()
    assert "--out r1 --epochs full=2,kernel=1 " in text
    assert "--out r3 --epochs sandwich=1 --batch-size 128 --seed 0 --threads 2 --sandwich-random 2 --init-from r2/supernet.pt" in text
    assert "1.75 h with the runs it started from" in text and "sandwich phase" in text
    assert card["training"]["lineage"][0]["epochs"] == {"full": 2, "kernel": 1}
    # a warm start from a file outside any run directory ends the lineage
    s1 = training_summary("r1")
    assert s1["lineage"] == [] and s1["total_wall_hours"] == 1.0


def test_searches_and_decisions_never_read_the_test_split(tmp_path, monkeypatch):
    """`search --accuracy measured` / `naswot` and `accuracy` (by default) measure on the
    validation split (the held-out training images); only `--split test` (and the model card)
    read the test split. Checked by recording which splits the data loader is asked for."""
    import codesign.nn.data as data_mod
    from codesign.artifacts import measure_split
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    root = _tiny_imagefolder(tmp_path, per_class=12)
    asked = []
    real = data_mod.load_split

    def spy(r, split, *a, **k):
        asked.append(split)
        return real(r, split, *a, **k)
    monkeypatch.setattr(data_mod, "load_split", spy)
    calib, val = measure_split(root, "validation", holdout=20)
    assert asked == ["train"] and len(val) == 20 and calib.shape[0] == 100
    space_dict, name = read_space(None)
    for src in ("measured", "naswot"):
        assert evaluator_config(space_dict, name, src, data=str(root))["accuracy"]["split"] == "validation"
    asked.clear()
    measure_split(root, "test", holdout=20)
    assert "test" in asked
    with pytest.raises(SpecError):
        measure_split(root, "train")
