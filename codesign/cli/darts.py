"""``codesign darts``: differentiable hardware-aware search over the shipped supernet (issue #22;
:mod:`codesign.darts`). Resumable; ``--lambda`` with a comma list sweeps and traces an
accuracy-latency front."""
from __future__ import annotations

import json
import math
from pathlib import Path

from accelerators.errors import SpecError

# what a resumed run takes from its own config.json
_DEFAULTS_NOTE = "a default run (2 epochs x 40 steps of batch 32) finishes in well under 30 minutes on 2 CPU cores"


def add_darts_parser(sub) -> None:
    d = sub.add_parser("darts", help="differentiable hardware-aware search (DARTS / ProxylessNAS / FBNet) of the "
                       "supernet's choices on one accelerator; resumable; --lambda A,B,C sweeps a front",
                       description="Relaxes every block slot's (kernel x expand) choice, every stage's depth (a "
                       "mixture of exits) and optionally the resolution into categoricals, and optimizes them by "
                       "gradient descent together with the shared weights (weights on the training part, "
                       "architecture on the held-out validation part) against CE + a latency / energy term from a "
                       "look-up table made with the accelerator model. " + _DEFAULTS_NOTE + ".")
    d.add_argument("--hw", default="baseline", help="the accelerator: 'baseline' (the space's baseline design), a "
                   "hardware genome as JSON text, or a .json file holding one")
    d.add_argument("--space", help="joint space YAML whose hardware template and baseline --hw refers to "
                   "(default specs/spaces/default.yaml)")
    d.add_argument("--bits", type=int, default=8, help="bit-width of weights and activations (the accelerator's and "
                   "the measured accuracy's)")
    d.add_argument("--lambda", dest="lam", default="0.1", help="weight of the cost term (proxyless: per ms or uJ; "
                   "fbnet: the exponent beta; target: the penalty weight); a comma list runs one sub-run per value "
                   "(DIR/lambda_L) and writes DIR/front.csv and DIR/front.png")
    d.add_argument("--loss", choices=("proxyless", "fbnet", "target"), default="proxyless",
                   help="proxyless: CE + lambda*E[cost]; fbnet: CE*0.2*log(E[cost]*1000)^lambda; target: "
                   "CE + lambda*max(0, E[cost]/target - 1)")
    d.add_argument("--target", type=float, help="with --loss target: the cost target (ms for latency, uJ for energy)")
    d.add_argument("--metric", choices=("latency_ms", "energy_uj"), default="latency_ms",
                   help="the cost the loss penalizes")
    d.add_argument("--epochs", type=int, default=2, help="search epochs")
    d.add_argument("--steps-per-epoch", type=int, default=40, help="bilevel steps per epoch (one weight step and "
                   "one architecture step each)")
    d.add_argument("--batch", type=int, default=32, help="images per batch (training and validation batches)")
    d.add_argument("--data", help="data set root (train/test, CIFAR-10 ImageFolder zips); required for a new run")
    d.add_argument("--weights", help="supernet state_dict to start from (default: the shipped one)")
    d.add_argument("--out", default="runs/darts", help="run directory")
    d.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its own configuration")
    d.add_argument("--seed", type=int, default=0, help="random seed (batches, augmentation, path draws)")
    d.add_argument("--second-order", action="store_true", help="DARTS' second-order (unrolled) architecture "
                   "gradient instead of the first-order one (about 3x the cost of an architecture step)")
    d.add_argument("--mode", choices=("sample", "gumbel", "soft"), default="sample",
                   help="sample: ProxylessNAS binarized path sampling; gumbel: hard Gumbel-softmax with "
                   "straight-through; soft: classic DARTS mixing of all 9 ops (about 9x slower)")
    d.add_argument("--tau", type=float, default=1.0, help="Gumbel-softmax temperature (--mode gumbel)")
    d.add_argument("--warmup-epochs", type=int, default=0, help="epochs of weight steps only before the "
                   "architecture parameters move")
    d.add_argument("--entropy-reg", type=float, default=0.0, help="subtract X * the mean entropy of the "
                   "categoricals from the architecture loss (X > 0 keeps them open longer, against early collapse)")
    d.add_argument("--resolution", default="32", help="input resolution 24, 28 or 32, or 'search' to relax it too")
    d.add_argument("--w-lr", type=float, default=0.002, help="SGD learning rate of the shared weights")
    d.add_argument("--arch-lr", type=float, default=0.02, help="Adam learning rate of the architecture parameters")
    d.add_argument("--mapper-budget", type=int, default=1500, help="mapper evaluations per layer shape (look-up "
                   "table and the derived genome's exact cost)")
    d.add_argument("--eval-images", type=int, default=2000, help="validation images of the final measurement "
                   "(a class-balanced subset of the 5,000 held-out ones)")
    d.add_argument("--checkpoint-every", type=int, default=10, help="steps between checkpoints")
    d.add_argument("--hw-space", action="store_true", help="differentiable co-search: relax the accelerator's genes "
                   "(PE rows and columns, DRAM bandwidth and type, dataflow, buffer sizes; bits stay --bits) too, "
                   "with a torch MLP surrogate of latency, energy and area distilled from the shipped cost "
                   "predictor; the derived pair is then mapped exactly beside the baseline accelerator (--hw)")
    d.add_argument("--area-weight", type=float, default=10.0, help="with --hw-space: weight of the penalty "
                   "max(0, area / the space's area_mm2 limit - 1)")
    d.add_argument("--onchip-weight", type=float, default=10.0, help="with --hw-space: weight of the penalty "
                   "max(0, on-chip memory / the space's onchip_kib limit - 1) on the accelerator the run would derive "
                   "(exact memory, gradient from a per-gene linearization)")
    d.add_argument("--surrogate-samples", type=int, default=3000, help="with --hw-space: joint genomes the "
                   "surrogate is trained on")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_darts)


