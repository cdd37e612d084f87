"""Measured accuracy of a subnet from the shared weights, at a bit-width, and the resumable job
that measures many (genome, bits) pairs for the accuracy predictor.

Measurement: extract the subnet, recalibrate its BatchNorm statistics on held-out training
images, fake-quantize weights and activations to ``bits`` (activation ranges calibrated on the
same held-out images), re-estimate the BatchNorm statistics on the quantized subnet (``bn``), then
top-1 on the evaluation images.

Why the second BN pass: quantization noise shifts the mean and variance of every layer's output,
and at 4 bits statistics taken from the float subnet no longer fit. Which calibration images were
drawn then decides whether a subnet keeps 75% or falls to 45% (measured on the shipped supernet;
README). Statistics re-estimated on the quantized subnet itself correct the shift (BN
re-estimation, Nagel et al., "Overcoming oscillations in quantization-aware training", ICML 2022;
the data-driven form of Banner et al.'s mean and variance bias correction, NeurIPS 2019), and a
deployment folds them into the per-channel weight scales and biases exactly, since weights are
quantized per output channel and BN follows each convolution."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from codesign.jsonio import read_jsonl
from codesign.space.genome import DEFAULT_SPACE, subnet_key
from codesign.nn.quant import DEFAULT_CLIP, finish_calibration, quantize_model
from codesign.nn.quant_ranges import BN_MODES, DEFAULT_BN
from codesign.nn.supernet import Supernet, load_supernet, resize  # noqa: F401  (load_supernet: also here)
from codesign.nn.transforms import augment, normalize

BITS = (4, 6, 8, 16)
ACT_CALIB_BATCHES = 4     # calibration batches (of ``batch`` images) that set the activation ranges


DRAW_SEED_STRIDE = 100_000     # draw k of plan genome i measures with seed + i + k * this (plans are smaller)


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, batches) -> torch.nn.Module:
    """Reset every BatchNorm's statistics and re-estimate them as the plain average over
    ``batches`` (input tensors) run through ``model`` in training mode; returns it in eval mode.
    Fake-quantized layers stay quantized while it runs, so a quantized model gets the statistics
    of its own quantized activations."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None                     # cumulative average over the batches
    model.train()
    for x in batches:
        model(x)
    return model.eval()


def measure_many(net: Supernet, genome: dict, bits_list, calib: np.ndarray, images: np.ndarray,
                 labels: np.ndarray, calib_batches: int = 8, batch: int = 250, seed: int = 0,
                 device: str = "cpu", eval_batch: int | None = None, clip: str = DEFAULT_CLIP,
                 bn: str = DEFAULT_BN) -> dict:
    """{bits: top-1 (%)} of ``genome`` on ``images`` at every bit-width of ``bits_list``: the
    share of correct images of ``correct_many`` (same arguments, same protocol)."""
    per_image = correct_many(net, genome, bits_list, calib, images, labels, calib_batches, batch, seed,
                             device, eval_batch, clip, bn)
    return {b: 100.0 * int(c.sum()) / len(labels) for b, c in per_image.items()}


