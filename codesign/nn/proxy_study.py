"""The zero-shot proxy correlation study (issue #23): per-genome proxy scores into a resumable
JSONL, then per proxy Spearman and Kendall with bootstrap 95% intervals, top-10% precision and
time per subnet; a rank-vote ensemble of the best k (Abdelfattah et al. ICLR 2021) and a ridge
regression on proxy ranks, both fitted only on training genomes (5-fold, genome-level: every
figure is on the held-out fold); the noise ceiling (the Spearman a perfect proxy reaches
against accuracy measured with independent binomial noise on ``n_images`` images); and the
paired noise ceiling from per-image results of a seeded subset of the genomes (split-half
reliability, image-bootstrap ceiling: the noise with its real correlation across genomes)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from codesign.space.genome import subnet_key


def _spearman(a, b):
    from scipy.stats import spearmanr
    v = spearmanr(a, b)[0]
    return float(v) if np.isfinite(v) else 0.0


def _kendall(a, b):
    from scipy.stats import kendalltau
    v = kendalltau(a, b)[0]
    return float(v) if np.isfinite(v) else 0.0


def score_genomes(genomes, out_path, compute, log=print, deadline: float | None = None) -> dict:
    """{subnet_key: row} of every genome's proxies, ``compute(genome) -> dict`` appended to the
    JSONL ``out_path`` one line per genome as it finishes; a rerun continues (a torn last line
    is dropped)."""
    out_path = Path(out_path)
    done = {}
    if out_path.exists():
        lines = out_path.read_text().splitlines()
        good = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["key"]] = row
            good.append(line)
        if len(good) != len(lines):
            out_path.write_text("".join(l + "\n" for l in good))
    with open(out_path, "a") as fh:
        for i, g in enumerate(genomes):
            k = subnet_key(g)
            if k in done:
                continue
            if deadline is not None and time.time() > deadline:
                log(f"# deadline: stopped after {len(done)} of {len(genomes)} genomes")
                break
            t = time.perf_counter()
            row = {"key": k, "genome": g, **compute(g)}
            row["total_seconds"] = round(time.perf_counter() - t, 3)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            done[k] = row
            if (i + 1) % 10 == 0:
                log(f"# scored {len(done)} / {len(genomes)}")
    return done


def _ranks(train_vals, vals):
    """Fractional rank of each of ``vals`` among ``train_vals`` (0..1): a transform fitted on
    the training genomes only."""
    s = np.sort(train_vals)
    return (np.searchsorted(s, vals, "left") + np.searchsorted(s, vals, "right")) / (2.0 * len(s))


RIDGE_TRANSFORMS = ("ranks", "normal")
RIDGE_ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)


def _rank_features(train_vals: np.ndarray, vals: np.ndarray, transform: str) -> np.ndarray:
    """Every proxy column of ``vals`` as its rank among the training genomes' (0..1), or as the
    rank's normal score (``normal``: the inverse normal CDF of the rank, clipped to the
    training genomes' own range [1/2n, 1 - 1/2n]; it spreads the tails a plain rank squeezes)."""
    r = np.column_stack([_ranks(train_vals[:, j], vals[:, j]) for j in range(train_vals.shape[1])])
    if transform == "ranks":
        return r
    from scipy.stats import norm
    h = 0.5 / len(train_vals)
    return norm.ppf(np.clip(r, h, 1.0 - h))


