"""The differentiable search (issue #22, codesign.darts): the look-up table equals the mapped cost,
the expected cost is differentiable with gradients of the right sign, path sampling is unbiased,
derived genomes are valid, resume is exact. Small synthetic data, seconds each."""
from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.nn.data import write_synthetic_imagefolder

torch = pytest.importorskip("torch")
torch.set_num_threads(1)          # tiny tensors: threads only contend on a shared machine

from accelerators.network import MappingCache, evaluate_network, network_totals  # noqa: E402
from codesign.darts.lut import (CostTable, build_lut, fixed_layers, genome_cost, op_choices,  # noqa: E402
                                op_layers)
from codesign.darts.relax import ArchParams, derive_genome, expected_cost, sample_path  # noqa: E402
from codesign.space.genome import DEFAULT_SPACE  # noqa: E402
from codesign.space.joint import load_space  # noqa: E402
from codesign.space.layers import genome_layers  # noqa: E402

BUDGET = 60          # mapper evaluations per shape: small, the identities hold at any budget


@pytest.fixture(scope="module")
def hw_arch():
    sp = load_space()
    hw = dict(sp.baseline, bits=8)
    return hw, sp.hw.architecture(hw)


@pytest.fixture(scope="module")
def lut(hw_arch):
    return build_lut(hw_arch[1], [24, 32], mapper_budget=BUDGET, cache=MappingCache())


def _ms(arch, totals):
    return 1e3 * totals["cycles"] / (arch.clock_ghz * 1e9)


def test_lut_entry_equals_the_mapped_cost_of_its_op(hw_arch, lut):
    _, arch = hw_arch
    choices = op_choices()
    for slot, (k, e), r in [(0, (3, 3), 32), (4, (7, 6), 24), (7, (5, 4), 32), (12, (7, 3), 24), (15, (3, 6), 32)]:
        res = evaluate_network(op_layers(slot, k, e, r), arch, budget=BUDGET, cache=MappingCache())
        j = choices.index((k, e))
        assert lut["ops"][str(r)]["latency_ms"][slot][j] == pytest.approx(_ms(arch, res.totals), rel=1e-12)
        assert lut["ops"][str(r)]["energy_uj"][slot][j] == pytest.approx(res.totals["energy_pj"] / 1e6, rel=1e-12)
    fixed = evaluate_network(fixed_layers(32), arch, budget=BUDGET, cache=MappingCache())
    assert lut["fixed"]["32"]["latency_ms"] == pytest.approx(_ms(arch, fixed.totals), rel=1e-12)


def test_lut_sum_is_the_exact_network_cost(hw_arch, lut):
    _, arch = hw_arch
    rng = np.random.default_rng(3)
    cache = MappingCache()
    for _ in range(4):
        g = DEFAULT_SPACE.sample(rng)
        g["r"] = int(rng.choice([24, 32]))
        t = network_totals(genome_layers(g), arch, budget=BUDGET, cache=cache)
        assert genome_cost(lut, g, "latency_ms") == pytest.approx(_ms(arch, t), rel=1e-12)
        assert genome_cost(lut, g, "energy_uj") == pytest.approx(t["energy_pj"] / 1e6, rel=1e-12)


def test_expected_cost_is_differentiable_with_the_right_sign(lut):
    table = CostTable.of(lut, "latency_ms")
    arch = ArchParams(resolution=32)
    with torch.no_grad():
        arch.op.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
    e = expected_cost(arch, table)
    e.backward()
    ri = table.resolutions.index(32)
    for slot in (0, 5, 15):
        costs = table.ops[ri, slot]
        slow, fast = int(np.argmax(costs)), int(np.argmin(costs))
        assert arch.op.grad[slot, slow] > 0 > arch.op.grad[slot, fast]
    assert (arch.depth.grad[:, -1] > 0).all() and (arch.depth.grad[:, 0] < 0).all()     # deeper is slower
    # raising a slow op's probability raises E[lat]
    before = float(e.detach())
    with torch.no_grad():
        arch.op[5, int(np.argmax(table.ops[ri, 5]))] += 0.5
    assert float(expected_cost(arch, table).detach()) > before