@torch.no_grad()
def correct_many(net: Supernet, genome: dict, bits_list, calib: np.ndarray, images: np.ndarray,
                 labels: np.ndarray, calib_batches: int = 8, batch: int = 250, seed: int = 0,
                 device: str = "cpu", eval_batch: int | None = None, clip: str = DEFAULT_CLIP,
                 bn: str = DEFAULT_BN) -> dict:
    """{bits: boolean vector, image i correct} of ``genome`` on ``images`` at every bit-width
    of ``bits_list`` (what ``measure_many`` averages; the per-image results give the paired
    measurement noise, ``codesign.nn.proxy_study.paired_noise_ceiling``): BN
    statistics recalibrated once on ``calib`` (OFA uses 2,000 training images), then per bit-width
    fake quantization with activation ranges calibrated on the same images and, with
    ``bn="quantized"`` (the default), the BN statistics re-estimated on the quantized subnet from
    the same images (module docstring).

    ``batch`` is the calibration batch (it sets the statistics); ``eval_batch`` (default
    ``batch``) only how many evaluation images go through at once. ``device`` runs the subnet
    there (the random choices stay on the CPU, so a device changes only rounding). ``clip`` is the
    range calibration of ``codesign.nn.quant`` (minmax or mse)."""
    if bn not in BN_MODES:
        raise ValueError(f"unknown bn {bn!r} (one of {', '.join(BN_MODES)})")
    g = DEFAULT_SPACE.validate(genome)
    sub = net.subnet(g).to(device)
    rng = np.random.default_rng(seed)
    calib_idx = [rng.choice(len(calib), min(batch, len(calib)), replace=False) for _ in range(calib_batches)]
    eval_batch = eval_batch or batch

    def x_of(arr):
        x = torch.from_numpy(arr).to(device)
        return resize(normalize(x), g["r"]).contiguous(memory_format=torch.channels_last)

    def bn_batches():
        # the images as training saw them (random crop with zero padding, flips; OFA recalibrates
        # with its training transforms too): statistics of clean images cost the largest subnet
        # ~5 points here, the network being trained on the padded ones. The same draw every time.
        gen = torch.Generator().manual_seed(seed)
        for idx in calib_idx:
            x = augment(torch.from_numpy(calib[idx]), gen).to(device)
            yield resize(normalize(x), g["r"]).contiguous(memory_format=torch.channels_last)

    recalibrate_bn(sub, bn_batches())
    out = {}
    for bits in bits_list:
        model = sub
        if bits < 32:
            model = quantize_model(sub, bits, clip).to(device).eval()
            for idx in calib_idx[:ACT_CALIB_BATCHES]:
                model(x_of(calib[idx]))
            finish_calibration(model)
            if bn == "quantized":
                recalibrate_bn(model, bn_batches())
        correct = np.zeros(len(labels), bool)
        for i in range(0, len(labels), eval_batch):
            pred = model(x_of(images[i:i + eval_batch])).argmax(1).cpu()
            correct[i:i + eval_batch] = (pred == torch.from_numpy(labels[i:i + eval_batch])).numpy()
        out[int(bits)] = correct
    return out


def measure(net: Supernet, genome: dict, bits: int, calib: np.ndarray, images: np.ndarray,
            labels: np.ndarray, calib_batches: int = 8, batch: int = 250, seed: int = 0,
            clip: str = DEFAULT_CLIP, bn: str = DEFAULT_BN) -> float:
    """Top-1 (%) of ``genome`` at ``bits`` on ``images``; BN and activation ranges from ``calib``."""
    return measure_many(net, genome, [bits], calib, images, labels, calib_batches, batch, seed,
                        clip=clip, bn=bn)[int(bits)]


def write_dataset_meta(out_path, weights, data, holdout: int, eval_images: int, calib_images: int,
                       seed: int, clip: str = DEFAULT_CLIP, bits=BITS, draws: int = 1,
                       bn: str = DEFAULT_BN) -> Path:
    """``OUT.json`` beside the JSONL: how its rows were measured (enough to re-measure any row)."""
    import hashlib
    meta = {"weights_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(), "data": str(data),
            "holdout": holdout, "eval_images": eval_images, "calib_images": calib_images, "seed": seed,
            "bits": [int(b) for b in bits], "draws": int(draws), "clip": clip, "bn": bn, "split": "held-out training images (codesign.artifacts.predictor_split)",
            "protocol": "per genome: BN recalibrated on 8 x 250 augmented calibration images; per bit-width "
                        "weights per-channel and activations per-tensor fake-quantized, ranges from 4 x 250 "
                        "calibration images (range calibration: clip, see codesign.nn.quant); with bn quantized "
                        "the BN statistics then re-estimated on the quantized subnet from the same 8 batches; "
                        "top-1 on the evaluation images; measure seed = seed + the row's plan_index (+ k * DRAW_SEED_STRIDE for "
                        "draw k when draws > 1: top1 is then the mean of the draws)"}
    p = Path(out_path).with_suffix(".json")
    p.write_text(json.dumps(meta, indent=1) + "\n")
    return p


