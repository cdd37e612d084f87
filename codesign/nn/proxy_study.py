"""The zero-shot proxy correlation study (issue #23): per-genome proxy scores into a resumable
JSONL, then per proxy Spearman and Kendall with bootstrap 95% intervals, top-10% precision and
time per subnet; a rank-vote ensemble of the best k (Abdelfattah et al. ICLR 2021) and a ridge
regression on proxy ranks, both fitted only on training genomes (5-fold, genome-level: every
figure is on the held-out fold); and the noise ceiling (the Spearman a perfect proxy reaches
against accuracy measured with binomial noise on ``n_images`` images)."""
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


def ensembles(scores: np.ndarray, acc: np.ndarray, names, folds: int = 5, ks=(2, 3, 4, 5),
              alpha: float = 1.0, seed: int = 0) -> dict:
    """Held-out predictions of the two ensembles, cross-fitted over ``folds`` genome-level folds.
    vote: the k proxies with the best training Spearman, their ranks summed (k chosen by an inner
    split of the training fold). ridge: ridge regression of accuracy on every proxy's rank
    (ranks among the training genomes). Returns their held-out Spearman / Kendall and what the
    folds chose."""
    n = len(acc)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    vote = np.zeros(n)
    ridge = np.zeros(n)
    chosen = []
    for f in range(folds):
        tr, te = fold != f, fold == f
        if tr.sum() < 4 or te.sum() < 1:
            continue
        rtr = np.column_stack([_ranks(scores[tr, j], scores[tr, j]) for j in range(scores.shape[1])])
        rte = np.column_stack([_ranks(scores[tr, j], scores[te, j]) for j in range(scores.shape[1])])
        rho = np.array([_spearman(rtr[:, j], acc[tr]) for j in range(scores.shape[1])])
        order = np.argsort(-rho)
        # k by an inner half split of the training genomes
        itr = rng.permutation(int(tr.sum()))
        a, b = itr[: len(itr) // 2], itr[len(itr) // 2:]
        best_k, best = ks[0], -2.0
        for k in ks:
            rho_a = np.array([_spearman(rtr[a, j], acc[tr][a]) for j in range(scores.shape[1])])
            top = np.argsort(-rho_a)[:k]
            s = _spearman(rtr[b][:, top].sum(1), acc[tr][b])
            if s > best:
                best_k, best = k, s
        top = order[:best_k]
        chosen.append([names[j] for j in top])
        vote[te] = rte[:, top].sum(1)
        X = np.column_stack([rtr, np.ones(len(rtr))])
        reg = alpha * np.eye(X.shape[1])
        reg[-1, -1] = 0
        w = np.linalg.solve(X.T @ X + reg, X.T @ acc[tr])
        ridge[te] = np.column_stack([rte, np.ones(len(rte))]) @ w
    return {"vote": {"spearman": _spearman(vote, acc), "kendall": _kendall(vote, acc),
                     "top10": top_precision(vote, acc), "chosen": chosen},
            "ridge": {"spearman": _spearman(ridge, acc), "kendall": _kendall(ridge, acc),
                      "top10": top_precision(ridge, acc)},
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
    smaller than this: the ceiling is pessimistic (a model can beat it; per-image results, which
    the dataset does not store, would give the paired noise). Calibration-draw noise, on the
    other hand, is not modelled and comes on top."""
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
            "scores": S.tolist(), "acc": y.tolist()}


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
        lines.append(f"| ensemble: ridge on ranks (held-out, 5-fold) | {e['ridge']['spearman']:.3f} | | "
                     f"{e['ridge']['kendall']:.3f} | | {e['ridge']['top10']:.2f} | |")
    nz = res["noise"]
    lines += ["", f"Noise ceiling: accuracy spread across genomes {nz['spread_std_points']:.2f} points (std), "
              f"binomial measurement noise on {nz['n_images']} images {nz['noise_std_points']:.2f} points; "
              f"a perfect proxy reaches Spearman {nz['ceiling_spearman']:.3f} "
              f"[{nz['ceiling_spearman_ci'][0]:.3f}, {nz['ceiling_spearman_ci'][1]:.3f}] against the measurement "
              "if the noise were independent across genomes; it is not (the same images for every genome), "
              "so this ceiling is pessimistic (codesign.nn.proxy_study.noise_ceiling)."]
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


def run_study(data, dataset, weights, out, batch: int = 16, ntk_batch: int = 8, extra: int = 20,
              minutes: float | None = None, boot: int = 1000, seed: int = 0, smoke: bool = False) -> int:
    """The whole study (``benchmarks/proxies.py``, ``codesign proxies --study``): measure what is
    missing, score every genome (resumable), analyse, write OUT/table.md, OUT/results.json,
    OUT/plots/; prints the table and ends with best_proxy / ensemble_spearman / macs_spearman."""
    import sys
    from types import SimpleNamespace
    from codesign.nn.proxies import genome_proxies
    from codesign.predictors.accuracy import read_datasets
    from codesign.space.genome import DEFAULT_SPACE
    args = SimpleNamespace(data=data, dataset=dataset, weights=weights, out=out, batch=batch, ntk_batch=ntk_batch,
                           extra=extra, minutes=minutes, boot=boot, seed=seed, smoke=smoke)
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
    if not args.smoke:
        all_rows = read_datasets([args.dataset])
        (out / "reference.json").write_text(json.dumps(reference(res, all_rows)) + "\n")
    text = write_table(res, out / "table.md")
    slim = {k: v for k, v in res.items() if k not in ("scores", "acc")}
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
    print(f"vote_spearman: {res['ensemble']['vote']['spearman'] if res['ensemble'] else float('nan'):.3f}")
    print(f"best_proxy: {res['best']} {res['table'][res['best']]['spearman']:.3f}")
    print(f"ensemble_spearman: {ens:.3f}")
    print(f"macs_spearman: {res['table']['macs']['spearman']:.3f}")
    return 0