def _ridge_fit_predict(X: np.ndarray, y: np.ndarray, Xte: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression with an unpenalized intercept, fitted on (X, y), predicting Xte."""
    mu = X.mean(0)
    Xc = X - mu
    w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - y.mean()))
    return (Xte - mu) @ w + y.mean()


def _ridge_choice(scores: np.ndarray, acc: np.ndarray, folds: int, seed: int,
                  transforms=RIDGE_TRANSFORMS, alphas=RIDGE_ALPHAS) -> tuple[str, float]:
    """(transform, alpha) of the ridge ensemble with the best inner cross-validated Spearman on
    these (training) genomes only."""
    inner = np.random.default_rng(seed).permutation(len(acc)) % folds
    best = None
    for t in transforms:
        for alpha in alphas:
            pred = np.zeros(len(acc))
            for g in range(folds):
                tr, te = inner != g, inner == g
                pred[te] = _ridge_fit_predict(_rank_features(scores[tr], scores[tr], t), acc[tr],
                                              _rank_features(scores[tr], scores[te], t), alpha)
            s = _spearman(pred, acc)
            if best is None or s > best[0]:
                best = (s, t, alpha)
    return best[1], best[2]


def fit_ensembles(s_tr: np.ndarray, acc_tr: np.ndarray, s_te: np.ndarray, names, rng, ridge_seed: int,
                  folds: int = 5, ks=(2, 3, 4, 5), transforms=RIDGE_TRANSFORMS, alphas=RIDGE_ALPHAS) -> dict:
    """Both ensembles fitted on the training genomes (``s_tr``, ``acc_tr``) only, predicting
    ``s_te``. vote: the k proxies with the best training Spearman, their ranks among the
    training genomes summed, k chosen on an inner half split drawn from ``rng``; ridge: transform
    and penalty by ``_ridge_choice`` (inner ``folds``-fold CV seeded ``ridge_seed``)."""
    rtr = np.column_stack([_ranks(s_tr[:, j], s_tr[:, j]) for j in range(s_tr.shape[1])])
    rte = np.column_stack([_ranks(s_tr[:, j], s_te[:, j]) for j in range(s_tr.shape[1])])
    rho = np.array([_spearman(rtr[:, j], acc_tr) for j in range(s_tr.shape[1])])
    order = np.argsort(-rho)
    itr = rng.permutation(len(acc_tr))
    a, b = itr[: len(itr) // 2], itr[len(itr) // 2:]
    best_k, best = ks[0], -2.0
    for k in ks:
        rho_a = np.array([_spearman(rtr[a, j], acc_tr[a]) for j in range(s_tr.shape[1])])
        top = np.argsort(-rho_a)[:k]
        sc = _spearman(rtr[b][:, top].sum(1), acc_tr[b])
        if sc > best:
            best_k, best = k, sc
    top = order[:best_k]
    t, alpha = _ridge_choice(s_tr, acc_tr, folds, ridge_seed, transforms, alphas)
    ridge = _ridge_fit_predict(_rank_features(s_tr, s_tr, t), acc_tr, _rank_features(s_tr, s_te, t), alpha)
    return {"vote": rte[:, top].sum(1), "vote_chosen": [names[j] for j in top],
            "ridge": ridge, "ridge_chosen": {"transform": t, "alpha": alpha}}


def ensembles(scores: np.ndarray, acc: np.ndarray, names, folds: int = 5, ks=(2, 3, 4, 5),
              seed: int = 0, transforms=RIDGE_TRANSFORMS, alphas=RIDGE_ALPHAS) -> dict:
    """Held-out predictions of the two ensembles, cross-fitted over ``folds`` genome-level folds.
    vote: the k proxies with the best training Spearman, their ranks summed (k chosen by an inner
    split of the training fold). ridge: ridge regression of accuracy on every proxy's rank among
    the training genomes, plain or as normal scores, with the transform and the penalty chosen
    by an inner ``folds``-fold cross-validation of the training fold (``_ridge_choice``). Returns
    their held-out Spearman / Kendall and what the folds chose."""
    n = len(acc)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    vote = np.zeros(n)
    ridge = np.zeros(n)
    chosen, ridge_chosen = [], []
    for f in range(folds):
        tr, te = fold != f, fold == f
        if tr.sum() < 4 or te.sum() < 1:
            continue
        fit = fit_ensembles(scores[tr], acc[tr], scores[te], names, rng, seed + 1 + f, folds, ks, transforms, alphas)
        chosen.append(fit["vote_chosen"])
        ridge_chosen.append(fit["ridge_chosen"])
        vote[te], ridge[te] = fit["vote"], fit["ridge"]
    return {"vote": {"spearman": _spearman(vote, acc), "kendall": _kendall(vote, acc),
                     "top10": top_precision(vote, acc), "chosen": chosen},
            "ridge": {"spearman": _spearman(ridge, acc), "kendall": _kendall(ridge, acc),
                      "top10": top_precision(ridge, acc), "chosen": ridge_chosen},
            "folds": folds, "vote_pred": vote.tolist(), "ridge_pred": ridge.tolist()}


def top_precision(score, acc, frac: float = 0.1) -> float:
    """Of the ``frac`` best by score, the share that is in the true top ``frac``."""
    k = max(1, int(round(frac * len(acc))))
    a = set(np.argsort(-np.asarray(score), kind="stable")[:k])
    b = set(np.argsort(-np.asarray(acc), kind="stable")[:k])
    return len(a & b) / k


def bootstrap(score, acc, n_boot: int = 1000, seed: int = 0) -> dict:
    """Spearman and Kendall with percentile bootstrap 95% intervals (genomes resampled)."""
    score, acc = np.asarray(score, float), np.asarray(acc, float)
    rng = np.random.default_rng(seed)
    sp, kt = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(acc), len(acc))
        sp.append(_spearman(score[i], acc[i]))
        kt.append(_kendall(score[i], acc[i]))
    return {"spearman": _spearman(score, acc), "kendall": _kendall(score, acc),
            "spearman_ci": [float(np.percentile(sp, 2.5)), float(np.percentile(sp, 97.5))],
            "kendall_ci": [float(np.percentile(kt, 2.5)), float(np.percentile(kt, 97.5))]}


def noise_ceiling(acc_percent, n_images: int, sims: int = 200, seed: int = 0) -> dict:
    """Measurement noise of top-1 on ``n_images`` images against the spread across genomes, and
    the Spearman a perfect proxy could reach: the true accuracies are estimated by shrinking the
    measured ones towards their mean so that their variance is the measured variance less the
    mean binomial variance; each simulation draws binomial measurements around them and takes
    the Spearman of truth against measurement.

    A rough figure, in both directions: the draws are independent per genome, but every genome
    is measured on the same images, so measurement errors are positively correlated across
    genomes (two subnets mostly fail on the same hard images) and the noise on their ranking is
    smaller than this: the ceiling is pessimistic (a model can beat it; ``paired_noise_ceiling``
    takes the paired noise from per-image results). Calibration-draw noise, on the other hand,
    is not modelled and comes on top."""
    p = np.asarray(acc_percent, float) / 100.0
    noise_var = float(np.mean(p * (1 - p) / n_images))
    obs_var = float(np.var(p))
    true_var = max(obs_var - noise_var, 1e-12)
    shrink = np.sqrt(true_var / obs_var) if obs_var > 0 else 0.0
    truth = p.mean() + shrink * (p - p.mean())
    rng = np.random.default_rng(seed)
    rho = [_spearman(truth, rng.binomial(n_images, truth) / n_images) for _ in range(sims)]
    return {"n_images": n_images, "spread_std_points": 100 * np.sqrt(obs_var),
            "noise_std_points": 100 * np.sqrt(noise_var), "true_std_points": 100 * np.sqrt(true_var),
            "ceiling_spearman": float(np.mean(rho)),
            "ceiling_spearman_ci": [float(np.percentile(rho, 2.5)), float(np.percentile(rho, 97.5))]}


def spearman_brown(r: float, length_ratio: float) -> float:
    """The reliability of a measurement ``length_ratio`` times as long as one of reliability ``r``
    (Spearman-Brown prophecy: k r / (1 + (k - 1) r))."""
    k = float(length_ratio)
    return float(k * r / (1.0 + (k - 1.0) * r))


def split_half_reliability(correct, splits: int = 500, seed: int = 0) -> dict:
    """Split-half reliability of top-1 across genomes from ``correct`` (genomes x images,
    image i correct for genome g; every genome on the same images): for each of ``splits``
    seeded random halves of the images, the Spearman between the genomes' accuracies on one half
    and on the other; their mean is stepped up to the full image count by Spearman-Brown. The
    reliability is the correlation two independent full measurements (on fresh images) would
    have; the paired structure (genomes fail on the same hard images) is in it, unlike an
    independent binomial model."""
    C = np.asarray(correct, float)
    n_genomes, n_images = C.shape
    half = n_images // 2
    rng = np.random.default_rng(seed)
    from scipy.stats import rankdata
    r = []
    for _ in range(splits):
        perm = rng.permutation(n_images)
        r.append(_ranked_spearman(rankdata(C[:, perm[:half]].mean(1)), C[:, perm[half:2 * half]].mean(1)))
    r_half = float(np.mean(r))
    return {"n_genomes": int(n_genomes), "n_images": int(n_images), "splits": int(splits),
            "half_spearman": r_half,
            "half_spearman_range": [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))],
            "reliability": spearman_brown(r_half, n_images / half)}


def _ranked_spearman(rank_a: np.ndarray, b) -> float:
    """Spearman of a variable with average ranks ``rank_a`` against ``b`` (the Pearson of the
    ranks, as scipy's spearmanr; ``rank_a`` computed once for many ``b``)."""
    from scipy.stats import rankdata
    rb = rankdata(b)
    da, db = rank_a - rank_a.mean(), rb - rb.mean()
    den = np.sqrt((da @ da) * (db @ db))
    return float(da @ db / den) if den > 0 else 0.0


def _paired_ceiling_once(C: np.ndarray, sims: int, rng) -> dict:
    n_genomes, n_images = C.shape
    acc = C.mean(1)
    D = C - acc[:, None]
    cov_noise = D @ D.T / (n_images * max(n_images - 1, 1))       # covariance of the measured accuracies' errors
    # what the errors add to the spread across genomes: the variance of the noise about its genome mean
    noise_spread_var = float(np.trace(cov_noise) / n_genomes - cov_noise.sum() / n_genomes ** 2)
    obs_var = float(np.var(acc))
    true_var = max(obs_var - noise_spread_var, 1e-12)
    shrink = np.sqrt(true_var / obs_var) if obs_var > 0 else 0.0
    truth = acc.mean() + shrink * (acc - acc.mean())
    from scipy.stats import rankdata
    rank_truth = rankdata(truth)
    rho = []
    for _ in range(sims):
        counts = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)
        noise = C @ counts / n_images - acc                      # one bootstrap draw of the images' errors
        rho.append(_ranked_spearman(rank_truth, truth + noise))
    return {"obs_var": obs_var, "true_var": true_var, "noise_spread_var": noise_spread_var,
            "independent_noise_var": float(np.trace(cov_noise) / n_genomes), "rho": rho}


def paired_noise_ceiling(correct, sims: int = 500, genome_boot: int = 200, boot_sims: int = 100,
                         seed: int = 0) -> dict:
    """The Spearman a perfect proxy (one that ranks by the genomes' true accuracy) reaches
    against top-1 measured on the images of ``correct`` (genomes x images booleans, the same
    images for every genome), with the measurement noise as it really is: paired across genomes.

    The true accuracies are the measured ones shrunk towards their mean so that their variance
    is the measured variance less the variance the errors add across genomes, estimated from
    the per-image covariance of the genomes' results (errors shared by all genomes move every
    accuracy alike and cost no rank; only their part that differs between genomes counts). Each
    of ``sims`` simulations draws the errors by a bootstrap of the images (their real
    correlation across genomes kept) and takes the Spearman of truth against truth + errors.
    ``ceiling_spearman``: the mean; ``ceiling_spearman_range``: the 95% range of one
    measurement's value; ``ceiling_spearman_ci``: a 95% interval of the ceiling itself, from
    ``genome_boot`` resamplings of the genomes (``boot_sims`` simulations each).
    ``sqrt_reliability``: the same ceiling by the classical route (the correlation of truth with
    a measurement is the square root of the measurement's reliability), from
    ``split_half_reliability``. Noise from the calibration draw (the BN and activation-range
    images a measurement seed picks) is not in the per-image results, so it comes on top: an
    upper bound."""
    C = np.asarray(correct, float)
    rng = np.random.default_rng(seed)
    main = _paired_ceiling_once(C, sims, rng)
    boot = []
    for _ in range(genome_boot):
        i = rng.integers(0, C.shape[0], C.shape[0])
        boot.append(float(np.mean(_paired_ceiling_once(C[i], boot_sims, rng)["rho"])))
    rel = split_half_reliability(C, seed=seed)
    rho = main["rho"]
    return {"n_genomes": int(C.shape[0]), "n_images": int(C.shape[1]),
            "spread_std_points": 100 * np.sqrt(main["obs_var"]), "true_std_points": 100 * np.sqrt(main["true_var"]),
            "paired_noise_std_points": 100 * np.sqrt(max(main["noise_spread_var"], 0.0)),
            "independent_noise_std_points": 100 * np.sqrt(main["independent_noise_var"]),
            "ceiling_spearman": float(np.mean(rho)),
            "ceiling_spearman_range": [float(np.percentile(rho, 2.5)), float(np.percentile(rho, 97.5))],
            "ceiling_spearman_ci": ([float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
                                    if boot else None),
            "reliability": rel["reliability"], "half_spearman": rel["half_spearman"],
            "sqrt_reliability": float(np.sqrt(max(rel["reliability"], 0.0)))}


def paired_study(subset: list[dict], correct: dict, res: dict, seed: int = 0, sims: int = 500,
                 genome_boot: int = 200) -> dict:
    """The paired noise ceiling of the study's genomes ``subset`` ({key, ...}) from their
    per-image results ``correct`` ({key: booleans}, same images for all), beside what the study
    ``res`` (``analyse``) observed on the same genomes: the held-out ridge and vote ensembles'
    Spearman (bootstrap 95% intervals over genomes) and the independent-binomial ceiling."""
    keys = [e["key"] for e in subset if e["key"] in correct]
    C = np.array([correct[k] for k in keys], bool)
    out = paired_noise_ceiling(C, sims=sims, genome_boot=genome_boot, seed=seed)
    out["planned_genomes"] = len(subset)
    pos = {k: i for i, k in enumerate(res.get("keys", []))}
    both = [j for j, k in enumerate(keys) if k in pos]
    idx = [pos[keys[j]] for j in both]
    y = np.array(res["acc"])[idx]
    diff = np.abs(100.0 * C[both].mean(1) - y)
    out["measured_top1_matches_study"] = int(np.sum(diff < 1e-9))
    out["measured_top1_max_abs_diff_points"] = float(diff.max()) if len(diff) else None
    out["independent_ceiling_spearman"] = noise_ceiling(y, C.shape[1], seed=seed)["ceiling_spearman"]
    if res.get("ensemble") and len(idx) >= 3:
        for name in ("ridge", "vote"):
            b = bootstrap(np.array(res["ensemble"][f"{name}_pred"])[idx], y, seed=seed)
            out[f"{name}_spearman"] = b["spearman"]
            out[f"{name}_spearman_ci"] = b["spearman_ci"]
    return out


def analyse(rows: list[dict], acc: dict, n_images: int, n_boot: int = 1000, seed: int = 0) -> dict:
    """The study's figures from per-genome proxy rows and {subnet_key: top1}."""
    from codesign.nn.proxies import score
    rows = [r for r in rows if r["key"] in acc]
    names = sorted({k for r in rows for k in r if k not in ("key", "genome", "seconds", "total_seconds")},
                   key=lambda k: (k in ("params", "macs"), k))
    y = np.array([acc[r["key"]] for r in rows], float)
    S = np.array([[score(k, r[k]) for k in names] for r in rows], float)
    S = np.nan_to_num(S, nan=0.0, posinf=1e300, neginf=-1e300)
    table = {}
    for j, k in enumerate(names):
        t = bootstrap(S[:, j], y, n_boot, seed)
        t["top10"] = top_precision(S[:, j], y)
        t["seconds"] = float(np.mean([r["seconds"].get(k, 0.0) for r in rows]))
        table[k] = t
    ens = ensembles(S, y, names, seed=seed) if len(y) >= 10 else None
    best = max((k for k in names if k not in ("params", "macs")), key=lambda k: table[k]["spearman"])
    return {"n": len(y), "names": names, "table": table, "ensemble": ens, "best": best,
            "noise": noise_ceiling(y, n_images, seed=seed),
            "seconds_per_subnet": float(np.mean([r.get("total_seconds", 0.0) for r in rows])),
            "scores": S.tolist(), "acc": y.tolist(), "keys": [r["key"] for r in rows]}


def reference(res: dict, dataset_rows: list[dict], k: int = 3) -> dict:
    """What zero-shot search (``--accuracy proxy:NAME``) needs from the study: every proxy's
    oriented scores on the study's genomes (sorted: a new genome's score becomes its fractional
    rank among them), the vote's members (the ``k`` proxies with the best Spearman over all the
    study's genomes), the mean and spread of the measured 8-bit accuracy, and the mean accuracy offset of each
    bit-width against 16 bits in the shipped dataset (proxies carry no bit-width signal)."""
    S, y = np.array(res["scores"]), np.array(res["acc"])
    names = res["names"]
    cand = [n for n in names if n not in ("params", "macs")]
    vote = sorted(cand, key=lambda n: -res["table"][n]["spearman"])[:k]
    by = {}
    for r in dataset_rows:
        by.setdefault(subnet_key(r["genome"]), {})[int(r["bits"])] = r["top1"]
    offsets = {}
    for b in (4, 6, 8):
        d = [v[b] - v[16] for v in by.values() if b in v and 16 in v]
        offsets[str(b)] = float(np.mean(d)) if d else 0.0
    offsets["16"] = 0.0
    return {"names": names, "sorted": {n: np.sort(S[:, j]).tolist() for j, n in enumerate(names)},
            "vote": vote, "acc_std": float(np.std(y)), "acc_mean": float(np.mean(y)), "bit_offsets": offsets, "n": int(len(y)),
            "spearman": {n: res["table"][n]["spearman"] for n in names}}


def write_table(res: dict, path) -> str:
    lines = [f"{res['n']} genomes; accuracy: measured 8-bit top-1 on {res['noise']['n_images']} held-out "
             "training images (validation split); 95% intervals: bootstrap over genomes", "",
             "| proxy | Spearman | 95% CI | Kendall | 95% CI | top-10% precision | s / subnet |",
             "|---|---:|---|---:|---|---:|---:|"]
    for k in res["names"]:
        t = res["table"][k]
        lines.append(f"| {k} | {t['spearman']:.3f} | [{t['spearman_ci'][0]:.3f}, {t['spearman_ci'][1]:.3f}] | "
                     f"{t['kendall']:.3f} | [{t['kendall_ci'][0]:.3f}, {t['kendall_ci'][1]:.3f}] | "
                     f"{t['top10']:.2f} | {t['seconds']:.3f} |")
    e = res["ensemble"]
    if e:
        lines.append(f"| ensemble: vote of best k (held-out, 5-fold) | {e['vote']['spearman']:.3f} | | "
                     f"{e['vote']['kendall']:.3f} | | {e['vote']['top10']:.2f} | |")
        lines.append(f"| ensemble: ridge on ranks or their normal scores (held-out, 5-fold; transform and penalty by inner CV) | {e['ridge']['spearman']:.3f} | | "
                     f"{e['ridge']['kendall']:.3f} | | {e['ridge']['top10']:.2f} | |")
    nz = res["noise"]
    lines += ["", f"Noise ceiling: accuracy spread across genomes {nz['spread_std_points']:.2f} points (std), "
              f"binomial measurement noise on {nz['n_images']} images {nz['noise_std_points']:.2f} points; "
              f"a perfect proxy reaches Spearman {nz['ceiling_spearman']:.3f} "
              f"[{nz['ceiling_spearman_ci'][0]:.3f}, {nz['ceiling_spearman_ci'][1]:.3f}] against the measurement "
              "if the noise were independent across genomes; it is not (the same images for every genome), "
              "so this ceiling is pessimistic (codesign.nn.proxy_study.noise_ceiling)."]
    pq = res.get("paired")
    if pq:
        lines += ["", f"Paired noise ceiling: per-image results of {pq['n_genomes']} of the study's genomes "
                  f"(drawn with seed {res.get('seed', 0)}; same {pq['n_images']} images and protocol, top-1 reproduced "
                  f"for {pq['measured_top1_matches_study']} of {pq['n_genomes']}"
                  + (f", the others within {pq['measured_top1_max_abs_diff_points']:.2f} points: float rounding"
                     if pq["measured_top1_matches_study"] < pq["n_genomes"] else "")
                  + f"): split-half reliability "
                  f"(Spearman-Brown) {pq['reliability']:.3f}; true spread {pq['true_std_points']:.2f} points (std), "
                  f"measurement noise that differs between genomes {pq['paired_noise_std_points']:.2f} points "
                  f"(independent binomial {pq['independent_noise_std_points']:.2f}); a perfect proxy reaches Spearman "
                  f"{pq['ceiling_spearman']:.3f} [{pq['ceiling_spearman_ci'][0]:.3f}, {pq['ceiling_spearman_ci'][1]:.3f}] "
                  f"against the measurement (one measurement: {pq['ceiling_spearman_range'][0]:.3f}-"
                  f"{pq['ceiling_spearman_range'][1]:.3f}; sqrt of the reliability {pq['sqrt_reliability']:.3f}; "
                  f"the independent model on these genomes {pq['independent_ceiling_spearman']:.3f}). "
                  + (f"On the same genomes the held-out ridge ensemble reaches {pq['ridge_spearman']:.3f} "
                     f"[{pq['ridge_spearman_ci'][0]:.3f}, {pq['ridge_spearman_ci'][1]:.3f}], the vote "
                     f"{pq['vote_spearman']:.3f} " if "ridge_spearman" in pq else "")
                  + "(codesign.nn.proxy_study.paired_noise_ceiling; calibration-draw noise not included: an upper bound)."]
    text = "\n".join(lines) + "\n"
    Path(path).write_text(text)
    return text


def scatter_plots(res: dict, out_dir) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    S, y = np.array(res["scores"]), np.array(res["acc"])
    for j, k in enumerate(res["names"]):
        fig, ax = plt.subplots(figsize=(4, 3.2))
        ax.scatter(S[:, j], y, s=6)
        ax.set_xlabel(f"{k} (oriented score)")
        ax.set_ylabel("8-bit top-1 (%)")
        ax.set_title(f"{k}: Spearman {res['table'][k]['spearman']:.3f}", fontsize=9)
        fig.tight_layout()
        fig.savefig(out_dir / f"{k.replace(':', '_')}.png", dpi=80)
        plt.close(fig)


def plan_genomes(n: int, seed: int = 0) -> list:
    """The first ``n`` genomes of ``accuracy_dataset``'s plan (seed 0: the shipped dataset's)."""
    from codesign.space.genome import DEFAULT_SPACE
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        g = DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng))
        if subnet_key(g) in seen:
            continue
        seen.add(subnet_key(g))
        out.append(g)
    return out