def accuracy_dataset(net: Supernet, calib, eval_images, eval_labels, out_path, n: int, seed: int = 0,
                     progress: bool = True, log=print, shard: tuple[int, int] = (0, 1), device: str = "cpu",
                     eval_batch: int | None = None, deadline: float | None = None,
                     clip: str = DEFAULT_CLIP, bits=BITS, draws: int = 1, bn: str = DEFAULT_BN,
                     holdout: int | None = None) -> list[dict]:
    """Measure ``n`` (genome, bits) pairs into a JSONL file: random genomes (seeded), each at every
    bit-width of ``bits`` (one BN recalibration per genome and draw), one line per measurement as it finishes; a
    re-run continues where the file ends (kill -9 safe: a torn last line is dropped, a genome cut
    short is finished with the same calibration). Each row carries its genome's ``plan_index``
    (the measurement seed is ``seed + plan_index``).

    ``shard=(i, k)`` measures only the genomes whose index is ``i`` modulo ``k`` (k processes or
    machines share one plan, each into its own file; concatenate the files afterwards: the rows are
    the ones one process would write). ``deadline`` (a ``time.time()``) stops cleanly between
    genomes.

    ``bits`` restricts the bit-widths (the genomes stay those of the full plan: ``n`` counts
    (genome, bit-width) pairs). ``draws=K`` measures each pair K times with independent
    calibration draws (seeds ``seed + plan_index + k * DRAW_SEED_STRIDE``; draw 0 is the single
    measurement) and records their mean as ``top1`` and all of them as ``draws``: for bit-widths
    whose result depends on the calibration draw (4 bits, README).

    Each row names its measurement protocol (``protocol``: ``predictor`` or ``other``,
    :mod:`codesign.predictors.accuracy.protocols`) when ``holdout`` (the validation images the
    evaluation images were drawn from) is given."""
    bits = tuple(int(b) for b in bits)
    if not bits or any(b not in BITS for b in bits) or len(set(bits)) != len(bits):
        raise ValueError(f"bits {bits}: need distinct bit-widths out of {BITS}")
    if draws < 1:
        raise ValueError(f"draws {draws}: need at least 1")
    out_path = Path(out_path)
    rows = read_jsonl(out_path, cut_last="repair") if out_path.exists() else []
    rng = np.random.default_rng(seed)
    plan = []                                     # (genome, bits, genome index): every genome at every bit-width
    seen = set()
    while len(plan) < n:                          # the plan depends on the seed only
        g = DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng))
        if subnet_key(g) in seen:
            continue
        seen.add(subnet_key(g))
        plan += [(g, b, len(seen) - 1) for b in bits]
    plan = plan[:n]
    i_shard, k_shard = shard
    if not (k_shard >= 1 and 0 <= i_shard < k_shard):
        raise ValueError(f"shard {i_shard}/{k_shard}: need 0 <= i < k")
    plan = [p for p in plan if p[2] % k_shard == i_shard]
    n = len(plan)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(initial=len(rows), total=n, desc="measuring subnets", unit="subnet")
    i = len(rows)
    with open(out_path, "a") as fh:
        while i < n:
            if deadline is not None and time.time() > deadline:
                break
            j = i
            while j < n and plan[j][2] == plan[i][2]:    # the rest of this genome's bit-widths
                j += 1
            g, gi = plan[i][0], plan[i][2]
            t = time.time()
            measured = [measure_many(net, g, [b for _, b, _ in plan[i:j]], calib, eval_images, eval_labels,
                                     seed=seed + gi + k * DRAW_SEED_STRIDE, device=device, eval_batch=eval_batch,
                                     clip=clip, bn=bn) for k in range(draws)]
            secs = round((time.time() - t) / (j - i), 2)
            for _, b, _ in plan[i:j]:
                vals = [m[int(b)] for m in measured]
                row = {"genome": g, "bits": int(b), "top1": vals[0] if draws == 1 else round(float(np.mean(vals)), 4),
                       "seconds": secs, "plan_index": int(gi)}
                if holdout is not None:
                    from codesign.predictors.accuracy.protocols import measurement_protocol
                    row["protocol"] = measurement_protocol(len(eval_labels), holdout, bn, b, clip)
                if draws > 1:
                    row["draws"] = vals
                fh.write(json.dumps(row) + "\n")
                rows.append(row)
            fh.flush()
            if bar is not None:
                bar.update(j - i)
            i = j
    if bar is not None:
        bar.close()
    return rows
