"""The paired noise ceiling of the proxy study (issue #23) on synthetic per-image results whose
answer is known, and its resumable per-image measurement. Seconds in all."""
import json
import math

import numpy as np
import pytest

from codesign.nn import proxy_study as PS
from codesign.space.genome import DEFAULT_SPACE as S, subnet_key


def _bivariate_normal_spearman(pearson: float) -> float:
    """Spearman of a bivariate normal pair with this Pearson correlation (Pearson 1907)."""
    return 6 / math.pi * math.asin(pearson / 2)


def test_spearman_brown_and_bit_packing():
    assert PS.spearman_brown(0.5, 2) == pytest.approx(2 / 3)
    assert PS.spearman_brown(1.0, 2) == pytest.approx(1.0)
    assert PS.spearman_brown(0.0, 2) == 0.0
    v = np.random.default_rng(0).random(2501) < 0.8
    assert np.array_equal(PS.unpack_correct(PS.pack_correct(v), len(v)), v)


def test_nested_results_rank_perfectly_where_the_independent_model_says_they_cannot():
    # every genome is right on a superset of the images of every weaker genome (shared image
    # difficulty, the extreme of paired noise): any half of the images ranks the genomes alike
    rng = np.random.default_rng(0)
    p = np.linspace(0.815, 0.835, 60)                   # 0.6 points std: below the binomial 0.77
    difficulty = rng.random(2500)
    C = difficulty[None, :] < p[:, None]
    rel = PS.split_half_reliability(C, splits=100)
    assert rel["reliability"] > 0.99
    out = PS.paired_noise_ceiling(C, sims=100, genome_boot=0)
    assert out["ceiling_spearman"] > 0.98 and out["sqrt_reliability"] > 0.99
    # independent binomial noise of the same size would leave a perfect proxy far below that
    assert PS.noise_ceiling(100 * C.mean(1), 2500)["ceiling_spearman"] < 0.8


def test_independent_coin_flips_with_no_true_spread_have_no_reliability():
    # 300 genomes, all 82% on every image independently: whatever spread they show is noise.
    # With 300 genomes the estimate's own spread is about +-0.08 (one sd), so +-0.25 is ~3 sd.
    rng = np.random.default_rng(0)
    C = rng.random((300, 1000)) < 0.82
    assert abs(PS.split_half_reliability(C, splits=100)["reliability"]) < 0.25
    assert PS.paired_noise_ceiling(C, sims=50, genome_boot=0)["ceiling_spearman"] < 0.4


def test_a_known_true_spread_with_binomial_noise_gives_the_analytic_ceiling():
    # true accuracies 82% +- 1 point (normal), each genome's images independent Bernoulli draws:
    # a perfect proxy's Spearman against the measurement is the bivariate-normal Spearman of
    # Pearson sqrt(var_true / (var_true + p(1-p)/n)) = 0.779. Over seeds the estimate from 300
    # genomes stayed within 0.02 of it; 0.05 allows ~2.5x that. Where the noise is independent
    # the paired and the independent model must agree (they did within 0.01; 0.03 here).
    n, p, sd = 2500, 0.82, 0.01
    analytic = _bivariate_normal_spearman(math.sqrt(sd ** 2 / (sd ** 2 + p * (1 - p) / n)))
    assert analytic == pytest.approx(0.779, abs=1e-3)
    rng = np.random.default_rng(3)
    truth = p + sd * rng.standard_normal(300)
    C = rng.random((300, n)) < truth[:, None]
    out = PS.paired_noise_ceiling(C, sims=100, genome_boot=20, boot_sims=20)
    assert out["ceiling_spearman"] == pytest.approx(analytic, abs=0.05)
    assert out["sqrt_reliability"] == pytest.approx(analytic, abs=0.05)
    assert out["ceiling_spearman_ci"][0] <= out["ceiling_spearman"] <= out["ceiling_spearman_ci"][1]
    assert out["ceiling_spearman_range"][0] < out["ceiling_spearman"] < out["ceiling_spearman_range"][1]
    indep = PS.noise_ceiling(100 * C.mean(1), n)["ceiling_spearman"]
    assert out["ceiling_spearman"] == pytest.approx(indep, abs=0.03)
    assert out["paired_noise_std_points"] == pytest.approx(100 * math.sqrt(p * (1 - p) / n), rel=0.05)


def test_paired_study_compares_the_ensemble_on_the_same_genomes():
    rng = np.random.default_rng(1)
    truth = 0.82 + 0.01 * rng.standard_normal(40)
    C = rng.random((40, 2500)) < truth[:, None]
    keys = [f"g{i}" for i in range(40)]
    acc = 100 * C.mean(1)
    res = {"keys": keys[::-1], "acc": acc[::-1].tolist(),          # the study's own order
           "ensemble": {"ridge_pred": acc[::-1].tolist(), "vote_pred": (-acc[::-1]).tolist()}}
    out = PS.paired_study([{"key": k} for k in keys], dict(zip(keys, C)), res, sims=50, genome_boot=10)
    assert out["n_genomes"] == 40 and out["measured_top1_matches_study"] == 40
    assert out["ridge_spearman"] == pytest.approx(1.0) and out["vote_spearman"] == pytest.approx(-1.0)


def test_study_subset_and_resumable_per_image_measurement(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    gs = [S.canonical(S.sample(rng)) for _ in range(6)]
    rows = [{"genome": g, "bits": b, "top1": 80.0 + i, "plan_index": i} for i, g in enumerate(gs[:4])
            for b in (8, 16)]
    extra = [{"genome": g, "bits": 8, "top1": 70.0, "seed": 7} for g in gs[4:]]
    meas = PS.study_measurements(rows, extra, dataset_seed=10)
    assert [m["seed"] for m in meas] == [10, 11, 12, 13, 7, 7]
    assert [m["key"] for m in meas] == [subnet_key(g) for g in gs]
    sub = PS.paired_subset(meas, 4, seed=0)
    assert sub == PS.paired_subset(meas, 4, seed=0) and len({m["key"] for m in sub}) == 4
    assert PS.paired_subset(meas, 6, seed=0)[:4] == sub        # a prefix of the same draw

    calls = []

    def fake_correct_many(net, genome, bits, calib, images, labels, seed, clip, bn):
        calls.append((subnet_key(genome), seed, clip, bn))
        return {8: np.arange(len(labels)) < len(labels) * (seed % 5 + 1) // 10}
    import codesign.nn.measure as M
    monkeypatch.setattr(M, "correct_many", fake_correct_many)

    class Hold:
        images = np.zeros((20, 3, 32, 32), np.uint8)
        labels = np.zeros(20, int)
    out = tmp_path / "per_image.jsonl"
    PS.measure_per_image(sub[:2], out, None, None, Hold, log=lambda *_: None)
    out.write_text(out.read_text() + '{"key": "torn')
    done = PS.measure_per_image(sub, out, None, None, Hold, log=lambda *_: None)
    assert len(calls) == 4 and len(done) == 4                  # nothing measured twice
    assert all(c[2:] == ("mse", "float") for c in calls)        # the study's 8-bit protocol
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["key"] for r in lines] == [m["key"] for m in sub]
    for r, m in zip(lines, sub):
        v = PS.unpack_correct(r["per_image_correct"], r["n_images"])
        assert np.array_equal(v, done[m["key"]]) and r["top1"] == 100 * v.mean()
        assert r["seed"] == m["seed"] and r["reproduced"] == (r["top1"] == m["top1"])