def measure_extra(genomes, out_path, net, calib, hold, seeds, deadline=None) -> dict:
    """{subnet_key: top1} of ``genomes`` at 8 bits with the shipped dataset's 8-bit protocol
    (clip mse, BN float, measure seed = 0 + plan index), appended to ``out_path``."""
    from codesign.nn.measure import measure_many
    from codesign.space.genome import subnet_key
    out_path = Path(out_path)
    done = {}
    if out_path.exists():
        for line in out_path.read_text().splitlines():
            try:
                r = json.loads(line)
                done[subnet_key(r["genome"])] = r["top1"]
            except (json.JSONDecodeError, KeyError):
                pass
    with open(out_path, "a") as fh:
        for g, s in zip(genomes, seeds):
            if subnet_key(g) in done:
                continue
            if deadline is not None and time.time() > deadline:
                break
            t = time.time()
            top1 = measure_many(net, g, [8], calib, hold.images, hold.labels, seed=s, clip="mse", bn="float")[8]
            fh.write(json.dumps({"genome": g, "bits": 8, "top1": top1, "seconds": round(time.time() - t, 2),
                                 "seed": int(s)}) + "\n")
            fh.flush()
            done[subnet_key(g)] = top1
    return done


def pack_correct(correct) -> str:
    """A boolean per-image vector as base64 text of ``np.packbits`` (its length is stored beside it)."""
    import base64
    return base64.b64encode(np.packbits(np.asarray(correct, bool)).tobytes()).decode("ascii")


