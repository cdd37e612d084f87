"""Measured accuracy of a subnet from the shared weights, at a bit-width, and the resumable job
that measures many (genome, bits) pairs for the accuracy predictor.

Measurement: extract the subnet, recalibrate its BatchNorm statistics on held-out training
images, fake-quantize weights and activations to ``bits`` (activation ranges calibrated on the
same held-out images), then top-1 on the evaluation images."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .genome import DEFAULT_SPACE, genome_key
from .quant import finish_calibration, quantize_model
from .supernet import Supernet, resize
from .train import normalize

BITS = (4, 6, 8, 16)


def load_supernet(path, num_classes: int = 10) -> Supernet:
    net = Supernet(num_classes=num_classes)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


@torch.no_grad()
def measure(net: Supernet, genome: dict, bits: int, calib: np.ndarray, images: np.ndarray,
            labels: np.ndarray, calib_batches: int = 16, batch: int = 250, seed: int = 0) -> float:
    """Top-1 (%) of ``genome`` at ``bits`` on ``images``; BN and activation ranges from ``calib``."""
    g = DEFAULT_SPACE.validate(genome)
    sub = net.subnet(g)
    rng = np.random.default_rng(seed)
    calib_idx = [rng.choice(len(calib), min(batch, len(calib)), replace=False) for _ in range(calib_batches)]

    def x_of(arr):
        return resize(normalize(torch.from_numpy(arr)), g["r"]).contiguous(memory_format=torch.channels_last)

    for m in sub.modules():                     # BN recalibration (cumulative statistics)
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    sub.train()
    for idx in calib_idx:
        sub(x_of(calib[idx]))
    sub.eval()
    model = sub
    if bits < 32:
        model = quantize_model(sub, bits).eval()
        for idx in calib_idx[:4]:
            model(x_of(calib[idx]))
        finish_calibration(model)
    correct = 0
    for i in range(0, len(labels), batch):
        out = model(x_of(images[i:i + batch]))
        correct += int((out.argmax(1) == torch.from_numpy(labels[i:i + batch])).sum())
    return 100.0 * correct / len(labels)


def accuracy_dataset(net: Supernet, calib, eval_images, eval_labels, out_path, n: int, seed: int = 0,
                     progress: bool = True, log=print) -> list[dict]:
    """Measure ``n`` random (genome, bits) pairs into a JSONL file, one line per measurement as it
    finishes; a re-run continues where the file ends (kill -9 safe: a torn last line is dropped)."""
    out_path = Path(out_path)
    rows = []
    if out_path.exists():
        for line in out_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        out_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rng = np.random.default_rng(seed)
    plan = []
    seen = set()
    while len(plan) < n:                          # the plan depends on the seed only
        g = DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng))
        b = int(rng.choice(BITS))
        key = (genome_key(g), b)
        if key not in seen:
            seen.add(key)
            plan.append((g, b))
    it = range(len(rows), n)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, initial=len(rows), total=n, desc="measuring subnets", unit="subnet")
    with open(out_path, "a") as fh:
        for i in it:
            g, b = plan[i]
            t = time.time()
            top1 = measure(net, g, b, calib, eval_images, eval_labels, seed=seed + i)
            row = {"genome": g, "bits": b, "top1": top1, "seconds": round(time.time() - t, 2)}
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            rows.append(row)
    return rows