def test_expected_cost_of_a_one_hot_distribution_is_the_genome_cost(lut):
    table = CostTable.of(lut, "latency_ms")
    arch = ArchParams(resolution=None)
    g = DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(np.random.default_rng(1)))
    g["r"] = 24
    _point_at(arch, g, 60.0)
    with torch.no_grad():
        arch.res.fill_(-60.0)
        arch.res[DEFAULT_SPACE.resolutions.index(24)] = 60.0
    # r=28 is not in the table: its probability is 0 here
    assert float(expected_cost(arch, table).detach()) == pytest.approx(genome_cost(lut, g), rel=1e-6)
    assert derive_genome(arch) == g


@pytest.mark.parametrize("mode", ["sample", "gumbel"])
def test_path_sampling_is_unbiased(mode):
    arch = ArchParams(resolution=None)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        arch.op.normal_(0, 1.0, generator=gen)
        arch.depth.normal_(0, 1.0, generator=gen)
        arch.res.normal_(0, 1.0, generator=gen)
    n = 3000
    op_counts = np.zeros(tuple(arch.op.shape))
    d_counts = np.zeros(tuple(arch.depth.shape))
    r_counts = np.zeros(len(DEFAULT_SPACE.resolutions))
    for _ in range(n):
        p = sample_path(arch, mode, gen)
        op_counts[np.arange(len(p.op)), p.op] += 1
        d_counts[np.arange(len(p.depth)), p.depth] += 1
        r_counts[DEFAULT_SPACE.resolutions.index(p.r)] += 1
    probs = arch.probs()
    assert np.abs(op_counts / n - probs["op"].detach().numpy()).max() < 0.04
    assert np.abs(d_counts / n - probs["depth"].detach().numpy()).max() < 0.04
    assert np.abs(r_counts / n - probs["r"].detach().numpy()).max() < 0.04


def test_derived_genomes_are_valid():
    gen = torch.Generator().manual_seed(2)
    for res in (None, 28):
        arch = ArchParams(resolution=res)
        for _ in range(5):
            with torch.no_grad():
                arch.op.normal_(0, 2.0, generator=gen)
                arch.depth.normal_(0, 2.0, generator=gen)
                if arch.res is not None:
                    arch.res.normal_(0, 2.0, generator=gen)
            g = derive_genome(arch)
            assert DEFAULT_SPACE.validate(g) == g
            for mode in ("sample", "gumbel"):
                p = sample_path(arch, mode, gen).genome(arch)
                assert DEFAULT_SPACE.validate(p) == p


@pytest.fixture(scope="module")
def supernet():
    from codesign.artifacts import supernet_path
    from codesign.nn.supernet import load_supernet
    torch.set_num_threads(1)
    return load_supernet(supernet_path())