def unpack_correct(text: str, n_images: int) -> np.ndarray:
    """The inverse of ``pack_correct``: ``n_images`` booleans."""
    import base64
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8))
    return bits[:n_images].astype(bool)


def study_measurements(dataset_rows: list[dict], extra_rows: list[dict], dataset_seed: int = 0) -> list[dict]:
    """The study's measured 8-bit genomes in the study's order (the dataset's 8-bit rows, then
    the genomes measured by ``measure_extra``), each {key, genome, seed, top1}: ``seed`` is the
    measurement seed that gave ``top1`` (dataset: its seed + plan_index; extra rows: stored)."""
    out, seen = [], set()
    for r in dataset_rows:
        if r.get("bits") == 8 and "plan_index" in r and subnet_key(r["genome"]) not in seen:
            seen.add(subnet_key(r["genome"]))
            out.append({"key": subnet_key(r["genome"]), "genome": r["genome"],
                        "seed": int(dataset_seed + r["plan_index"]), "top1": float(r["top1"])})
    for r in extra_rows:
        if r.get("bits") == 8 and "seed" in r and subnet_key(r["genome"]) not in seen:
            seen.add(subnet_key(r["genome"]))
            out.append({"key": subnet_key(r["genome"]), "genome": r["genome"], "seed": int(r["seed"]),
                        "top1": float(r["top1"])})
    return out


