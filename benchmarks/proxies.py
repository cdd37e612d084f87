"""Zero-shot proxy correlation study (issue #23): every proxy of ``codesign.nn.proxies``, on a
freshly initialized subnet (``init:``) and on the trained supernet's subnet (``trained:``),
against measured 8-bit top-1 on the validation split (2,500 held-out training images).

    python3 benchmarks/proxies.py [--data ../shared/data/cifar10] [--out experiments/proxies]
    python3 benchmarks/proxies.py --smoke          # a few genomes, synthetic data if none

Per-genome scores are appended to OUT/scores.jsonl (a rerun continues); accuracies of genomes
beyond the shipped dataset (the extreme subnets, ``--extra``) are measured with the shipped
protocol into OUT/extra_accuracy.jsonl (resumable). Writes OUT/table.md, OUT/results.json and
OUT/plots/*.png; the last lines are ``best_proxy:``, ``ensemble_spearman:``, ``macs_spearman:``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (one pinned core, the repository on sys.path)

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def plan_genomes(n: int, seed: int = 0) -> list:
    """The first ``n`` genomes of ``accuracy_dataset``'s plan (seed 0: the shipped dataset's)."""
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10"))
    ap.add_argument("--dataset", default=str(REPO / "codesign" / "weights" / "accuracy_data.jsonl"))
    ap.add_argument("--weights", default=str(REPO / "codesign" / "weights" / "supernet.pt"))
    ap.add_argument("--out", default=str(REPO / "experiments" / "proxies"))
    ap.add_argument("--batch", type=int, default=16, help="shared batch of validation images")
    ap.add_argument("--ntk-batch", type=int, default=8)
    ap.add_argument("--extra", type=int, default=20, help="plan genomes beyond the dataset's to measure")
    ap.add_argument("--minutes", type=float, default=None, help="stop cleanly after this long (rerun continues)")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a few small genomes, synthetic data if none")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from codesign.nn.proxies import genome_proxies
    from codesign.nn.proxy_study import analyse, scatter_plots, score_genomes, write_table
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
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
        from codesign.predictors.accuracy import read_datasets
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


if __name__ == "__main__":
    sys.exit(main())
