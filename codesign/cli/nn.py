"""``codesign train-supernet``, ``accuracy``, ``accuracy-data``, ``train-predictor``, ``proxies``
and ``model-card``: the supernet, its measured and predicted accuracy (see :mod:`codesign.nn`,
:mod:`codesign.predictors.accuracy`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError
from codesign.artifacts import WEIGHTS_DIR
from codesign.cli.runner import add_renamed
from codesign.nn.proxy_study import CONFIRM_PARTS
from codesign.nn.quant_ranges import BN_MODES, CLIPS, DEFAULT_BN, DEFAULT_CLIP
from codesign.space.genome import named_genome

_SEED_HELP = "random seed"
_JSON_HELP = "print one JSON object instead of text"
_QUIET_HELP = "no progress bar"
_CLIP_HELP = "quantization range calibration: minmax (full range) or mse (least squared error)"
_BN_HELP = ("BN statistics of a quantized subnet: re-estimated on it (quantized) or those of "
            "the float subnet (float; data measured before 2026-12-01)")


def _quant_options(p) -> None:
    p.add_argument("--clip", choices=CLIPS, default=DEFAULT_CLIP,
                   help=_CLIP_HELP)
    p.add_argument("--bn", choices=BN_MODES, default=DEFAULT_BN,
                   help=_BN_HELP)


def add_nn_parsers(sub) -> None:
    """``train-supernet``, ``accuracy``, ``accuracy-data``, ``train-predictor`` and ``proxies``."""
    tr = sub.add_parser("train-supernet", help="train the Once-for-All supernet (progressive shrinking)")
    tr.add_argument("--data", required=True, help="ImageFolder dir/zips (train, test) or cifar-10-batches-py")
    tr.add_argument("--out", metavar="DIR", help="run directory (checkpoint.pt, train_log.jsonl, supernet.pt); "
                    "required unless --resume DIR")
    tr.add_argument("--epochs", default="full=15,kernel=5,depth=5,expand=8", help="epochs per phase")
    tr.add_argument("--batch-size", type=int, default=128, help="training images per step")
    tr.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    tr.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    tr.add_argument("--resume", metavar="DIR", nargs="?", const="",
                    help="continue the run in DIR from DIR/checkpoint.pt (the other options as when it started); "
                    "a bare --resume continues the run in --out")
    tr.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the full phase (cosine)")
    tr.add_argument("--elastic-lr", type=float, default=0.03, help="peak learning rate of the elastic phases")
    tr.add_argument("--init-from", metavar="FILE",
                    help="warm start from a supernet state_dict, e.g. an earlier run's teacher.pt")
    tr.add_argument("--sandwich-random", type=int, default=1,
                    help="sandwich phase (BigNAS): random subnets per step besides the largest and smallest")
    tr.add_argument("--max-batches", type=int, default=None, help="batches per epoch (smoke runs)")
    tr.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    tr.set_defaults(func=cmd_train_supernet)
    a = sub.add_parser("accuracy", help="top-1 of one subnet: measured (--data) or predicted")
    a.add_argument("--genome", required=True, help="JSON genome, or max / min")
    a.add_argument("--bits", type=int, default=8, help="bit-width of weights and activations (4, 6, 8 or 16)")
    a.add_argument("--data", help="data set root (train/test); measures on the validation split (the held-out "
                   "training images) unless --split test")
    a.add_argument("--split", choices=("validation", "test"), default="validation",
                   help="validation for anything a decision rests on; test only for a final report")
    a.add_argument("--weights", help="supernet state_dict (default: the shipped one)")
    a.add_argument("--predictor", help="predictor .npz (default: the shipped one)")
    a.add_argument("--json", action="store_true", help=_JSON_HELP)
    _quant_options(a)
    a.set_defaults(func=cmd_accuracy)
    ad = sub.add_parser("accuracy-data", help="measure random subnets for the predictor (resumable)")
    ad.add_argument("--data", required=True, help="data set root (train/test, as train-supernet --data)")
    ad.add_argument("--weights", help="supernet state_dict (default: the shipped one)")
    ad.add_argument("--out", required=True, help="JSONL file; re-running continues it")
    ad.add_argument("--measurements", type=int, default=4000,
                    help="count of (genome, bit-width) measurements; every genome is measured at each of --bits")
    add_renamed(ad, "--n", "--measurements")
    ad.add_argument("--holdout", type=int, default=5000,
                    help="count of training images the supernet training held out (the validation split; "
                    "train-supernet holds out 5000): measured only on those")
    ad.add_argument("--eval-images", type=int, default=None,
                    help="measure on a class-balanced subset of that many held-out images (default: all)")
    ad.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    ad.add_argument("--shard", default="0/1", help="I/K: measure every K-th genome of the plan, from the I-th "
                    "(K processes or machines, one file each; concatenate them afterwards)")
    ad.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ad.add_argument("--eval-batch", type=int, default=None, help="evaluation batch (speed only)")
    ad.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    ad.add_argument("--bits", default="4,6,8,16", help="bit-widths to measure (the genomes stay the full "
                    "plan's; --measurements counts genome x bit-width pairs)")
    ad.add_argument("--draws", type=int, default=1, help="independent calibration draws per measurement "
                    "(top1 = their mean; e.g. --bits 4 --draws 3, where 4-bit results depend on the draw)")
    _quant_options(ad)
    ad.set_defaults(func=cmd_accuracy_data)
    tp = sub.add_parser("train-predictor", help="fit the accuracy predictor on measured subnets")
    tp.add_argument("--accuracy-data", required=True, nargs="+", metavar="FILE",
                    help="measured subnets: codesign accuracy-data JSONL file(s); a later file's row for the same "
                    "genome and bit-width replaces an earlier file's")
    add_renamed(tp, "--dataset", "--accuracy-data")
    tp.add_argument("--extra-data", nargs="+", metavar="FILE",
                    help="further measured rows (codesign add-measured, extreme subnets), same format: always in the "
                    "fitting part, never in the held-out genomes the figures are of")
    tp.add_argument("--out", required=True, help="predictor .npz file")
    tp.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    tp.add_argument("--holdout-fraction", type=float, default=0.2,
                    help="fraction of the genomes held out for the report (0 < F < 1)")
    add_renamed(tp, "--holdout", "--holdout-fraction")
    tp.add_argument("--kind", default="kernel", help="kernel (kernel ridge), ridge (linear) or mlp (ensemble)")
    tp.add_argument("--no-summary", action="store_true", help="one-hot code only (no log-MACs / size features)")
    tp.add_argument("--hidden", type=int, default=128, help="mlp: hidden units")
    tp.add_argument("--epochs", type=int, default=400, help="mlp: epochs")
    tp.add_argument("--members", type=int, default=5, help="mlp: ensemble size (mean of the members)")
    tp.add_argument("--json", action="store_true", help=_JSON_HELP)
    tp.set_defaults(func=cmd_train_predictor)
    px = sub.add_parser("proxies", help="zero-shot proxies' correlation with measured accuracy")
    px.add_argument("--data", help="the data set root (required unless --study --smoke)")
    px.add_argument("--accuracy-data", nargs="+", metavar="FILE",
                    help="measured subnets: codesign accuracy-data JSONL file(s) (--study: default the shipped "
                    "codesign/weights/accuracy_data.jsonl)")
    add_renamed(px, "--dataset", "--accuracy-data")
    px.add_argument("--study", action="store_true", help="the full study of issue #23 (every proxy, fresh and "
                    "trained weights, bootstrap intervals, ensembles, noise ceiling; = benchmarks/proxies.py)")
    px.add_argument("--out", default="experiments/proxies", help="--study: where scores, table and plots go")
    px.add_argument("--extra", type=int, default=20, help="--study: plan genomes beyond the dataset's to measure")
    px.add_argument("--minutes", type=float, help="--study: stop cleanly after this long (a rerun continues)")
    px.add_argument("--paired", type=int, default=80, help="--study: study genomes (seeded draw) re-measured with "
                    "per-image results for the paired noise ceiling (0: none)")
    px.add_argument("--confirm", type=int, default=0, metavar="N", help="--study: instead of the study, test its "
                    "ensembles (fitted on the study's genomes) on N new plan genomes (= benchmarks/proxies.py --confirm)")
    px.add_argument("--confirm-part", choices=("all",) + CONFIRM_PARTS, default="all",
                    help="--confirm: measure, score, report or all (the first two resumable, side by side)")
    px.add_argument("--weights", help="--study: supernet weights (default: the shipped ones)")
    px.add_argument("--smoke", action="store_true", help="--study: a few small genomes, synthetic data")
    px.add_argument("--bits", type=int, default=16, help="correlate with the accuracy measured at this bit-width")
    px.add_argument("--subnets", type=int, default=200, help="count of measured subnets to score (the first ones "
                    "at --bits)")
    add_renamed(px, "--n", "--subnets")
    px.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    px.add_argument("--json", action="store_true", help=_JSON_HELP)
    px.set_defaults(func=cmd_proxies)


def add_model_card_parser(sub) -> None:
    mc = sub.add_parser("model-card", help="measure a trained supernet and write its model card")
    mc.add_argument("--run", required=True, help="the train-supernet run directory (train_state.json)")
    mc.add_argument("--data", required=True, help="data set root (train/test)")
    mc.add_argument("--weights", help="supernet state_dict (default: RUN/supernet.pt)")
    mc.add_argument("--out", required=True, help="Markdown file (a .json twin is written beside it)")
    mc.add_argument("--samples", type=int, default=8, help="count of random subnets besides the smallest and largest")
    mc.add_argument("--test-images", type=int, default=None, help="count of test images, the first ones (default: all)")
    mc.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    mc.add_argument("--quiet", action="store_true", help=_QUIET_HELP)
    _quant_options(mc)
    mc.set_defaults(func=cmd_model_card)


def cmd_train_supernet(args) -> int:
    from codesign.nn.train import PHASES, TrainConfig, train_supernet
    epochs = {}
    for part in args.epochs.split(","):
        try:
            k, v = part.split("=")
            epochs[k.strip()] = int(v)
        except ValueError:
            raise SpecError("--epochs", f"expected phase=N pairs like full=15,kernel=5, got {part!r}") from None
        if k.strip() not in PHASES or int(v) < 0:
            raise SpecError("--epochs", f"unknown phase {k!r} or negative epochs (phases: {', '.join(PHASES)})")
    if not Path(args.data).exists():
        raise SpecError("--data", "no such file or directory", args.data)
    out = args.resume or args.out             # --resume DIR, or a bare --resume (""): continue in --out
    if not out:
        raise SpecError("--out", "required: the run directory (or --resume DIR to continue one)")
    if args.resume and args.out and Path(args.resume).resolve() != Path(args.out).resolve():
        raise SpecError("--resume", f"names another run directory than --out {args.out}", args.resume)
    cfg = TrainConfig(data=args.data, out=out, epochs={**TrainConfig.__dataclass_fields__["epochs"].default_factory(), **epochs},
                      batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                      max_batches=args.max_batches, lr=args.lr, elastic_lr=args.elastic_lr,
                      init_from=args.init_from, sandwich_random=args.sandwich_random)
    if args.sandwich_random < 0:
        raise SpecError("--sandwich-random", f"must be >= 0, got {args.sandwich_random}")
    if args.init_from and not Path(args.init_from).is_file():
        raise SpecError("--init-from", "no such file", args.init_from)
    path = train_supernet(cfg, resume=args.resume is not None, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def _eval_data(data: str, holdout: int = 5000, seed: int = 0):
    from codesign.artifacts import eval_split
    return eval_split(data, holdout, seed)


def _weights(path) -> Path:
    from codesign.artifacts import supernet_path
    return supernet_path(path)


def cmd_accuracy(args) -> int:
    from codesign.predictors.accuracy import BITS
    genome = named_genome(args.genome, "--genome")
    if args.bits not in BITS:
        raise SpecError("--bits", f"{args.bits} is not one of {list(BITS)}")
    if args.data:
        from codesign.nn.measure import measure
        from codesign.nn.supernet import load_supernet
        from codesign.artifacts import measure_split
        net = load_supernet(_weights(args.weights))
        calib, ev = measure_split(args.data, args.split)
        top1 = measure(net, genome, args.bits, calib, ev.images, ev.labels, clip=args.clip, bn=args.bn)
        source = f"measured on the {args.split} split"
    else:
        from codesign.predictors.accuracy import Predictor
        pred = Predictor.load(args.predictor or WEIGHTS_DIR / "predictor.npz")
        top1, source = float(pred.predict([genome], [args.bits])[0]), "predicted"
    d = {"genome": genome, "bits": args.bits, "top1": round(top1, 3), "source": source}
    print(json.dumps(d) if args.json else f"top-1 {top1:.2f}% ({source}, {args.bits}-bit)")
    return 0


def cmd_accuracy_data(args) -> int:
    bits = _bits_list(args.bits)
    if args.draws < 1:
        raise SpecError("--draws", "needs at least 1", str(args.draws))
    meta = Path(args.out).with_suffix(".json")
    if meta.is_file() and Path(args.out).is_file() and Path(args.out).stat().st_size:
        was = json.loads(meta.read_text())
        for flag, key, now, default in (("--clip", "clip", args.clip, "minmax"), ("--bn", "bn", args.bn, "float"),
                                        ("--bits", "bits", list(bits), [4, 6, 8, 16]),
                                        ("--draws", "draws", args.draws, 1)):
            if was.get(key, default) != now:
                shown = ",".join(map(str, was.get(key, default))) if key == "bits" else was.get(key, default)
                raise SpecError(flag, f"{args.out} was measured with {flag} {shown}; continue it with that "
                                      "or write another file")
    from codesign.nn.measure import accuracy_dataset
    from codesign.nn.supernet import load_supernet
    net = load_supernet(_weights(args.weights))
    from codesign.artifacts import predictor_split
    # measured on the held-out training images; BN recalibrated on 2,000 other training images
    shard = _shard(args.shard)
    device = _device(args.device)
    calib, hold = predictor_split(args.data, holdout=args.holdout, eval_images=args.eval_images)
    from codesign.nn.measure import write_dataset_meta
    write_dataset_meta(args.out, weights=_weights(args.weights), data=args.data, holdout=args.holdout,
                       eval_images=len(hold.labels), calib_images=len(calib), seed=args.seed, clip=args.clip,
                       bits=bits, draws=args.draws, bn=args.bn)
    rows = accuracy_dataset(net, calib, hold.images, hold.labels, args.out, n=args.measurements, seed=args.seed,
                            progress=not args.quiet, shard=shard, device=device, eval_batch=args.eval_batch,
                            clip=args.clip, bits=bits, draws=args.draws, bn=args.bn, holdout=args.holdout)
    print(f"{len(rows)} measured subnets in {args.out}")
    return 0


def _bits_list(text: str) -> tuple:
    try:
        bits = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SpecError("--bits", "expected a comma-separated list out of 4,6,8,16", text) from None
    from codesign.predictors.accuracy import BITS        # torch-free; the same tuple codesign.nn.measure measures
    if not bits or any(b not in BITS for b in bits) or len(set(bits)) != len(bits):
        raise SpecError("--bits", "expected distinct bit-widths out of 4,6,8,16", text)
    return bits


def _shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(v) for v in text.split("/"))
    except ValueError:
        raise SpecError("--shard", "expected I/K, e.g. 0/4", text) from None
    if not (k >= 1 and 0 <= i < k):
        raise SpecError("--shard", "expected 0 <= I < K", text)
    return i, k


def _device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("--device", "CUDA is not available on this machine", name)
    if name != "cpu" and not name.startswith("cuda"):
        raise SpecError("--device", "expected cpu, cuda, cuda:N or auto", name)
    return name


def cmd_train_predictor(args) -> int:
    from codesign.predictors.accuracy import read_datasets, train_predictor
    from codesign.predictors.accuracy.encoder import BITS
    extra = read_datasets(args.extra_data, field="--extra-data", bits=BITS) if args.extra_data else None
    pred, m = train_predictor(read_datasets(args.accuracy_data, bits=BITS), seed=args.seed, kind=args.kind, hidden=args.hidden,
                              epochs=args.epochs, members=args.members, use_summary=not args.no_summary,
                              holdout=args.holdout_fraction, extra=extra)
    pred.meta.update(_provenance(args))
    pred.save(args.out)
    ex = pred.meta.get("extra")
    note = "" if ex is None else (f" (+{ex['rows']} extra rows of {ex['genomes']} genomes fitted"
                                  + (f", {ex['left_out_heldout_genome']} of held-out genomes left out" if
                                     ex["left_out_heldout_genome"] else "") + ")")
    print(json.dumps({"heldout": m, "out": args.out, "extra": ex}) if args.json else
          f"held-out ({m['n']} subnets): Kendall tau {m['kendall_tau']:.3f}, Spearman {m['spearman']:.3f}, "
          f"RMSE {m['rmse']:.2f} points{note}; wrote {args.out}")
    if not args.json:
        for b, mb in m.get("per_bits", {}).items():
            print(f"  {b:>2}-bit ({mb['n']} subnets): Kendall tau {mb['kendall_tau']:.3f}, "
                  f"Spearman {mb['spearman']:.3f}, RMSE {mb['rmse']:.2f}")
    return 0


def _provenance(args) -> dict:
    """Where a predictor's rows came from: every data file with its rows per measurement protocol,
    the command (without defaults) and the date."""
    import time
    from codesign.predictors.accuracy import read_datasets
    from codesign.predictors.accuracy.protocols import count_protocols
    sources = []
    for role, paths in (("accuracy-data", args.accuracy_data), ("extra-data", args.extra_data or [])):
        for path in paths:
            rows = read_datasets(path, field="--" + role)
            sources.append({"file": str(path), "role": role, "rows": len(rows), "protocols": count_protocols(rows)})
    cmd = "codesign train-predictor --accuracy-data " + " ".join(map(str, args.accuracy_data))
    if args.extra_data:
        cmd += " --extra-data " + " ".join(map(str, args.extra_data))
    for flag, v, default in (("--seed", args.seed, 0), ("--kind", args.kind, "kernel"),
                             ("--holdout-fraction", args.holdout_fraction, 0.2)):
        if v != default:
            cmd += f" {flag} {v}"
    return {"sources": sources, "command": cmd + f" --out {args.out}",
            "date": time.strftime("%Y-%m-%d", time.gmtime())}


def cmd_proxies(args) -> int:
    from codesign.predictors.accuracy import read_datasets
    from codesign.nn.proxies import correlations
    if args.study or args.confirm:
        import torch
        from codesign.artifacts import WEIGHTS_DIR
        from codesign.nn.proxy_study import run_study
        torch.set_num_threads(1)
        if not args.smoke and not args.data:
            raise SpecError("--data", "required with --study (or use --smoke)")
        weights = args.weights or str(WEIGHTS_DIR / "supernet.pt")
        accuracy_data = (args.accuracy_data or [str(WEIGHTS_DIR / "accuracy_data.jsonl")])[0]
        if args.confirm:
            from codesign.nn.proxy_study import run_confirm
            from accelerators.limits import check_int
            check_int(args.confirm, "--confirm", lo=10)
            return run_confirm(args.data, accuracy_data, weights, args.out, args.confirm, args.confirm_part,
                               extra=args.extra, minutes=args.minutes, seed=args.seed)
        return run_study(args.data or "", (args.accuracy_data or [str(WEIGHTS_DIR / "accuracy_data.jsonl")])[0],
                         args.weights or str(WEIGHTS_DIR / "supernet.pt"), args.out, extra=args.extra,
                         minutes=args.minutes, seed=args.seed, smoke=args.smoke, paired=args.paired)
    if not args.data or not args.accuracy_data:
        raise SpecError("--data" if not args.data else "--accuracy-data", "required (without --study)")
    rows = [r for r in read_datasets(args.accuracy_data) if r.get("bits", 16) == args.bits][: args.subnets]
    if len(rows) < 3:
        raise SpecError("--accuracy-data", f"needs at least 3 measured subnets at {args.bits} bits",
                        args.accuracy_data[0])
    from codesign.artifacts import measure_split
    _, val = measure_split(args.data, "validation")      # the held-out training images, never the test split
    if len(val) < 64:
        raise SpecError("data", f"the validation split has {len(val)} images; the proxies need at least 64",
                        args.data)
    images = val.images[np.random.default_rng(args.seed).choice(len(val), 64, replace=False)]
    res = correlations(rows, images, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{'proxy':<10}{'Spearman':>10}{'Kendall':>10}   ({res['n']} subnets, {args.bits}-bit accuracy)")
        for k in ("naswot", "synflow", "params", "macs"):
            print(f"{k:<10}{res[k]['spearman']:>10.3f}{res[k]['kendall']:>10.3f}")
    return 0


def cmd_model_card(args) -> int:
    from codesign.nn.model_card import measure_card, training_summary, write_card
    summary = training_summary(args.run)
    weights = _weights(args.weights or Path(args.run) / "supernet.pt")
    rows = measure_card(weights, args.data, samples=args.samples, seed=args.seed, test_images=args.test_images,
                        progress=not args.quiet, clip=args.clip, bn=args.bn)
    n = args.test_images or len(_eval_data(args.data)[1].labels)
    write_card(rows, summary, args.out, weights=weights, data=args.data, test_images=n, clip=args.clip, bn=args.bn)
    print(Path(args.out).read_text())
    return 0