def paired_subset(measurements: list[dict], n: int, seed: int = 0) -> list[dict]:
    """The first ``n`` of a ``seed``-ed random permutation of the study's measured genomes (in
    that order: the first k of them, where a measurement was cut short, are a random draw too)."""
    order = np.random.default_rng(seed).permutation(len(measurements))
    return [measurements[i] for i in order[:n]]


def measure_per_image(entries: list[dict], out_path, net, calib, hold, deadline: float | None = None,
                      log=print) -> dict:
    """{subnet_key: boolean per-image vector} of ``entries`` ({key, genome, seed, top1}) at 8
    bits with the study's 8-bit protocol (clip mse, BN float, the entry's measurement seed) on
    ``hold``'s images, one JSONL row per genome appended to ``out_path`` as it finishes (the
    vector as ``pack_correct`` text; a rerun continues, a torn last line is dropped). Each row
    also records the stored top-1 and whether the re-measurement reproduced it."""
    from codesign.jsonio import read_jsonl
    from codesign.nn.measure import correct_many
    out_path = Path(out_path)
    n_images = len(hold.labels)
    done = {}
    if out_path.exists():
        for r in read_jsonl(out_path, cut_last="repair"):
            if r.get("n_images") == n_images:
                done[r["key"]] = unpack_correct(r["per_image_correct"], n_images)
    with open(out_path, "a") as fh:
        for e in entries:
            if e["key"] in done:
                continue
            if deadline is not None and time.time() > deadline:
                log(f"# deadline: per-image results for {len(done)} of {len(entries)} genomes")
                break
            t = time.time()
            c = correct_many(net, e["genome"], [8], calib, hold.images, hold.labels, seed=e["seed"],
                             clip="mse", bn="float")[8]
            top1 = 100.0 * int(c.sum()) / n_images
            fh.write(json.dumps({"key": e["key"], "genome": e["genome"], "bits": 8, "seed": e["seed"],
                                 "n_images": n_images, "top1": top1, "stored_top1": e["top1"],
                                 "reproduced": abs(top1 - e["top1"]) < 1e-9,
                                 "seconds": round(time.time() - t, 2),
                                 "per_image_correct": pack_correct(c)}) + "\n")
            fh.flush()
            done[e["key"]] = c
            if len(done) % 10 == 0:
                log(f"# per-image: {len(done)} / {len(entries)} genomes")
    return done


