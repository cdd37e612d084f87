"""The checkpointed, resumable run directory of ``codesign darts``.

DIR/config.json      the configuration (a resumed run keeps it)
DIR/lut.json         the per-op cost table (cached: rebuilt only for another hardware / budget)
DIR/checkpoint.pt    every ``checkpoint_every`` steps: weights, both optimizers, the architecture
                     parameters, the step and every random generator's state (atomic write)
DIR/trajectory.jsonl one row per step: probabilities, E[cost] (on --hw, from the look-up table), losses;
                     with --hw-space also the hardware probabilities and the surrogate's
                     (latency_ms, energy_uj, area_mm2) of the relaxed pair
DIR/trajectory.png   the trajectory plot
DIR/genome.json      the derived (argmax) genome
DIR/result.json      its measured validation top-1 at the bit-width, exact latency / energy
DIR/hw.json, DIR/surrogate.pt   with --hw-space: the derived accelerator, the trained surrogate

A run killed at any point (kill -9) and resumed gives the same result as an uninterrupted one:
the run restarts from the last checkpoint with the same random states, and the trajectory rows
written after it are dropped."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

RESULT_FILES = ("genome.json", "result.json")


@dataclass(frozen=True)
class DartsConfig:
    data: str
    hw: dict                              # hardware genome (bits already set)
    bits: int = 8
    lam: float = 0.1
    loss: str = "proxyless"
    target: float | None = None           # the target loss's cost target (metric units)
    metric: str = "latency_ms"            # latency_ms or energy_uj
    epochs: int = 2
    steps_per_epoch: int = 40
    batch: int = 32
    seed: int = 0
    second_order: bool = False
    mode: str = "sample"
    tau: float = 1.0
    warmup_epochs: int = 0
    entropy_reg: float = 0.0
    w_lr: float = 0.002
    arch_lr: float = 0.02
    resolution: int | None = 32           # None: searched
    mapper_budget: int = 1500
    eval_images: int | None = 2000        # validation images of the final measurement (None: all)
    holdout: int = 5000
    checkpoint_every: int = 10
    weights: str | None = None            # supernet state_dict (None: the shipped one)
    space: str | None = None              # joint space YAML (None: the default)
    threads: int = 1
    hw_space: bool = False                # relax the accelerator's genes too (hwspace.py)
    surrogate_samples: int = 3000         # --hw-space: joint genomes the cost surrogate is trained on
    area_weight: float = 10.0             # --hw-space: weight of the hinge max(0, area / limit - 1)
    onchip_weight: float = 10.0           # --hw-space: weight of the hinge max(0, on-chip KiB / limit - 1)

    def to_json(self) -> dict:
        return asdict(self)


def _space(cfg: DartsConfig):
    from codesign.space.joint import load_space
    return load_space(cfg.space)


def _load_data(cfg: DartsConfig):
    """(training part, validation part, calibration images): the held-out part is the supernet
    training's (``codesign.artifacts.predictor_split``), never the test split."""
    from codesign.nn.data import holdout_split, load_split
    if not Path(cfg.data).exists():
        raise SpecError("--data", "no such file or directory", str(cfg.data))
    train_all = load_split(cfg.data, "train")
    train, hold = holdout_split(train_all, min(cfg.holdout, len(train_all) // 2), seed=0)
    idx = np.random.default_rng(0).choice(len(train), min(2000, len(train)), replace=False)
    return train, hold, train.images[np.sort(idx)]


def measurement_set(cfg: DartsConfig):
    """(calibration images, evaluation ImageSet) of the final measurement: ``cfg.eval_images`` of
    the held-out validation images (a class-balanced subset, fixed by the data set alone), so that
    every run and ``benchmarks/darts.py`` measure on the same images."""
    from codesign.nn.data import holdout_split
    train, hold, calib = _load_data(cfg)
    if cfg.eval_images is not None and cfg.eval_images < len(hold):
        _, hold = holdout_split(hold, max(cfg.eval_images, len(hold.classes)), seed=0)
    return calib, hold


def _atomic_torch_save(obj, path: Path):
    import torch
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _write_json(path: Path, obj):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def _lut(cfg: DartsConfig, out: Path, cache):
    from codesign.darts.lut import load_or_build_lut, lut_key
    space = _space(cfg)
    arch = space.hw.architecture(cfg.hw)
    rs = list(space.net.resolutions) if cfg.resolution is None else [cfg.resolution]
    key = lut_key(cfg.hw, space.hw.template_spec, rs, cfg.mapper_budget)
    return load_or_build_lut(out / "lut.json", arch, key, rs, cfg.mapper_budget, cache), arch, space


def cost_table(lut: dict, metric: str):
    """The table of ``metric`` (latency_ms or energy_uj: the additive costs; EDP is a product of
    two sums, not a sum over ops, so it is not offered)."""
    from codesign.darts.lut import METRICS, CostTable
    if metric not in METRICS:
        raise SpecError("--metric", f"unknown metric {metric!r} (one of {', '.join(METRICS)})")
    return CostTable.of(lut, metric)


def run_darts(cfg: DartsConfig, out, resume: bool = False, progress: bool = True, log=print,
              stop_after_steps: int | None = None) -> dict | None:
    """Run (or resume) the search into ``out``; returns result.json's dict, or None when stopped
    early by ``stop_after_steps`` (a simulated interruption, for tests)."""
    import torch
    from accelerators.network import MappingCache
    from codesign.artifacts import supernet_path
    from codesign.darts.relax import ArchParams, derive_genome, expected_cost, probs_record
    from codesign.darts.search import StepConfig, arch_step, batch, table_cost, weight_params, weight_step
    from codesign.nn.supernet import load_supernet
    from codesign.nn.transforms import augment, normalize

    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    if resume:
        if not cfg_path.is_file():
            raise SpecError("--resume", "no config.json here: not a darts run directory", str(out))
    else:
        if cfg_path.is_file() and json.loads(cfg_path.read_text()) != cfg.to_json():
            raise SpecError("--out", "holds a darts run with another configuration (use --resume DIR or a new --out)",
                            str(out))
        _write_json(cfg_path, cfg.to_json())
    t0 = time.time()
    cache = MappingCache()
    lut, hw_arch, space = _lut(cfg, out, cache)
    table = cost_table(lut, cfg.metric)
    train, hold, calib = _load_data(cfg)

    torch.manual_seed(cfg.seed)
    net = load_supernet(supernet_path(cfg.weights)).train()
    arch = ArchParams(space.net, cfg.resolution)
    w_opt = torch.optim.SGD(weight_params(net), lr=cfg.w_lr, momentum=0.9)
    hw_relax, cost_fn = None, table_cost(arch, table)
    if cfg.hw_space:
        from codesign.darts.hwspace import HwRelax, onchip_of
        hw_relax = HwRelax(space.hw, cfg.bits)
        cost_fn = _surrogate_cost_fn(cfg, out, space, arch, hw_relax, log)
    a_opt = torch.optim.Adam(list(arch.parameters()) + (list(hw_relax.parameters()) if hw_relax else []),
                             lr=cfg.arch_lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)            # augmentation and path draws
    step = 0
    ck_path = out / "checkpoint.pt"
    if ck_path.is_file():
        ck = torch.load(ck_path, weights_only=True, map_location="cpu")   # tensors and plain values only
        net.load_state_dict(ck["net"])
        arch.load_state_dict(ck["arch"])
        if hw_relax is not None:
            hw_relax.load_state_dict(ck["hw_relax"])
        w_opt.load_state_dict(ck["w_opt"])
        a_opt.load_state_dict(ck["a_opt"])
        rng.bit_generator.state = json.loads(ck["np_rng"])
        gen.set_state(ck["torch_gen"])
        torch.set_rng_state(ck["torch_rng"])
        step = ck["step"]
        log(f"resumed at step {step}")
    traj_path = out / "trajectory.jsonl"
    _truncate_trajectory(traj_path, step)
    total = cfg.epochs * cfg.steps_per_epoch
    if step >= total and (out / "result.json").is_file():        # finished: nothing to redo
        return json.loads((out / "result.json").read_text())
    scfg = StepConfig(loss=cfg.loss, lam=cfg.lam, target=cfg.target, mode=cfg.mode, tau=cfg.tau,
                      entropy_reg=cfg.entropy_reg, second_order=cfg.second_order, w_lr=cfg.w_lr)

    def save():
        _atomic_torch_save({"net": net.state_dict(), "arch": arch.state_dict(), "w_opt": w_opt.state_dict(),
                            "a_opt": a_opt.state_dict(), "np_rng": json.dumps(rng.bit_generator.state),
                            "torch_gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
                            "hw_relax": hw_relax.state_dict() if hw_relax is not None else None}, ck_path)

    bar = None
    if progress and step < total:
        from tqdm import tqdm
        bar = tqdm(initial=step, total=total, desc="darts", unit="step")
    with open(traj_path, "a") as fh:
        while step < total:
            if stop_after_steps is not None and step >= stop_after_steps:
                save()
                if bar is not None:
                    bar.close()
                return None
            epoch = step // cfg.steps_per_epoch
            xt, yt = batch(train.images, train.labels, rng, cfg.batch)
            xv, yv = batch(hold.images, hold.labels, rng, cfg.batch)
            xt = normalize(augment(torch.from_numpy(xt), gen))
            yt = torch.from_numpy(yt)
            xv, yv = normalize(torch.from_numpy(xv)), torch.from_numpy(yv)
            row = {"step": step + 1, "epoch": epoch}
            if epoch >= cfg.warmup_epochs:
                row.update(arch_step(net, arch, cost_fn, xt, yt, xv, yv, a_opt, scfg, gen,
                                     hw_relax.parameters() if hw_relax is not None else ()))
            row["ce_train"] = weight_step(net, arch, xt, yt, w_opt, cfg.mode, gen, cfg.tau)
            with torch.no_grad():
                row["expected_cost"] = float(expected_cost(arch, table))
                row["entropy"] = float(arch.entropy())
            row["probs"] = probs_record(arch)
            row["argmax"] = derive_genome(arch)
            if hw_relax is not None:
                with torch.no_grad():
                    row["hw_probs"] = [[round(float(v), 6) for v in p] for p in hw_relax.probs()]
                    row["surrogate"] = [round(float(v), 6) for v in cost_fn(raw=True)]
                row["hw_argmax"] = hw_relax.derive()
                row["onchip_kib"] = round(onchip_of(space.hw, row["hw_argmax"]), 4)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            step += 1
            if bar is not None:
                bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == total:
                save()
    if bar is not None:
        bar.close()
    search_s = time.time() - t0
    return finish(cfg, out, net, arch, lut, hw_arch, cache, search_s, log, hw_relax=hw_relax, space=space)


def _surrogate_cost_fn(cfg: DartsConfig, out: Path, space, arch, hw_relax, log):
    """--hw-space: the surrogate (trained once, kept in DIR/surrogate.pt) and the cost function
    of the relaxed pair: (the metric, area hinge penalty)."""
    import torch
    from codesign.darts.hwspace import Surrogate, surrogate_cost, surrogate_data, train_surrogate
    path = out / "surrogate.pt"
    if path.is_file():
        state = torch.load(path, weights_only=True)
        sur = Surrogate(state["mlp.0.weight"].shape[1])
        sur.load_state_dict(state)
        sur.eval()
    else:
        x, y = surrogate_data(space, arch, hw_relax, cfg.surrogate_samples, seed=cfg.seed)
        sur = train_surrogate(x, y, seed=cfg.seed, log=log)
        _atomic_torch_save(sur.state_dict(), path)
    for p in sur.parameters():
        p.requires_grad_(False)
    limit = dict(space.constraints).get("area_mm2")
    mem_limit = dict(space.constraints).get("onchip_kib")
    k = {"latency_ms": 0, "energy_uj": 1}[cfg.metric]

    def cost_fn(raw: bool = False):
        c = surrogate_cost(sur, arch, hw_relax)
        if raw:
            return c
        pen = cfg.area_weight * torch.relu(c[2] / limit - 1.0) if limit else 0.0
        if mem_limit:          # the on-chip memory of the design the run would derive (exact; hwspace.py)
            pen = pen + cfg.onchip_weight * torch.relu(hw_relax.onchip_kib(space.hw) / mem_limit - 1.0)
        return c[k], pen
    return cost_fn


def _truncate_trajectory(path: Path, step: int) -> None:
    """Keep the rows of steps up to ``step`` (the checkpoint's); a torn last line goes too."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if row.get("step", 0) <= step:
            keep.append(line)
    path.write_text("".join(l + "\n" for l in keep))


def finish(cfg: DartsConfig, out: Path, net, arch, lut, hw_arch, cache, search_s: float, log=print,
           hw_relax=None, space=None) -> dict:
    """The derived genome, its measured validation top-1 (with the run's shared weights) and its
    exact cost (every layer mapped), result.json, genome.json and the trajectory plot."""
    from accelerators.network import network_totals
    from codesign.darts.lut import genome_cost
    from codesign.darts.relax import derive_genome
    from codesign.nn.measure import measure
    from codesign.space.hardware import mapped_metrics
    from codesign.space.layers import genome_layers

    genome = derive_genome(arch)
    _write_json(out / "genome.json", genome)
    t = time.time()
    calib, hold = measurement_set(cfg)
    top1 = measure(net.eval(), genome, cfg.bits, calib, hold.images, hold.labels, seed=cfg.seed)
    measure_s = time.time() - t
    metrics = mapped_metrics(hw_arch, network_totals(genome_layers(genome), hw_arch, "dataflow",
                                                     budget=cfg.mapper_budget, cache=cache))
    result = {"genome": genome, "bits": cfg.bits, "lambda": cfg.lam, "loss": cfg.loss, "mode": cfg.mode,
              "top1_val_pct": top1, "val_images": len(hold), **metrics,
              "lut_latency_ms": genome_cost(lut, genome, "latency_ms"), "lut_energy_uj": genome_cost(lut, genome, "energy_uj"),
              "steps": cfg.epochs * cfg.steps_per_epoch, "search_s": round(search_s, 1), "measure_s": round(measure_s, 1),
              "top1_note": "measured with the run's shared weights on the validation split (held-out training "
                           "images), BN recalibrated, fake-quantized at bits"}
    if hw_relax is not None:                     # --hw-space: the derived accelerator, exactly, against the baseline
        hw = hw_relax.derive()
        _write_json(out / "hw.json", hw)
        arch_d = space.hw.architecture(hw)
        m = mapped_metrics(arch_d, network_totals(genome_layers(genome), arch_d, "dataflow", budget=cfg.mapper_budget,
                                                  cache=cache))
        result["baseline_hw"] = {k: metrics[k] for k in ("latency_ms", "energy_uj", "edp_uj_ms", "area_mm2")}
        result.update({k: m[k] for k in ("latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib",
                                         "utilization")})
        result["hw"] = hw
        result["edp_vs_baseline"] = m["edp_uj_ms"] / metrics["edp_uj_ms"]
        limit = dict(space.constraints).get("area_mm2")
        result["area_limit_mm2"] = limit
        result["within_area_limit"] = None if limit is None else bool(m["area_mm2"] <= limit)
        from codesign.darts.hwspace import within_onchip_limit
        result["onchip_limit_kib"] = dict(space.constraints).get("onchip_kib")
        result["within_onchip_limit"] = within_onchip_limit(space, hw)
        log(f"derived accelerator {json.dumps(hw)}: EDP {m['edp_uj_ms']:.2f} uJ*ms vs the baseline's "
            f"{metrics['edp_uj_ms']:.2f} for the same network (x{result['edp_vs_baseline']:.3f}), area "
            f"{m['area_mm2']:.2f} mm^2, on-chip memory {m['onchip_kib']:.1f} KiB")
    _write_json(out / "result.json", result)
    try:
        plot_trajectory(out / "trajectory.jsonl", out / "trajectory.png", cfg.metric)
    except ImportError:
        pass
    log(f"genome {json.dumps(genome)}")
    log(f"top1 {top1:.2f}% (validation, {len(hold)} images, {cfg.bits} bits); latency {result['latency_ms']:.4f} ms; "
        f"energy {result['energy_uj']:.2f} uJ" + (" (on the derived accelerator)" if hw_relax is not None else ""))
    return result


def read_trajectory(path) -> list[dict]:
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def plot_trajectory(path, png, metric: str = "latency_ms") -> Path:
    """Three panels over the steps: E[cost]; the expected kernel size and expand ratio (mean over
    slots) and expected depth (mean over stages), which shows a drift to the smallest choices;
    the mean entropy of the categoricals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from codesign.darts.lut import op_choices
    from codesign.space.genome import DEFAULT_SPACE as sp
    rows = read_trajectory(path)
    steps = [r["step"] for r in rows]
    ch = op_choices(sp)
    ks = np.array([c[0] for c in ch], float)
    es = np.array([c[1] for c in ch], float)
    ds = np.array(sp.depths, float)
    ek = [float((np.array(r["probs"]["op"]) @ ks).mean()) for r in rows]
    ee = [float((np.array(r["probs"]["op"]) @ es).mean()) for r in rows]
    ed = [float((np.array(r["probs"]["depth"]) @ ds).mean()) for r in rows]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(steps, [r["expected_cost"] for r in rows])
    ax[0].set_ylabel(f"E[{metric}]")
    ax[1].plot(steps, ek, label="E[kernel]")
    ax[1].plot(steps, ee, label="E[expand]")
    ax[1].plot(steps, ed, label="E[depth]")
    ax[1].legend(fontsize=8)
    ax[2].plot(steps, [r["entropy"] for r in rows])
    ax[2].set_ylabel("mean entropy (nats)")
    for a in ax:
        a.set_xlabel("step")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Path(png)


def sweep_lambdas(cfg: DartsConfig, lambdas, out, resume: bool = False, progress: bool = True, log=print) -> list[dict]:
    """One sub-run per lambda (DIR/lambda_<L>), then DIR/front.csv and DIR/front.png: measured
    validation top-1 against exact latency, the accuracy-latency front the sweep traces."""
    from dataclasses import replace
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for lam in lambdas:
        sub = out / f"lambda_{lam:g}"
        log(f"lambda {lam:g}: {sub}")
        results.append(run_darts(replace(cfg, lam=float(lam)), sub, resume=resume and (sub / "config.json").is_file(),
                                 progress=progress, log=log))
    import csv
    with open(out / "front.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lambda", "top1_val_pct", "latency_ms", "energy_uj", "genome"])
        for r in results:
            w.writerow([f"{r['lambda']:g}", f"{r['top1_val_pct']:.2f}", f"{r['latency_ms']:.5f}",
                        f"{r['energy_uj']:.3f}", json.dumps(r["genome"])])
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([r["latency_ms"] for r in results], [r["top1_val_pct"] for r in results], "o-")
        for r in results:
            ax.annotate(f"{r['lambda']:g}", (r["latency_ms"], r["top1_val_pct"]), fontsize=8)
        ax.set_xlabel("latency (ms, mapped)")
        ax.set_ylabel("top-1 (%, validation)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "front.png", dpi=100)
        plt.close(fig)
    except ImportError:
        pass
    return results
