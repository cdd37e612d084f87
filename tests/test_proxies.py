"""Each zero-shot proxy on a tiny network, against a value computed by hand or independently
(issue #23), and the study's statistics on synthetic data. Seconds in all."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from codesign.nn import proxies as P  # noqa: E402
from codesign.nn import proxy_study as PS  # noqa: E402
from codesign.space.genome import DEFAULT_SPACE as S, subnet_key  # noqa: E402


def _lin(w, b=None):
    w = torch.as_tensor(w, dtype=torch.float64)
    m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None).double()
    with torch.no_grad():
        m.weight.copy_(w)
        if b is not None:
            m.bias.copy_(torch.as_tensor(b, dtype=torch.float64))
    return m


def test_naswot_equals_the_hamming_kernel_by_hand():
    rng = np.random.default_rng(0)
    w, b, x = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(4, 3))
    model = nn.Sequential(_lin(w, b), nn.ReLU())
    c = (x @ w.T + b > 0).astype(float)
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert P.naswot(model, torch.from_numpy(x)) == pytest.approx(np.linalg.slogdet(k)[1], abs=1e-9)


def test_linear_regions_of_a_1d_relu_net_are_its_breakpoints_plus_one():
    # hidden units relu(w x + b): breakpoints -b/w = 0.5, -0.2, 0.1 inside [-1, 1], 1.5 outside
    model = nn.Sequential(_lin([[1.0], [1.0], [-1.0], [2.0]], [-0.5, 0.2, 0.1, -3.0]), nn.ReLU(),
                          _lin([[1.0, -2.0, 0.5, 1.0]], [0.0]))
    x = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    assert P.linear_regions(model, x, points=2001) == 4          # 3 breakpoints -> 4 regions
    x2 = torch.tensor([[-1.0], [0.0], [2.0]], dtype=torch.float64)
    # [-1, 0]: one breakpoint (-0.2) -> 2; [0, 2]: 0.1, 0.5, 1.5 -> 4; mean 3
    assert P.linear_regions(model, x2, points=2001) == 3


def test_jacob_cov_against_analytic_jacobians():
    rng = np.random.default_rng(1)
    w1, b1, w2 = rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=(2, 5))
    x = rng.normal(size=(3, 4))
    model = nn.Sequential(_lin(w1, b1), nn.ReLU(), _lin(w2, np.zeros(2)))
    mask = (x @ w1.T + b1 > 0).astype(float)
    jac = np.stack([w1.T @ (m * (w2.T @ np.ones(2))) for m in mask])    # d sum(out) / dx per image
    assert np.allclose(P.input_jacobians(model, torch.from_numpy(x)).numpy(), jac)
    lam = np.linalg.eigvalsh(np.corrcoef(jac))
    lam = np.maximum(lam, 0)
    want = -np.sum(np.log(lam + 1e-5) + 1 / (lam + 1e-5))
    assert P.jacob_cov(model, torch.from_numpy(x)) == pytest.approx(want, rel=1e-9)


def test_ntk_condition_number_of_a_linear_model_is_its_gram_matrix_s():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6))
    model = _lin(rng.normal(size=(1, 6)))               # f(x) = w.x: d f / d w = x
    assert np.allclose(P.ntk_gram(model, torch.from_numpy(x)).numpy(), x @ x.T)
    assert P.ntk_cond(model, torch.from_numpy(x)) == pytest.approx(np.linalg.cond(x @ x.T), rel=1e-8)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ce_grad(w, x, y):
    """d mean CE / d W of logits = x W^T: (softmax - onehot)^T x / n."""
    p = _softmax(x @ w.T)
    p[np.arange(len(y)), y] -= 1
    return p.T @ x / len(y), p / len(y)


def test_zico_against_hand_computed_gradients():
    rng = np.random.default_rng(3)
    w, x, y = rng.normal(size=(3, 4)), rng.normal(size=(6, 4)), np.array([0, 1, 2, 1, 0, 2])
    g = np.stack([_ce_grad(w, x[i:i + 3], y[i:i + 3])[0] for i in (0, 3)])   # 2 batches of 3
    want = math.log((np.abs(g).mean(0) / g.std(0)).sum())
    got = P.zico(_lin(w), torch.from_numpy(x), torch.from_numpy(y), batches=2)
    assert got == pytest.approx(want, rel=1e-9)


def test_grasp_hessian_gradient_product_equals_a_finite_difference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Hardswish(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    w, hg = P.hessian_gradient(model, x, y)
    g = torch.autograd.grad(F.cross_entropy(model(x), y), w)

    def grad_at(step):
        with torch.no_grad():
            for p, d in zip(w, g):
                p.add_(step * d)
        out = torch.autograd.grad(F.cross_entropy(model(x), y), w)
        with torch.no_grad():
            for p, d in zip(w, g):
                p.sub_(step * d)
        return out
    eps = 1e-5
    fd = [(a - b) / (2 * eps) for a, b in zip(grad_at(eps), grad_at(-eps))]
    for h, f in zip(hg, fd):
        assert torch.allclose(h, f, rtol=1e-4, atol=1e-7)
    assert P.grasp(model, x, y) == pytest.approx(float(sum((-p.detach() * h).sum() for p, h in zip(w, hg))), rel=1e-9)


def test_snip_grad_norm_and_fisher_on_a_two_parameter_model_by_hand():
    # logits = (w1 x, w2 x); one image x = 2, label 0; w = (0.5, -1)
    w1, w2, x0 = 0.5, -1.0, 2.0
    model = _lin([[w1], [w2]])
    x, y = torch.tensor([[x0]], dtype=torch.float64), torch.tensor([0])
    z = np.array([w1 * x0, w2 * x0])
    p = np.exp(z) / np.exp(z).sum()
    g1, g2 = (p[0] - 1) * x0, p[1] * x0
    assert P.snip(model, x, y) == pytest.approx(abs(w1 * g1) + abs(w2 * g2), rel=1e-12)
    assert P.grad_norm(model, x, y) == pytest.approx(math.hypot(g1, g2), rel=1e-12)
    # Fisher: 0.5 * mean over images of (a * dL/da)^2 per output, summed; a = logits
    assert P.fisher(model, x, y) == pytest.approx(0.5 * ((z[0] * (p[0] - 1)) ** 2 + (z[1] * p[1]) ** 2), rel=1e-12)
    rng = np.random.default_rng(4)
    w, xs, ys = rng.normal(size=(2, 3)), rng.normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    gw, ga = _ce_grad(w, xs, ys)
    a = xs @ w.T
    m = _lin(w)
    X, Y = torch.from_numpy(xs), torch.from_numpy(ys)
    assert P.snip(m, X, Y) == pytest.approx(np.abs(w * gw).sum(), rel=1e-9)
    assert P.grad_norm(m, X, Y) == pytest.approx(np.linalg.norm(gw), rel=1e-9)
    assert P.fisher(m, X, Y) == pytest.approx((0.5 * ((a * ga) ** 2).mean(0)).sum(), rel=1e-9)


def test_synflow_of_a_two_layer_linear_net_is_twice_its_path_sum():
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    model = nn.Sequential(_lin(w1), _lin(w2))
    r = np.ones(2) @ np.abs(w2) @ np.abs(w1) @ np.ones(3)      # R: all-ones input through |theta|
    # each layer's sum of theta * dR/dtheta is R (R is linear in every layer's weights)
    assert P.synflow(model, input_shape=(3,)) == pytest.approx(2 * r, rel=1e-9)
    assert np.allclose(model[0].weight.detach().numpy(), w1)   # the caller's signs are kept


def test_zen_score_by_hand():
    rng = np.random.default_rng(6)
    w = rng.normal(size=(4, 3))
    gen = torch.Generator().manual_seed(0)
    x, eps = torch.randn(8, 3, generator=gen).double().numpy(), torch.randn(8, 3, generator=gen).double().numpy()
    alpha = 0.01
    # no BN: log mean_n sum |W (x + a eps) - W x| / a = log mean_n sum |W eps|
    model = _lin(w).float()
    want = math.log(np.abs(eps @ w.T).sum(1).mean())
    assert P.zen_score(model, (3,), n=8, alpha=alpha, seed=0, feature=None) == pytest.approx(want, rel=1e-4)
    # with a BN (batch statistics, affine 1/0): + log sqrt(mean channel variance of its input)
    model = nn.Sequential(_lin(w).float(), nn.BatchNorm1d(4))

    def bn(h):
        return (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)
    h1, h2 = x @ w.T, (x + alpha * eps) @ w.T
    delta = np.abs(bn(h1) - bn(h2)).sum(1).mean() / alpha
    want = math.log(delta) + math.log(math.sqrt(h1.var(0).mean()))
    assert P.zen_score(model, (3,), n=8, alpha=alpha, seed=0, feature=None) == pytest.approx(want, rel=1e-3)


def test_params_and_macs():
    assert P.n_params(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))) == 3 * 4 + 4 + 4 * 2
    # MACs of the genome against a count of the subnet's convolution / linear MACs by hooks
    g = S.min_genome()
    model = P.fresh_subnet(g)
    macs = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        else:
            macs.append(out.numel() * m.in_features)
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, g["r"], g["r"]))
    for h in hs:
        h.remove()
    from codesign.space.layers import genome_macs
    assert genome_macs(g) == pytest.approx(sum(macs), rel=0.02)


@pytest.mark.slow
def test_genome_proxies_both_variants_are_finite_and_leave_the_supernet_alone():
    from codesign.nn.supernet import Supernet
    torch.manual_seed(1)
    net = Supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 4)
    p = P.genome_proxies(S.min_genome(), imgs, labels, supernet=net, ntk_batch=2)
    for tag in ("init", "trained"):
        for name in P.PER_MODEL:
            assert np.isfinite(P.score(f"{tag}:{name}", p[f"{tag}:{name}"])), (tag, name)
            assert p["seconds"][f"{tag}:{name}"] >= 0
    assert p["params"] > 0 and p["macs"] > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert P.score("ntk_cond", 10.0) == pytest.approx(-math.log(10.0))


def test_study_statistics_on_synthetic_data(tmp_path):
    assert PS.top_precision([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]) == 0
    assert PS.top_precision(np.arange(20), np.arange(20)) == 1
    rng = np.random.default_rng(0)
    acc = rng.normal(82, 1.0, 200)
    b = PS.bootstrap(acc + rng.normal(0, 0.3, 200), acc, n_boot=200)
    assert b["spearman_ci"][0] <= b["spearman"] <= b["spearman_ci"][1] and b["spearman"] > 0.8
    # noise ceiling: a spread far above the binomial noise -> ~1; no spread beyond it -> ~0
    assert PS.noise_ceiling(rng.uniform(20, 90, 300), 2500)["ceiling_spearman"] > 0.99
    flat = 82 + 100 * rng.binomial(2500, 0.82, 300) / 2500 - 82
    assert PS.noise_ceiling(flat, 2500)["ceiling_spearman"] < 0.3
    # ensembles, held-out: two informative proxies of four
    s = np.column_stack([acc + rng.normal(0, 1, 200), acc + rng.normal(0, 1, 200),
                         rng.normal(size=200), rng.normal(size=200)])
    e = PS.ensembles(s, acc, ["a", "b", "c", "d"])
    assert e["ridge"]["spearman"] > 0.75 and e["vote"]["spearman"] > 0.75
    assert all(set(c[:2]) == {"a", "b"} for c in e["vote"]["chosen"])


def test_ridge_ensemble_features_and_fit_against_independent_computations():
    from scipy.stats import norm
    train = np.array([[3.0], [1.0], [2.0], [5.0]])
    # ranks among the training values (ties split), normal scores clipped to [1/2n, 1 - 1/2n]
    got = PS._rank_features(train, np.array([[2.0], [9.0], [0.0]]), "ranks")[:, 0]
    assert got == pytest.approx([3 / 8, 1.0, 0.0])
    got = PS._rank_features(train, np.array([[2.0], [9.0], [0.0]]), "normal")[:, 0]
    assert got == pytest.approx(norm.ppf([3 / 8, 7 / 8, 1 / 8]))
    # ridge with an unpenalized intercept == least squares on [X 1; sqrt(alpha) I 0]
    rng = np.random.default_rng(3)
    X, y, Xte = rng.normal(size=(30, 4)), rng.normal(size=30), rng.normal(size=(5, 4))
    A = np.vstack([np.column_stack([X, np.ones(30)]), np.column_stack([np.sqrt(2.0) * np.eye(4), np.zeros(4)])])
    w = np.linalg.lstsq(A, np.concatenate([y, np.zeros(4)]), rcond=None)[0]
    assert PS._ridge_fit_predict(X, y, Xte, 2.0) == pytest.approx(np.column_stack([Xte, np.ones(5)]) @ w, abs=1e-10)
    # the inner choice: accuracy linear in a heavy-tailed proxy's normal score -> the normal transform
    z = rng.standard_t(2, 300)
    acc = norm.ppf((np.argsort(np.argsort(z)) + 0.5) / 300) + rng.normal(0, 0.05, 300)
    e = PS.ensembles(np.column_stack([z, rng.normal(size=300)]), acc, ["z", "noise"])
    assert [c["transform"] for c in e["ridge"]["chosen"]] == ["normal"] * 5
    assert all(c["alpha"] in PS.RIDGE_ALPHAS for c in e["ridge"]["chosen"]) and e["ridge"]["spearman"] > 0.95


def test_confirmation_fits_on_the_study_only_and_scores_the_new_genomes():
    # study rows: "init:naswot" informative, "macs" noise; new genomes scored with the study's fit
    rng = np.random.default_rng(5)

    def rows(n, start):
        acc = rng.normal(82, 1.0, n)
        out = [{"key": f"g{start + i}", "init:naswot": float(a + rng.normal(0, 0.3)), "macs": float(rng.normal()),
                "seconds": {}} for i, a in enumerate(acc)]
        return out, {r["key"]: float(a) for r, a in zip(out, acc)}
    study, study_acc = rows(120, 0)
    new, new_acc = rows(40, 1000)
    res = PS.confirm_report(study, study_acc, new, new_acc, n_boot=50)
    assert res["n_study"] == 120 and res["n_new"] == 40
    assert res["vote_chosen"][0] == "init:naswot"
    assert res["ridge"]["spearman"] > 0.85 and res["single"]["init:naswot"]["spearman"] > 0.85
    assert abs(res["single"]["macs"]["spearman"]) < 0.5
    # the same as fitting the ridge by hand on the study and predicting the new genomes
    S_tr = np.array([[r["init:naswot"], r["macs"]] for r in study])
    S_te = np.array([[r["init:naswot"], r["macs"]] for r in new])
    y_tr = np.array([study_acc[r["key"]] for r in study])
    t, alpha = res["ridge_chosen"]["transform"], res["ridge_chosen"]["alpha"]
    pred = PS._ridge_fit_predict(PS._rank_features(S_tr, S_tr, t), y_tr, PS._rank_features(S_tr, S_te, t), alpha)
    assert res["ridge"]["spearman"] == pytest.approx(PS._spearman(pred, [new_acc[r["key"]] for r in new]), abs=1e-12)
    # the new genomes come after the study's plan and skip any genome the study holds
    plan = PS.plan_genomes(30)
    got = PS.confirm_genomes({subnet_key(plan[26])}, n_plan=20, extra=5, n=3)
    assert [i for i, _ in got] == [25, 27, 28] and got[0][1] == plan[25]


def test_score_genomes_resumes_after_a_torn_line(tmp_path):
    gs = [S.min_genome(), S.max_genome(), S.canonical(S.sample(np.random.default_rng(1)))]
    calls = []

    def compute(g):
        calls.append(subnet_key(g))
        return {"x": 1.0, "seconds": {"x": 0.0}}
    out = tmp_path / "s.jsonl"
    PS.score_genomes(gs[:2], out, compute, log=lambda *_: None)
    out.write_text(out.read_text() + '{"key": "torn')
    done = PS.score_genomes(gs, out, compute, log=lambda *_: None)
    assert len(done) == 3 and len(calls) == 3
    assert [json.loads(l)["key"] for l in out.read_text().splitlines()] == [subnet_key(g) for g in gs]


def test_search_accuracy_from_a_reference(tmp_path):
    """--accuracy proxy:NAME: the proxy's fractional rank among the study's genomes, in accuracy
    points, plus the measured bit-width offset; vote sums its members' ranks."""
    from codesign.space.layers import genome_macs
    gs = [S.canonical(S.sample(np.random.default_rng(i))) for i in range(20)]
    macs = sorted(float(genome_macs(g)) for g in gs)
    params = sorted(float(P.n_params(P.fresh_subnet(g))) for g in gs[:5])
    ref = {"names": ["macs", "params"], "sorted": {"macs": macs, "params": params}, "vote": ["macs", "params"],
           "acc_std": 1.0, "bit_offsets": {"4": -2.0, "6": -0.5, "8": -0.1, "16": 0.0}, "n": 20}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref))
    f = P.search_accuracy("macs", None, reference=path)
    lo, hi = S.min_genome(), S.max_genome()
    assert f(lo, 8) == pytest.approx(-2.0) and f(hi, 8) == pytest.approx(2.0)    # +-0.5 rank * 4 std
    assert f(hi, 4) == pytest.approx(f(hi, 8) - 1.9) and f(hi, 16) == pytest.approx(f(hi, 8) + 0.1)
    v = P.search_accuracy("vote", None, reference=path)
    assert v(hi, 8) == pytest.approx(2.0) and v(lo, 8) < v(hi, 8)
    ref["acc_mean"] = 82.0                     # on the measured scale: the study's mean 8-bit top-1
    path.write_text(json.dumps(ref))
    assert P.search_accuracy("macs", None, reference=path)(hi, 8) == pytest.approx(84.0)
    from accelerators.errors import SpecError
    with pytest.raises(SpecError):
        P.search_accuracy("nosuch", None, reference=path)
    with pytest.raises(SpecError):
        P.search_accuracy("macs", None, reference=tmp_path / "missing.json")


def test_confirm_from_the_command_line_checks_its_input(tmp_path, capsys):
    from codesign.cli import main
    assert main(["proxies", "--confirm", "5", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--confirm" in err[0]
    # no study in OUT: one line naming the missing scores file, exit 2
    assert main(["proxies", "--confirm", "20", "--data", str(tmp_path), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scores.jsonl" in err[0]