def run_study(data, dataset, weights, out, batch: int = 16, ntk_batch: int = 8, extra: int = 20,
              minutes: float | None = None, boot: int = 1000, seed: int = 0, smoke: bool = False,
              paired: int = 80) -> int:
    """The whole study (``benchmarks/proxies.py``, ``codesign proxies --study``): measure what is
    missing, score every genome (resumable), analyse, write OUT/table.md, OUT/results.json,
    OUT/plots/; prints the table and ends with best_proxy / ensemble_spearman / macs_spearman.
    ``paired`` of the study's genomes (seeded draw) are re-measured with per-image results into
    OUT/per_image.jsonl (resumable) for the paired noise ceiling (0: none)."""
    import sys
    from types import SimpleNamespace
    from codesign.nn.proxies import genome_proxies
    from codesign.predictors.accuracy import read_datasets
    from codesign.space.genome import DEFAULT_SPACE
    args = SimpleNamespace(data=data, dataset=dataset, weights=weights, out=out, batch=batch, ntk_batch=ntk_batch,
                           extra=extra, minutes=minutes, boot=boot, seed=seed, smoke=smoke, paired=paired)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + 60 * args.minutes if args.minutes else None
    net = None
    if Path(args.weights).is_file():
        from codesign.nn.supernet import load_supernet
        net = load_supernet(args.weights)
    have_data = Path(args.data).exists()
    n_images = 2500
    if args.smoke:
        rng = np.random.default_rng(args.seed)
        genomes = [DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng, depths=(2,), expands=(3,), resolutions=(24,)))
                   for _ in range(10)]
        images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, 4)
        from codesign.space.layers import genome_macs
        acc = {subnet_key(g): 80 + 1e-6 * genome_macs(g) + rng.normal(0, 0.5) for g in genomes}
        args.ntk_batch, args.boot = 2, 50
        print("# smoke: 10 small genomes, 4 random images, synthetic accuracies")
    else:
        if not have_data:
            print(f"no data set at {args.data} (use --smoke)", file=sys.stderr)
            return 2
        from codesign.artifacts import predictor_split
        calib, hold = predictor_split(args.data, 5000, 2000, 2500, seed=0)
        n_images = len(hold.labels)
        pick = np.random.default_rng(args.seed).choice(len(hold.labels), args.batch, replace=False)
        images, labels = hold.images[pick], hold.labels[pick]
        rows = [r for r in read_datasets([args.dataset]) if r.get("bits") == 8]
        acc = {subnet_key(r["genome"]): r["top1"] for r in rows}
        n_plan = max((r.get("plan_index", -1) for r in rows), default=-1) + 1
        extra = plan_genomes(n_plan + args.extra)[n_plan:]
        extremes = [DEFAULT_SPACE.max_genome(), DEFAULT_SPACE.min_genome()]
        genomes = [r["genome"] for r in rows]
        measured = measure_extra(extremes + extra, out / "extra_accuracy.jsonl", net, calib, hold,
                                 [0, 0] + list(range(n_plan, n_plan + len(extra))), deadline)
        acc.update(measured)
        genomes += [g for g in extremes + extra if subnet_key(g) in measured]
        print(f"# {len(rows)} dataset genomes + {len(measured)} measured here "
              f"(of {len(extremes) + len(extra)} planned: extremes + {len(extra)} plan genomes)")

    def compute(g):
        return genome_proxies(g, images, labels, seed=args.seed, supernet=net, ntk_batch=args.ntk_batch)
    scores_path = out / "scores.jsonl"
    done = score_genomes(genomes, scores_path, compute, deadline=deadline)
    res = analyse(list(done.values()), acc, n_images, n_boot=args.boot, seed=args.seed)
    res["complete"] = all(subnet_key(g) in done for g in genomes)
    res["planned_genomes"] = len(genomes)
    res["seed"] = args.seed
    if not args.smoke and args.paired > 0 and net is not None:
        from codesign.jsonio import read_jsonl
        meta_path = Path(args.dataset).with_suffix(".json")
        dataset_seed = int(json.loads(meta_path.read_text()).get("seed", 0)) if meta_path.is_file() else 0
        extra_path = out / "extra_accuracy.jsonl"
        meas = study_measurements(rows, read_jsonl(extra_path) if extra_path.is_file() else [], dataset_seed)
        subset = paired_subset([m for m in meas if m["key"] in done], args.paired, seed=args.seed)
        correct = measure_per_image(subset, out / "per_image.jsonl", net, calib, hold, deadline)
        if len(correct) >= 10:
            res["paired"] = paired_study(subset, correct, res, seed=args.seed)
        if len(correct) < len(subset):
            print(f"# partial: per-image results for {len(correct)} of {len(subset)} genomes (rerun to continue)")
    if not args.smoke:
        all_rows = read_datasets([args.dataset])
        (out / "reference.json").write_text(json.dumps(reference(res, all_rows)) + "\n")
    text = write_table(res, out / "table.md")
    slim = {k: v for k, v in res.items() if k not in ("scores", "acc", "keys")}
    if slim["ensemble"]:
        slim["ensemble"] = {k: v for k, v in slim["ensemble"].items() if not k.endswith("_pred")}
    (out / "results.json").write_text(json.dumps(slim, indent=1) + "\n")
    scatter_plots(res, out / "plots")
    print(text)
    if not res["complete"]:
        print(f"# partial: {res['n']} of {len(genomes)} genomes scored (rerun the same command to continue)")
    ens = res["ensemble"]["ridge"]["spearman"] if res["ensemble"] else float("nan")
    print(f"seconds_per_subnet: {res['seconds_per_subnet']:.2f}")
    print(f"noise_ceiling_spearman: {res['noise']['ceiling_spearman']:.3f}")
    if res.get("paired"):
        pq = res["paired"]
        print(f"noise_ceiling_paired: {pq['ceiling_spearman']:.3f} [{pq['ceiling_spearman_ci'][0]:.3f}, "
              f"{pq['ceiling_spearman_ci'][1]:.3f}] reliability {pq['reliability']:.3f} ridge_on_subset "
              f"{pq.get('ridge_spearman', float('nan')):.3f} ({pq['n_genomes']} genomes)")
    print(f"vote_spearman: {res['ensemble']['vote']['spearman'] if res['ensemble'] else float('nan'):.3f}")
    print(f"best_proxy: {res['best']} {res['table'][res['best']]['spearman']:.3f}")
    print(f"ensemble_spearman: {ens:.3f}")
    print(f"macs_spearman: {res['table']['macs']['spearman']:.3f}")
    return 0