def test_path_forward_is_the_subnet_and_gradients_reach_the_logits(supernet):
    from codesign.darts.search import path_forward, soft_forward
    from codesign.nn.supernet import resize
    net = supernet.eval()
    arch = ArchParams(resolution=24)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    for mode in ("sample", "gumbel"):
        path = sample_path(arch, mode, gen)
        out = path_forward(net, arch, x, path)
        with torch.no_grad():
            ref = net.subnet(path.genome(arch)).eval()(resize(x, 24))
        assert torch.allclose(out, ref, atol=1e-4)
        arch.zero_grad()
        out.logsumexp(1).sum().backward()
        assert arch.op.grad.abs().sum() > 0 and arch.depth.grad.abs().sum() > 0
    # soft mixing with (numerically) one-hot probabilities is the subnet too
    g = path.genome(arch)
    _point_at(arch, g, 80.0)
    with torch.no_grad():
        assert torch.allclose(soft_forward(net, x, arch), ref, atol=1e-4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_synthetic_imagefolder(tmp_path_factory.mktemp("darts_data"))


def _cfg(tiny, **kw):
    from codesign.darts.run import DartsConfig
    sp = load_space()
    base = dict(data=str(tiny), hw=dict(sp.baseline, bits=8), epochs=2, steps_per_epoch=2, batch=4, holdout=20,
                resolution=24, mapper_budget=BUDGET, eval_images=None, checkpoint_every=1, warmup_epochs=0)
    base.update(kw)
    return DartsConfig(**base)


@pytest.mark.parametrize("second_order", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_resume_is_exact(tiny, tmp_path, second_order):
    from codesign.darts.run import run_darts
    cfg = _cfg(tiny, second_order=second_order, mode="gumbel" if second_order else "sample")
    quiet = dict(progress=False, log=lambda *a: None)
    whole = run_darts(cfg, tmp_path / "a", **quiet)
    assert run_darts(cfg, tmp_path / "b", stop_after_steps=2, **quiet) is None       # interrupted half-way
    with open(tmp_path / "b" / "trajectory.jsonl", "a") as fh:                          # a torn row after the checkpoint
        fh.write('{"step": 3, "torn')
    resumed = run_darts(cfg, tmp_path / "b", resume=True, **quiet)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    for k in a["net"]:
        assert torch.equal(a["net"][k], b["net"][k]), k
    for k in a["arch"]:
        assert torch.equal(a["arch"][k], b["arch"][k]), k
    for key in ("genome", "top1_val_pct", "latency_ms", "energy_uj"):
        assert whole[key] == resumed[key]
    ta = (tmp_path / "a" / "trajectory.jsonl").read_text().splitlines()
    tb = (tmp_path / "b" / "trajectory.jsonl").read_text().splitlines()
    assert [json.loads(r)["probs"] for r in ta] == [json.loads(r)["probs"] for r in tb]
    assert whole["latency_ms"] == pytest.approx(whole["lut_latency_ms"], rel=1e-12)
    assert DEFAULT_SPACE.validate(whole["genome"]) == whole["genome"]
    assert (tmp_path / "a" / "trajectory.png").is_file()


@pytest.mark.slow
def test_cli_sweep_writes_a_front(tiny, tmp_path, capsys):
    from codesign.cli import main
    out = tmp_path / "sweep"
    code = main(["darts", "--data", str(tiny), "--lambda", "0,5", "--epochs", "1", "--steps-per-epoch", "2",
                 "--batch", "4", "--resolution", "24", "--mode", "soft", "--mapper-budget", str(BUDGET),
                 "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "front written" in text
    rows = (out / "front.csv").read_text().splitlines()
    assert rows[0].startswith("lambda,top1_val_pct,latency_ms") and len(rows) == 3
    for lam in ("0", "5"):
        res = json.loads((out / f"lambda_{lam}" / "result.json").read_text())
        assert (out / f"lambda_{lam}" / "genome.json").is_file() and res["val_images"] > 0
    # resuming a finished sweep recomputes nothing and prints the same front
    assert main(["darts", "--resume", str(out), "--quiet"]) == 0


@pytest.mark.slow
def test_hw_space_cosearch_is_differentiable_resumable_and_scored_exactly(tiny, tmp_path):
    from codesign.darts.hwspace import HwRelax, Surrogate, surrogate_cost
    from codesign.darts.run import run_darts
    sp = load_space()
    # gradients reach the hardware logits through the surrogate
    arch, hw = ArchParams(resolution=24), HwRelax(sp.hw, 8)
    sur = Surrogate(sp.net.slots * 9 + sp.net.stages * 3 + 3 + sum(len(v) for _, v in hw.genes))
    surrogate_cost(sur, arch, hw)[0].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hw.parameters())
    assert arch.op.grad.abs().sum() > 0
    # a tiny co-search, interrupted and resumed: the same design
    cfg = _cfg(tiny, hw_space=True, surrogate_samples=60, epochs=1, steps_per_epoch=4)
    quiet = dict(progress=False, log=lambda *a: None)
    whole = run_darts(cfg, tmp_path / "a", **quiet)
    assert run_darts(cfg, tmp_path / "b", stop_after_steps=2, **quiet) is None
    resumed = run_darts(cfg, tmp_path / "b", resume=True, **quiet)
    assert whole["hw"] == resumed["hw"] and whole["genome"] == resumed["genome"]
    assert whole["edp_uj_ms"] == resumed["edp_uj_ms"]
    assert sp.hw.validate(whole["hw"]) == whole["hw"] and whole["hw"]["bits"] == 8
    arch_d = sp.hw.architecture(whole["hw"])
    t = network_totals(genome_layers(whole["genome"]), arch_d, budget=BUDGET, cache=MappingCache())
    assert whole["latency_ms"] == pytest.approx(_ms(arch_d, t), rel=1e-12)
    assert whole["edp_vs_baseline"] == pytest.approx(whole["edp_uj_ms"] / whole["baseline_hw"]["edp_uj_ms"])
    assert json.loads((tmp_path / "a" / "hw.json").read_text()) == whole["hw"]


@pytest.mark.parametrize("kind", ["proxyless", "fbnet", "target"])
def test_losses_grow_with_the_expected_cost(kind):
    from codesign.darts.loss import hardware_loss
    ce = torch.tensor(1.3)
    cost = torch.tensor(1.5, requires_grad=True)
    loss = hardware_loss(ce, cost, kind, 0.6, target=1.0)
    loss.backward()
    assert cost.grad > 0
    expect = {"proxyless": 1.3 + 0.6 * 1.5, "fbnet": 1.3 * 0.2 * np.log(1500.0) ** 0.6, "target": 1.3 + 0.6 * 0.5}[kind]
    assert float(loss.detach()) == pytest.approx(expect, rel=1e-6)
    if kind == "target":                      # no pressure under the target
        under = torch.tensor(0.8, requires_grad=True)
        hardware_loss(ce, under, kind, 0.6, target=1.0).backward()
        assert under.grad == 0


def _point_at(arch, g: dict, logit: float) -> None:
    """Architecture logits that put (numerically) all probability on genome ``g``'s op and depth
    choices: +logit there, -logit elsewhere."""
    with torch.no_grad():
        arch.op.fill_(-logit)
        arch.depth.fill_(-logit)
        for i in range(DEFAULT_SPACE.slots):
            arch.op[i, arch.choices.index((g["ks"][i], g["e"][i]))] = logit
        for s, d in enumerate(g["d"]):
            arch.depth[s, DEFAULT_SPACE.depths.index(d)] = logit


def test_onchip_hinge_is_exact_and_brings_the_derived_accelerator_under_the_limit():
    """--hw-space's on-chip memory term: its value is the exact on-chip memory of the accelerator
    the run would derive, and the hinge alone moves an over-limit design under the space's limit."""
    from accelerators.arch import onchip_kib
    from codesign.darts.hwspace import HwRelax, within_onchip_limit
    sp = load_space()
    limit = dict(sp.constraints)["onchip_kib"]
    assert within_onchip_limit(sp, dict(sp.baseline, bits=8)) is True
    hw = HwRelax(sp.hw, 16)
    with torch.no_grad():                     # start at the largest design: far over the limit
        for (name, vals), l in zip(hw.genes, hw.logits):
            l.zero_()
            l[int(np.argmax(vals)) if name != "dataflow" and name != "dram_type" else 0] = 2.0
    big = hw.derive()
    assert onchip_kib(sp.hw.architecture(big)) > limit and within_onchip_limit(sp, big) is False
    mem = hw.onchip_kib(sp.hw)
    assert float(mem.detach()) == pytest.approx(onchip_kib(sp.hw.architecture(big)), rel=1e-9)
    mem.backward()
    gx = hw.logits[hw.genes.index(next(g for g in hw.genes if g[0] == "pe_x"))].grad
    assert gx[-1] > 0 and gx[0] < 0           # more PE columns cost memory (per-PE spads)
    opt = torch.optim.Adam(hw.parameters(), lr=0.2)
    for _ in range(60):
        opt.zero_grad()
        pen = 10.0 * torch.relu(hw.onchip_kib(sp.hw) / limit - 1.0)
        if float(pen.detach()) == 0:
            break
        pen.backward()
        opt.step()
    assert within_onchip_limit(sp, hw.derive()) is True


def test_search_algorithm_darts_maps_its_options_onto_codesign_darts():
    from codesign.cli import build_parser
    from codesign.cli.search import darts_argv
    p = build_parser()
    a = p.parse_args(["search", "--algorithm", "darts", "--data", "D", "--budget", "30", "--lambda", "0,0.1",
                      "--bits", "4", "--hw-space", "--out", "O", "--darts-args", "--epochs 3 --entropy-reg 0.5"])
    argv = darts_argv(a)
    d = p.parse_args(argv)
    assert (d.lam, d.bits, d.hw_space, d.epochs, d.steps_per_epoch, d.entropy_reg, d.out, d.data) == \
        ("0,0.1", 4, True, 3, 10, 0.5, "O", "D")
    d = p.parse_args(darts_argv(p.parse_args(["search", "--algorithm", "darts", "--data", "D", "--budget", "8"])))
    assert (d.lam, d.bits, d.hw_space, d.epochs, d.steps_per_epoch) == ("0.1", 8, False, 2, 4)
    from accelerators.errors import SpecError
    from codesign.cli.search import cmd_search
    with pytest.raises(SpecError):            # darts options with another algorithm
        cmd_search(p.parse_args(["search", "--lambda", "0.5", "--budget", "2"]))


@pytest.mark.slow
def test_search_algorithm_darts_runs_codesign_darts(tiny, tmp_path, capsys):
    from codesign.cli import main
    out = tmp_path / "s"
    code = main(["search", "--algorithm", "darts", "--data", str(tiny), "--budget", "2", "--lambda", "5",
                 "--mapper-budget", str(BUDGET), "--out", str(out), "--quiet",
                 "--darts-args", "--epochs 1 --batch 4 --resolution 24"])
    assert code == 0
    assert "derived genome" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] * cfg["steps_per_epoch"] == 2 and cfg["lam"] == 5.0 and cfg["batch"] == 4
    assert DEFAULT_SPACE.validate(json.loads((out / "genome.json").read_text()))


# ---------------------------------------------------------------- the comparison (benchmarks/darts.py)
def test_first_front_equals_the_first_nondominated_front_and_is_fast():
    import time
    from codesign.search.nsga2 import first_front, non_dominated_fronts
    rng = np.random.default_rng(0)
    for trial in range(200):
        n, m = int(rng.integers(1, 40)), int(rng.integers(2, 4))
        F = rng.integers(0, 4, (n, m)).astype(float)          # ties and duplicates
        v = None if trial % 3 == 0 else np.where(rng.random(n) < 0.4, rng.integers(0, 3, n), 0).astype(float)
        assert np.array_equal(np.sort(non_dominated_fronts(F, v)[0]), first_front(F, v))
    F = rng.random((5000, 2))
    t = time.perf_counter()
    first_front(F, np.zeros(len(F)))
    assert time.perf_counter() - t < 1.0


def test_run_search_with_fixed_hw_and_a_time_limit():
    import time
    from dataclasses import replace
    from codesign.search.algorithms import run_search
    sp = load_space()
    sp24 = replace(sp, net=replace(sp.net, resolutions=(24,)))
    hw = dict(sp.baseline, bits=8)
    calls = []

    def evaluate(g):
        calls.append(g)
        time.sleep(0.01)
        return {"top1_pct": 60.0 + sum(g["net"]["e"]), "latency_ms": sum(g["net"]["ks"]) / 20, "energy_uj": 1.0,
                "edp_uj_ms": 1.0, "area_mm2": 1.0, "onchip_kib": 1.0, "violation": 0.0}
    t = time.perf_counter()
    res = run_search(sp24, evaluate, algorithm="nsga2", budget=10**6, population=8, objectives=("accuracy", "latency"),
                     fixed_hw=hw, time_limit_s=0.5)
    assert time.perf_counter() - t < 0.5 + 0.1          # stops within about one evaluation of the limit
    assert 10 < len(res.rows) == len(calls) < 60
    assert all(r["genome"]["hw"] == hw and r["genome"]["net"]["r"] == 24 for r in res.rows)
    hv = [h for _, _, h in res.hypervolume]
    assert hv == sorted(hv) and hv[-1] > 0                # the incremental log never decreases
