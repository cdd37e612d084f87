"""Supernet training with progressive shrinking (Cai et al., Once-for-All, ICLR 2020), on the CPU
(or a GPU when present): the full network first, then elastic kernel, depth and expand in turn,
each with knowledge distillation from the full network; the input resolution is sampled per
batch throughout. An optional last ``sandwich`` phase (Yu et al., BigNAS, ECCV 2020) trains, in
every step, the largest subnet on the labels and the smallest plus ``sandwich_random`` random
subnets on the largest one's detached outputs (in-place distillation), so both ends of the space
keep improving together. ``init_from`` warm-starts from an earlier run's weights (e.g. its teacher.pt, to
lengthen the full phase; with no full phase those weights are the teacher). Seeded; checkpointed
atomically after every epoch; ``resume=True`` continues a killed run from its last checkpoint and
ends in the same state as an uninterrupted run."""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from accelerators.errors import SpecError

from codesign.space.genome import DEFAULT_SPACE
from codesign.nn.supernet import Supernet
from codesign.nn.transforms import augment, normalize



@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: dict = field(default_factory=lambda: {"full": 15, "kernel": 5, "depth": 5, "expand": 8})
    batch_size: int = 128
    lr: float = 0.1
    elastic_lr: float = 0.03
    weight_decay: float = 4e-5
    kd_weight: float = 1.0
    holdout: int = 5000
    seed: int = 0
    threads: int = 0                  # 0: torch's default
    max_batches: int | None = None    # per epoch (tests / smoke runs)
    eval_images: int = 2000           # held-out (validation) images for the per-epoch log
    init_from: str | None = None      # warm start: a supernet state_dict (e.g. an earlier run's teacher.pt)
    sandwich_random: int = 1          # sandwich phase: random subnets per step besides the largest/smallest


PHASES = ("full", "kernel", "depth", "expand", "sandwich")


def phase_sampler(phase: str, step: int):
    """Genome restrictions of a progressive-shrinking phase (OFA: depth 4->3->2, expand 6->4->3
    are opened in two steps; here the second half of a phase opens the smallest option)."""
    s = DEFAULT_SPACE
    big_k, big_e, big_d = max(s.kernels), max(s.expands), max(s.depths)
    if phase == "full":
        return dict(kernels=[big_k], expands=[big_e], depths=[big_d])
    if phase == "kernel":
        return dict(expands=[big_e], depths=[big_d])
    if phase == "depth":
        return dict(expands=[big_e], depths=list(s.depths)[1:] if step == 0 else None)
    return dict(expands=list(s.expands)[1:] if step == 0 else None)