# ---------------------------------------------------------------------- confirmation on new genomes
CONFIRM_PARTS = ("accuracy", "proxies", "report")


def confirm_genomes(study_keys: set, n_plan: int, extra: int, n: int) -> list[tuple[int, dict]]:
    """(plan index, genome) of the ``n`` plan genomes after the study's (the dataset's ``n_plan``
    and the ``extra`` ones the study measured), skipping any the study already holds: genomes
    no study figure has seen, fixed before any of them is measured."""
    plan = plan_genomes(n_plan + extra + n + len(study_keys))
    out = []
    for i in range(n_plan + extra, len(plan)):
        if subnet_key(plan[i]) not in study_keys:
            out.append((i, plan[i]))
        if len(out) == n:
            break
    return out


def confirm_report(study_rows: list[dict], study_acc: dict, new_rows: list[dict], new_acc: dict,
                   n_boot: int = 1000, seed: int = 0) -> dict:
    """Both ensembles fitted once on every study genome (the study's fixed recipe: vote of the
    best k, ridge with transform and penalty by inner CV), then scored on the new genomes only:
    Spearman and Kendall with bootstrap intervals, top-10% precision; the single proxies on the
    new genomes beside them."""
    from codesign.nn.proxies import score
    study_rows = [r for r in study_rows if r["key"] in study_acc]
    new_rows = [r for r in new_rows if r["key"] in new_acc]
    names = sorted({k for r in study_rows for k in r if k not in ("key", "genome", "seconds", "total_seconds")},
                   key=lambda k: (k in ("params", "macs"), k))

    def matrix(rows):
        S = np.array([[score(k, r.get(k, float("nan"))) for k in names] for r in rows], float)
        return np.nan_to_num(S, nan=0.0, posinf=1e300, neginf=-1e300)
    S_tr, S_te = matrix(study_rows), matrix(new_rows)
    y_tr = np.array([study_acc[r["key"]] for r in study_rows], float)
    y_te = np.array([new_acc[r["key"]] for r in new_rows], float)
    fit = fit_ensembles(S_tr, y_tr, S_te, names, np.random.default_rng(seed), seed + 1)
    out = {"n_study": len(y_tr), "n_new": len(y_te), "names": names,
           "vote_chosen": fit["vote_chosen"], "ridge_chosen": fit["ridge_chosen"],
           "accuracy_std_new": float(y_te.std()), "single": {}}
    for label, pred in (("ridge", fit["ridge"]), ("vote", fit["vote"])):
        out[label] = bootstrap(pred, y_te, n_boot, seed) | {"top10": top_precision(pred, y_te)}
    for j, k in enumerate(names):
        out["single"][k] = bootstrap(S_te[:, j], y_te, n_boot, seed) | {"top10": top_precision(S_te[:, j], y_te)}
    return out


