"""Zero-shot proxy correlation study (issue #23): every proxy of ``codesign.nn.proxies``, on a
freshly initialized subnet (``init:``) and on the trained supernet's subnet (``trained:``),
against measured 8-bit top-1 on the validation split (2,500 held-out training images).

    python3 benchmarks/proxies.py [--data ../shared/data/cifar10] [--out experiments/proxies]
    python3 benchmarks/proxies.py --smoke          # a few genomes, synthetic data if none

Per-genome scores are appended to OUT/scores.jsonl (a rerun continues); accuracies of genomes
beyond the shipped dataset (the extreme subnets, ``--extra``) are measured with the shipped
protocol into OUT/extra_accuracy.jsonl (resumable); ``--paired N`` of the study's genomes (drawn
with the seed) are re-measured with per-image results into OUT/per_image.jsonl (resumable) for the
paired noise ceiling. Writes OUT/table.md, OUT/results.json and OUT/plots/*.png; the last lines are
``noise_ceiling_spearman:``, ``noise_ceiling_paired:``, ``vote_spearman:``, then ``best_proxy:``,
``ensemble_spearman:``, ``macs_spearman:``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common  # noqa: F401  (one pinned core, the repository on sys.path)


REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10"))
    ap.add_argument("--accuracy-data", default=str(REPO / "codesign" / "weights" / "accuracy_data.jsonl"),
                    help="measured subnets (codesign accuracy-data JSONL)")
    ap.add_argument("--dataset", dest="accuracy_data", help=argparse.SUPPRESS)   # before issue #21
    ap.add_argument("--weights", default=str(REPO / "codesign" / "weights" / "supernet.pt"))
    ap.add_argument("--out", default=str(REPO / "experiments" / "proxies"))
    ap.add_argument("--batch", type=int, default=16, help="shared batch of validation images")
    ap.add_argument("--ntk-batch", type=int, default=8)
    ap.add_argument("--extra", type=int, default=20, help="plan genomes beyond the dataset's to measure")
    ap.add_argument("--minutes", type=float, default=None, help="stop cleanly after this long (rerun continues)")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paired", type=int, default=80,
                    help="study genomes (seeded draw) re-measured with per-image results for the paired noise ceiling")
    ap.add_argument("--smoke", action="store_true", help="a few small genomes, synthetic data if none")
    ap.add_argument("--confirm", type=int, default=0, metavar="N",
                    help="instead of the study: test its ensembles, fitted on the study's genomes, on N new plan genomes")
    ap.add_argument("--confirm-part", choices=("all", "accuracy", "proxies", "report"), default="all",
                    help="--confirm: measure, score, report or all (the first two resumable, one core each side by side)")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    if args.confirm:
        from codesign.nn.proxy_study import run_confirm
        return run_confirm(args.data, args.accuracy_data, args.weights, args.out, args.confirm, args.confirm_part,
                           extra=args.extra, batch=args.batch, ntk_batch=args.ntk_batch, minutes=args.minutes,
                           boot=args.boot, seed=args.seed)
    from codesign.nn.proxy_study import run_study
    return run_study(args.data, args.accuracy_data, args.weights, args.out, batch=args.batch, ntk_batch=args.ntk_batch,
                     extra=args.extra, minutes=args.minutes, boot=args.boot, seed=args.seed, smoke=args.smoke,
                     paired=args.paired)


if __name__ == "__main__":
    sys.exit(main())