@torch.no_grad()
def accuracy(model, genome, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        x = normalize(torch.from_numpy(images[i:i + batch])).contiguous(memory_format=torch.channels_last)
        out = model(x, genome) if genome is not None else model(x)
        correct += int((out.argmax(1) == torch.from_numpy(labels[i:i + batch])).sum())
    return 100.0 * correct / len(labels)


def subnet_accuracy(model, genome, calib: np.ndarray, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 of a subnet extracted from ``model`` (a copy) with its BN statistics recalibrated."""
    from codesign.nn.measure import measure_many
    model.eval()
    return measure_many(model, genome, [32], calib, images, labels)[32]


def _soft_ce(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    return torch.sum(-soft * F.log_softmax(logits, 1), 1).mean()


def _sandwich_step(model, x, y, rng: np.random.Generator, cfg: TrainConfig) -> float:
    """One sandwich-rule step: gradients of the largest subnet on the labels, then of the smallest
    and ``cfg.sandwich_random`` random subnets distilled from the largest one's (detached) output,
    accumulated; the caller steps the optimizer. Returns the summed loss."""
    s = DEFAULT_SPACE
    for p in model.parameters():
        p.grad = None
    logits = model(x, s.max_genome())
    loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    loss.backward()
    total = float(loss.detach())
    soft = F.softmax(logits.detach(), 1)
    for genome in [s.min_genome()] + [s.sample(rng) for _ in range(cfg.sandwich_random)]:
        loss = cfg.kd_weight * _soft_ce(model(x, genome), soft)
        loss.backward()
        total += float(loss.detach())
    return total


def _save_atomic(obj, path: Path):
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_supernet(cfg: TrainConfig, resume: bool = False, progress: bool = True, log=print,
                   stop_after_epochs: int | None = None) -> Path | None:
    """Train (or continue) the supernet; returns the final weights' path, or None when
    ``stop_after_epochs`` epochs were run in this call and training is not finished (the run
    continues from its checkpoint with ``resume=True``)."""
    from codesign.nn.data import holdout_split, load_split
    out = Path(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt_path = out / "checkpoint.pt"
    train_all = load_split(cfg.data, "train")          # the data set is checked before anything is written
    if len(train_all) <= cfg.holdout:
        raise SpecError("data", f"the train split has {len(train_all):,} images; training needs more than the "
                        f"{cfg.holdout:,} held out", str(cfg.data))
    train, hold = holdout_split(train_all, cfg.holdout, seed=cfg.seed)
    # the per-epoch log: BN recalibrated on training images, top-1 on the held-out training
    # images (the validation split; the test split is never looked at while training)
    log_rng = np.random.default_rng(cfg.seed)
    eval_idx = log_rng.choice(len(hold), min(cfg.eval_images, len(hold)), replace=False)
    calib_idx = np.sort(log_rng.choice(len(train), min(2000, len(train)), replace=False))

    torch.manual_seed(cfg.seed)
    model = Supernet(num_classes=len(train.classes)).to(memory_format=torch.channels_last)
    if cfg.init_from:
        try:
            model.load_state_dict(torch.load(cfg.init_from, weights_only=True, map_location="cpu"))
        except Exception as e:                   # pickle / zip / shape errors of all kinds: one line
            first = next((l.strip() for l in str(e).splitlines() if l.strip()), type(e).__name__)
            raise SpecError("init_from", f"not a supernet state_dict ({type(e).__name__}: {first[:120]})",
                            cfg.init_from) from None
    out.mkdir(parents=True, exist_ok=True)
    teacher = None
    state = {"phase": 0, "epoch": 0, "log": [], "seconds": 0.0,
             "config": asdict(cfg), "classes": train.classes}
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = None
    if resume and ckpt_path.exists():
        try:
            ck = torch.load(ckpt_path, weights_only=True, map_location="cpu")
            if not isinstance(ck, dict) or not {"model", "state", "optimizer"} <= set(ck):
                raise ValueError("not a training checkpoint")
        except Exception as e:
            first = next((l.strip() for l in str(e).splitlines() if l.strip()), type(e).__name__)
            raise SpecError("--resume", f"not a readable checkpoint ({type(e).__name__}: {first[:120]})",
                            str(ckpt_path)) from None
        model.load_state_dict(ck["model"])
        if (out / "teacher.pt").exists() and (json.loads(ck["state"])["phase"] > 0 or not cfg.epochs.get("full")):
            teacher = copy.deepcopy(model)
            teacher.load_state_dict(torch.load(out / "teacher.pt", weights_only=True))
            teacher.eval()
        state = json.loads(ck["state"])
        gen.set_state(ck["torch_gen"])
        rng.bit_generator.state = json.loads(ck["numpy_rng"])
        torch.set_rng_state(ck["torch_rng"])
        opt_state = ck["optimizer"]
        log(f"resumed from {ckpt_path}: phase {PHASES[state['phase']]}, epoch {state['epoch']}")
    else:
        opt_state = None

    phases = [p for p in PHASES if cfg.epochs.get(p, 0) > 0]
    if teacher is None and cfg.init_from and "full" not in phases and set(phases) & {"kernel", "depth", "expand"}:
        # elastic phases only, from a trained full network: that network is the distillation teacher
        # (the sandwich phase distils from the largest subnet in place and needs none)
        teacher = copy.deepcopy(model).eval()
        _save_atomic(teacher.state_dict(), out / "teacher.pt")
    ran = 0
    while state["phase"] < len(phases):
        phase = phases[state["phase"]]
        n_epochs = cfg.epochs[phase]
        base_lr = cfg.lr if phase == "full" else cfg.elastic_lr
        params = [p for p in model.parameters()]
        opt = torch.optim.SGD(params, lr=base_lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
            opt_state = None
        if phase == "expand" and state["epoch"] == 0 and not state.get("sorted"):
            model.sort_channels()                        # OFA: sort before shrinking the width
            state["sorted"] = True
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        if cfg.max_batches:
            steps_per_epoch = min(steps_per_epoch, cfg.max_batches)
        while state["epoch"] < n_epochs:
            t0 = time.time()
            model.train()
            perm = torch.randperm(len(train), generator=gen).numpy()
            total_steps = n_epochs * steps_per_epoch
            it = range(steps_per_epoch)
            if progress:
                from tqdm import tqdm
                it = tqdm(it, desc=f"{phase} {state['epoch'] + 1}/{n_epochs}", unit="batch", leave=False)
            loss_sum = 0.0
            half = 0 if state["epoch"] < n_epochs // 2 else 1
            for b in it:
                step = state["epoch"] * steps_per_epoch + b
                lr = 0.5 * base_lr * (1 + math.cos(math.pi * step / total_steps))
                for g in opt.param_groups:
                    g["lr"] = lr
                idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x = normalize(augment(torch.from_numpy(train.images[idx]), gen))
                x = x.contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(train.labels[idx])
                if phase == "sandwich":
                    loss = _sandwich_step(model, x, y, rng, cfg)
                    opt.step()
                    loss_sum += loss
                    continue
                genome = DEFAULT_SPACE.sample(rng, **{k: v for k, v in phase_sampler(phase, half).items() if v})
                logits = model(x, genome)
                loss = F.cross_entropy(logits, y, label_smoothing=0.1)
                if teacher is not None:
                    with torch.no_grad():
                        soft = F.softmax(teacher(x, dict(DEFAULT_SPACE.max_genome(), r=genome["r"])), 1)
                    loss = loss + cfg.kd_weight * _soft_ce(logits, soft)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach())
            state["epoch"] += 1
            # on a copy with BN statistics recalibrated for the subnet (the running statistics of the
            # elastic phases mix every sampled subnet), so the training itself is not touched
            ev_max = subnet_accuracy(model, DEFAULT_SPACE.max_genome(), train.images[calib_idx],
                                     hold.images[eval_idx], hold.labels[eval_idx])
            ev_min = subnet_accuracy(model, DEFAULT_SPACE.min_genome(), train.images[calib_idx],
                                     hold.images[eval_idx], hold.labels[eval_idx])
            state["seconds"] += time.time() - t0
            entry = {"phase": phase, "epoch": state["epoch"], "loss": loss_sum / steps_per_epoch,
                     "val_top1_max_subset": ev_max, "val_top1_min_subset": ev_min, "bn_recalibrated": True,
                     "epoch_seconds": round(time.time() - t0, 1)}
            state["log"].append(entry)
            with open(out / "train_log.jsonl", "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            log(json.dumps(entry))
            done_phase = state["epoch"] >= n_epochs
            if done_phase:
                if phase == "full":
                    teacher = copy.deepcopy(model).eval()
                    _save_atomic(teacher.state_dict(), out / "teacher.pt")   # written once
                state["phase"] += 1
                state["epoch"] = 0
            _save_atomic({"model": model.state_dict(),
                          "optimizer": opt.state_dict() if not done_phase else None,
                          "state": json.dumps(state), "torch_gen": gen.get_state(),
                          "torch_rng": torch.get_rng_state(),
                          "numpy_rng": json.dumps(rng.bit_generator.state)}, ckpt_path)
            ran += 1
            if stop_after_epochs is not None and ran >= stop_after_epochs and state["phase"] < len(phases):
                return None
            if done_phase:
                break
    final = out / "supernet.pt"
    _save_atomic(model.state_dict(), final)
    (out / "train_state.json").write_text(json.dumps(state, indent=1))
    return final
