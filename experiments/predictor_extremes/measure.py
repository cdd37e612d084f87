"""Measure the accuracy predictor's hard cases with the predictor's own protocol (issue #20, item 3).

The predictor's training data (``codesign/weights/accuracy_data.json``) is measured with
``codesign.artifacts.predictor_split(data, holdout=5000, eval_images=2500)``: BN recalibrated on
2,000 training images (8 x 250 augmented batches), top-1 on a seeded class-balanced 2,500 of the
5,000 held-out training images (the validation split), ``mse`` ranges; the 4-bit rows with the BN
statistics re-estimated on the quantized subnet (``bn quantized``), the 6/8/16-bit rows with the
float subnet's statistics (``bn float``). This script measures exactly so (``measure_many``, one
call per BN mode per genome), so its rows can be compared with the predictor and added to its data.

Sets (``--set``):

* ``extremes``: the corners of the space (largest, smallest, per-dimension and per-stage extremes;
  ``extreme_genomes()``), every genome at 4, 6, 8 and 16 bits -> ``extremes.jsonl``;
* ``front``: designs co-search fronts actually picked, already measured under ``codesign verify``'s
  protocol (all 5,000 images, ``bn quantized`` at every bit-width, measure seed 0):
  ``experiments/bench_cosearch/2026-12-02/measured.jsonl`` and ``experiments/measured_front/front.csv``;
  each re-measured at its own bit-width -> ``front_measured.jsonl`` (``--limit`` designs, in a
  seeded order interleaving the bit-widths).

Rows are in the predictor-data format (``genome``, ``bits``, ``top1``, plus ``name``, ``seed``,
``bn``, ``seconds``), one line per measurement as it finishes; a rerun skips the (genome, bits)
pairs already in the file (kill-safe: a torn last line is dropped).

    taskset -c 1 python3 experiments/predictor_extremes/measure.py --set extremes --data ../shared/data/cifar10
    taskset -c 1 python3 experiments/predictor_extremes/measure.py --set front --limit 60 --data ../shared/data/cifar10
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BITS = (4, 6, 8, 16)
BN_OF_BITS = {4: "quantized", 6: "float", 8: "float", 16: "float"}   # as codesign/weights/accuracy_data.json
FRONT_SOURCES = (ROOT / "experiments/bench_cosearch/2026-12-02/measured.jsonl",
                 ROOT / "experiments/measured_front/front.csv")
SEED_BASE = {"extremes": 0, "front": 10_000}    # measure seed = base + the genome's index in its plan


def _g(ks, e, d, r):
    """A genome from per-stage kernel / expand lists (or one value for all stages)."""
    ks = ks if isinstance(ks, list) else [ks] * 4
    e = e if isinstance(e, list) else [e] * 4
    d = d if isinstance(d, list) else [d] * 4
    return {"ks": [k for k in ks for _ in range(4)], "e": [x for x in e for _ in range(4)], "d": list(d), "r": r}


def extreme_genomes() -> list[tuple[str, dict]]:
    """(name, genome) of the corners of the space, largest and smallest first. Kernels 3/5/7,
    expands 3/4/6, depths 2/3/4, resolutions 24/28/32 (``codesign.space.genome.DEFAULT_SPACE``)."""
    lo = {"ks": 3, "e": 3, "d": 2, "r": 24}
    hi = {"ks": 7, "e": 6, "d": 4, "r": 32}
    out = [("max", _g(**hi)), ("min", _g(**lo))]
    for dim in ("ks", "e", "d", "r"):                       # one dimension at max, the rest min; and back
        out.append((f"only_{dim}_max", _g(**{**lo, dim: hi[dim]})))
        out.append((f"only_{dim}_min", _g(**{**hi, dim: lo[dim]})))
    for s in range(4):                                      # one stage at max (ks, e, d), the rest min; and back
        one = [i == s for i in range(4)]
        out.append((f"stage{s}_max", _g([7 if o else 3 for o in one], [6 if o else 3 for o in one],
                                        [4 if o else 2 for o in one], 24)))
        out.append((f"stage{s}_min", _g([3 if o else 7 for o in one], [3 if o else 6 for o in one],
                                        [2 if o else 4 for o in one], 32)))
    out += [("max_r28", _g(**{**hi, "r": 28})), ("min_r28", _g(**{**lo, "r": 28})),
            ("mid", _g(5, 4, 3, 28)), ("mid_d4", _g(5, 4, 4, 28)),
            ("ks_e_max", _g(7, 6, 2, 24)), ("d_r_max", _g(3, 3, 4, 32)),
            ("e_d_max", _g(3, 6, 4, 24)), ("ks_d_max", _g(7, 3, 4, 24)),
            ("early_max", _g([7, 7, 3, 3], [6, 6, 3, 3], [4, 4, 2, 2], 28)),
            ("late_max", _g([3, 3, 7, 7], [3, 3, 6, 6], [2, 2, 4, 4], 28)),
            ("max_d3", _g(7, 6, 3, 32)), ("min_d3", _g(3, 3, 3, 24)),
            ("k5_e6_d4_r32", _g(5, 6, 4, 32)), ("k7_e4_d4_r32", _g(7, 4, 4, 32))]
    return out


def front_designs() -> list[tuple[str, dict, int, float, str]]:
    """(name, genome, bits, top1 measured under verify's protocol, source) of the measured front
    designs in the repository, one per distinct (subnet, bits), in a seeded order that interleaves
    the bit-widths (so any prefix covers every bit-width)."""
    import numpy as np
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
    seen, by_bits = {}, {b: [] for b in BITS}
    bench, main = FRONT_SOURCES
    items = []
    if bench.is_file():
        for line in bench.read_text().splitlines():
            r = json.loads(line)
            items.append((r["net"], int(r["bits"]), float(r["top1"]), "bench_cosearch/2026-12-02"))
    if main.is_file():
        with open(main) as fh:
            for r in csv.DictReader(fh):
                g = json.loads(r["genome_json"])
                items.append((g["net"], int(g["hw"]["bits"]), float(r["top1_measured"]), "measured_front"))
    for net, bits, top1, src in items:
        g = DEFAULT_SPACE.canonical(net)
        key = (subnet_key(g), bits)
        if key in seen:
            continue
        seen[key] = True
        by_bits[bits].append((g, bits, top1, src))
    rng = np.random.default_rng(0)
    queues = {b: [v[i] for i in rng.permutation(len(v))] for b, v in by_bits.items()}
    out = []
    while any(queues.values()):
        for b in BITS:
            if queues[b]:
                g, bits, top1, src = queues[b].pop(0)
                out.append((f"front{len(out)}", g, bits, top1, src))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("extremes", "front"), required=True)
    ap.add_argument("--data", required=True, help="data set root, e.g. ../shared/data/cifar10")
    ap.add_argument("--weights", default=str(ROOT / "codesign/weights/supernet.pt"))
    ap.add_argument("--out", help="JSONL (default: extremes.jsonl / front_measured.jsonl beside this script)")
    ap.add_argument("--limit", type=int, default=None, help="measure at most this many genomes of the set")
    ap.add_argument("--only", help="comma-separated names of the set to measure (in that order; each keeps its "
                    "plan index, so its measurement seed, as in a full run)")
    ap.add_argument("--bits", default="4,6,8,16", help="extremes: bit-widths")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=None, help="stop cleanly after this long")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from codesign.artifacts import predictor_split
    from codesign.jsonio import read_jsonl
    from codesign.nn.measure import measure_many
    from codesign.nn.supernet import load_supernet
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
    out = Path(args.out or HERE / ("extremes.jsonl" if args.set == "extremes" else "front_measured.jsonl"))
    done = set()
    if out.exists():
        for r in read_jsonl(out, cut_last="repair"):
            done.add((subnet_key(r["genome"]), int(r["bits"])))
    if args.set == "extremes":
        bits = tuple(int(b) for b in args.bits.split(","))
        plan = [(name, DEFAULT_SPACE.canonical(g), bits, {}) for name, g in extreme_genomes()]
    else:
        plan = [(name, g, (b,), {"top1_verify": t, "source": src}) for name, g, b, t, src in front_designs()]
    plan = [(i, *p) for i, p in enumerate(plan)]
    if args.only:
        by_name = {p[1]: p for p in plan}
        unknown = [n for n in args.only.split(",") if n not in by_name]
        if unknown:
            ap.error(f"--only: not in the set: {', '.join(unknown)}")
        plan = [by_name[n] for n in args.only.split(",")]
    plan = plan[:args.limit]
    deadline = None if args.minutes is None else time.time() + 60 * args.minutes
    net = load_supernet(args.weights)
    calib, hold = predictor_split(args.data, holdout=5000, eval_images=2500, seed=0)
    print(f"{args.set}: {len(plan)} genomes, {len(done)} (genome, bits) already in {out}", flush=True)
    with open(out, "a") as fh:
        for i, name, g, bits, extra in plan:
            todo = [b for b in bits if (subnet_key(g), b) not in done]
            if not todo:
                continue
            if deadline is not None and time.time() > deadline:
                print("time is up; rerun to continue", flush=True)
                break
            seed = SEED_BASE[args.set] + i
            for bn in ("quantized", "float"):
                group = [b for b in todo if BN_OF_BITS[b] == bn]
                if not group:
                    continue
                t = time.time()
                res = measure_many(net, g, group, calib, hold.images, hold.labels, seed=seed, clip="mse", bn=bn)
                secs = round((time.time() - t) / len(group), 2)
                for b in group:
                    row = {"genome": g, "bits": b, "top1": res[b], "name": name, "set": args.set, "seed": seed,
                           "bn": bn, "eval_images": len(hold.labels), "seconds": secs, **extra}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    done.add((subnet_key(g), b))
                    print(f"{name} {b}-bit {res[b]:.2f} ({secs:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