def _hw(text: str, space) -> dict:
    if text == "baseline":
        if space.baseline is None:
            raise SpecError("--hw", "the space declares no baseline design")
        return dict(space.baseline)
    p = Path(text)
    src = text
    if not text.lstrip().startswith("{"):
        if not p.is_file():
            raise SpecError("--hw", "neither 'baseline', JSON text nor a file", text[:80])
        src = p.read_text()
    try:
        hw = json.loads(src)
    except json.JSONDecodeError as e:
        raise SpecError("--hw", f"not valid JSON: {e.msg}") from None
    if not isinstance(hw, dict):
        raise SpecError("--hw", "must be a JSON object (a hardware genome)")
    return hw


def _lambdas(text: str) -> list[float]:
    out = []
    for part in str(text).split(","):
        try:
            v = float(part)
        except ValueError:
            raise SpecError("--lambda", f"{part.strip()!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise SpecError("--lambda", f"{part.strip()} must be a finite number >= 0")
        out.append(v)
    if len(set(out)) != len(out):
        raise SpecError("--lambda", "repeats a value")
    return out


def _positive(v, flag, lo=1):
    if v is None or isinstance(v, bool) or v < lo:
        raise SpecError(flag, f"must be at least {lo}", str(v))


def config_from_args(args):
    from codesign.darts.run import DartsConfig
    from codesign.space.joint import load_space
    lams = _lambdas(args.lam)
    for flag, v in (("--epochs", args.epochs), ("--steps-per-epoch", args.steps_per_epoch), ("--batch", args.batch),
                    ("--checkpoint-every", args.checkpoint_every), ("--mapper-budget", args.mapper_budget),
                    ("--eval-images", args.eval_images)):
        _positive(v, flag)
    if args.batch > 4096:
        raise SpecError("--batch", "at most 4096", str(args.batch))
    if not 0 <= args.warmup_epochs <= args.epochs:
        raise SpecError("--warmup-epochs", f"must be between 0 and --epochs ({args.epochs})", str(args.warmup_epochs))
    for flag, v in (("--tau", args.tau), ("--w-lr", args.w_lr), ("--arch-lr", args.arch_lr)):
        if not math.isfinite(v) or v <= 0:
            raise SpecError(flag, "must be a finite number > 0", str(v))
    _positive(args.surrogate_samples, "--surrogate-samples", 20)
    if not math.isfinite(args.area_weight) or args.area_weight < 0:
        raise SpecError("--area-weight", "must be a finite number >= 0", str(args.area_weight))
    if not math.isfinite(args.onchip_weight) or args.onchip_weight < 0:
        raise SpecError("--onchip-weight", "must be a finite number >= 0", str(args.onchip_weight))
    if not math.isfinite(args.entropy_reg):
        raise SpecError("--entropy-reg", "must be finite", str(args.entropy_reg))
    if args.loss == "target":
        if args.target is None or not math.isfinite(args.target) or args.target <= 0:
            raise SpecError("--target", "--loss target needs a positive --target (ms or uJ)")
    elif args.target is not None:
        raise SpecError("--target", "only with --loss target")
    space = load_space(args.space)
    if args.resolution == "search":
        res = None
    else:
        try:
            res = int(args.resolution)
        except ValueError:
            res = -1
        if res not in space.net.resolutions:
            raise SpecError("--resolution", f"{args.resolution!r} is not one of "
                            f"{', '.join(map(str, space.net.resolutions))} or search")
    if args.bits not in space.hw.values("bits"):
        raise SpecError("--bits", f"{args.bits} is not a bit-width of the space ({list(space.hw.values('bits'))})")
    hw = space.hw.validate(dict(_hw(args.hw, space), bits=args.bits), "--hw")
    if not args.data:
        raise SpecError("--data", "required for a new run (the data set root)")
    from codesign.cli.inputs import check_dataset
    check_dataset(args.data, split="validation")
    if args.weights:
        from codesign.artifacts import supernet_path
        supernet_path(args.weights)
    cfg = DartsConfig(data=str(args.data), hw=hw, bits=args.bits, lam=lams[0], loss=args.loss, target=args.target,
                      metric=args.metric, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch=args.batch,
                      seed=args.seed, second_order=args.second_order, mode=args.mode, tau=args.tau,
                      warmup_epochs=args.warmup_epochs, entropy_reg=args.entropy_reg, w_lr=args.w_lr,
                      arch_lr=args.arch_lr, resolution=res, mapper_budget=args.mapper_budget,
                      eval_images=args.eval_images, checkpoint_every=args.checkpoint_every,
                      weights=args.weights, space=args.space, hw_space=args.hw_space,
                      surrogate_samples=args.surrogate_samples, area_weight=args.area_weight,
                      onchip_weight=args.onchip_weight)
    return cfg, lams


def cmd_darts(args) -> int:
    from codesign.darts.run import DartsConfig, run_darts, sweep_lambdas
    if args.resume:
        out = Path(args.resume)
        cfg_path = out / "config.json"
        if (out / "lambda_sweep.json").is_file():
            sweep = json.loads((out / "lambda_sweep.json").read_text())
            cfg = DartsConfig(**sweep["config"])
            results = sweep_lambdas(cfg, sweep["lambdas"], out, resume=True, progress=not args.quiet)
            _print_front(results, out)
            return 0
        if not cfg_path.is_file():
            raise SpecError("--resume", "not a darts run directory (no config.json)", str(out))
        try:
            cfg = DartsConfig(**json.loads(cfg_path.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise SpecError("--resume", f"unreadable config.json ({type(e).__name__})", str(cfg_path)) from None
        res = run_darts(cfg, out, resume=True, progress=not args.quiet)
        _print_result(res, out)
        return 0
    cfg, lams = config_from_args(args)
    out = Path(args.out)
    if out.is_file():
        raise SpecError("--out", "is a file (give a run directory)", str(out))
    if len(lams) > 1:
        out.mkdir(parents=True, exist_ok=True)
        (out / "lambda_sweep.json").write_text(json.dumps({"config": cfg.to_json(), "lambdas": lams}, indent=1) + "\n")
        results = sweep_lambdas(cfg, lams, out, progress=not args.quiet)
        _print_front(results, out)
        return 0
    res = run_darts(cfg, out, progress=not args.quiet)
    _print_result(res, out)
    return 0


def _print_result(res: dict, out: Path) -> None:
    print(f"derived genome: {json.dumps(res['genome'])}")
    print(f"top1_val_pct: {res['top1_val_pct']:.2f} ({res['val_images']} validation images, {res['bits']} bits)")
    print(f"latency_ms: {res['latency_ms']:.4f}  energy_uj: {res['energy_uj']:.2f}  (every layer mapped)")
    if "hw" in res:
        print(f"derived accelerator: {json.dumps(res['hw'])}")
        print(f"edp_vs_baseline: {res['edp_vs_baseline']:.4f} (EDP {res['edp_uj_ms']:.2f} uJ*ms against "
              f"{res['baseline_hw']['edp_uj_ms']:.2f} on the baseline accelerator, same network; area "
              f"{res['area_mm2']:.2f} mm^2)")
    print(f"search {res['search_s']:.0f} s, measure {res['measure_s']:.0f} s; written to {out}/ (genome.json, "
          "result.json, trajectory.jsonl, trajectory.png)")


def _print_front(results, out: Path) -> None:
    print("lambda  top1_val_pct  latency_ms  energy_uj")
    for r in results:
        print(f"{r['lambda']:<7g} {r['top1_val_pct']:>12.2f} {r['latency_ms']:>11.4f} {r['energy_uj']:>10.2f}")
    print(f"front written to {out / 'front.csv'} and {out / 'front.png'}")