def run_confirm(data, dataset, weights, out, n: int, part: str = "all", extra: int = 20, batch: int = 16,
                ntk_batch: int = 8, minutes: float | None = None, boot: int = 1000, seed: int = 0) -> int:
    """``benchmarks/proxies.py --confirm N``: a fresh test of the study's ensembles on ``n`` new
    plan genomes. ``part``: ``accuracy`` measures them (8 bits, the study's protocol, into
    OUT/confirm_accuracy.jsonl), ``proxies`` scores them (OUT/confirm_scores.jsonl), ``report``
    fits the ensembles on the study's genomes and scores them on the new ones
    (OUT/confirm.json, OUT/confirm.md); ``all`` does the three. The first two are resumable and
    independent, so they can run side by side (one core each)."""
    import sys
    from codesign.jsonio import read_jsonl
    from codesign.nn.proxies import genome_proxies
    from codesign.predictors.accuracy import read_datasets
    out = Path(out)
    if not (out / "scores.jsonl").is_file():
        print(f"{out / 'scores.jsonl'}: no study scores (run the study first)", file=sys.stderr)
        return 2
    if not Path(data).exists():
        print(f"no data set at {data}", file=sys.stderr)
        return 2
    deadline = time.time() + 60 * minutes if minutes else None
    rows = [r for r in read_datasets([dataset]) if r.get("bits") == 8]
    acc = {subnet_key(r["genome"]): r["top1"] for r in rows}
    if (out / "extra_accuracy.jsonl").is_file():
        acc.update({subnet_key(r["genome"]): r["top1"] for r in read_jsonl(out / "extra_accuracy.jsonl")})
    study = {r["key"]: r for r in read_jsonl(out / "scores.jsonl")}
    n_plan = max((r.get("plan_index", -1) for r in rows), default=-1) + 1
    plan = confirm_genomes(set(study) | set(acc), n_plan, extra, n)
    genomes = [g for _, g in plan]
    from codesign.artifacts import predictor_split
    from codesign.nn.supernet import load_supernet
    net = load_supernet(weights)
    calib, hold = predictor_split(data, 5000, 2000, 2500, seed=0)
    if part in ("accuracy", "all"):
        done = measure_extra(genomes, out / "confirm_accuracy.jsonl", net, calib, hold, [i for i, _ in plan], deadline)
        print(f"# confirm: {sum(subnet_key(g) in done for g in genomes)} of {n} new genomes measured")
    if part in ("proxies", "all"):
        pick = np.random.default_rng(seed).choice(len(hold.labels), batch, replace=False)
        images, labels = hold.images[pick], hold.labels[pick]
        done = score_genomes(genomes, out / "confirm_scores.jsonl",
                             lambda g: genome_proxies(g, images, labels, seed=seed, supernet=net, ntk_batch=ntk_batch),
                             deadline=deadline)
        print(f"# confirm: {sum(subnet_key(g) in done for g in genomes)} of {n} new genomes scored")
    if part not in ("report", "all"):
        return 0
    keys = {subnet_key(g) for g in genomes}
    new_acc = {subnet_key(r["genome"]): r["top1"] for r in read_jsonl(out / "confirm_accuracy.jsonl")
               if subnet_key(r["genome"]) in keys} if (out / "confirm_accuracy.jsonl").is_file() else {}
    new_rows = [r for r in read_jsonl(out / "confirm_scores.jsonl") if r["key"] in keys] \
        if (out / "confirm_scores.jsonl").is_file() else []
    both = [r for r in new_rows if r["key"] in new_acc]
    if len(both) < 10:
        print(f"# confirm: only {len(both)} new genomes both measured and scored (need 10)", file=sys.stderr)
        return 1
    res = confirm_report(list(study.values()), acc, both, new_acc, n_boot=boot, seed=seed)
    res["planned"] = n
    (out / "confirm.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"{res['n_new']} new genomes (plan indices {plan[0][0]}-{plan[-1][0]}, none in the study), measured 8-bit "
             f"top-1 on the study's 2,500 validation images (spread {res['accuracy_std_new']:.2f} points std); "
             f"ensembles fitted once on the study's {res['n_study']} genomes (vote of {', '.join(res['vote_chosen'])}; "
             f"ridge on {res['ridge_chosen']['transform']}, penalty {res['ridge_chosen']['alpha']:g})", "",
             "| scored on the new genomes | Spearman | 95% CI | Kendall | top-10% precision |", "|---|---:|---|---:|---:|"]
    table = [("ensemble: ridge (fitted on the study)", res["ridge"]), ("ensemble: vote (fitted on the study)", res["vote"])]
    table += [(k, res["single"][k]) for k in sorted(res["single"], key=lambda k: -res["single"][k]["spearman"])[:6]]
    if "macs" not in [k for k, _ in table]:
        table.append(("macs", res["single"]["macs"]))
    for k, t in table:
        lines.append(f"| {k} | {t['spearman']:.3f} | [{t['spearman_ci'][0]:.3f}, {t['spearman_ci'][1]:.3f}] | "
                     f"{t['kendall']:.3f} | {t['top10']:.2f} |")
    text = "\n".join(lines) + "\n"
    (out / "confirm.md").write_text(text)
    print(text)
    if res["n_new"] < n:
        print(f"# partial: {res['n_new']} of {n} new genomes (rerun to continue)")
    r = res["ridge"]
    print(f"confirm_genomes: {res['n_new']}")
    print(f"confirm_vote_spearman: {res['vote']['spearman']:.3f}")
    print(f"confirm_macs_spearman: {res['single']['macs']['spearman']:.3f}")
    print(f"confirm_ensemble_spearman: {r['spearman']:.3f} [{r['spearman_ci'][0]:.3f}, {r['spearman_ci'][1]:.3f}]")
    return 0
