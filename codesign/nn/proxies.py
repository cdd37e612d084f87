"""Zero-shot accuracy proxies of a subnet, computed on a freshly initialized copy (no training):
NASWOT (Mellor et al., ICML 2021: log-determinant of the kernel of binary activation codes) and
SynFlow (Tanaka et al., NeurIPS 2020: the synaptic-flow saliency summed over parameters), plus
the baselines every proxy paper compares with: #params and MACs."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from codesign.space.genome import DEFAULT_SPACE
from codesign.space.layers import genome_macs
from codesign.nn.supernet import Supernet, resize
from codesign.nn.transforms import normalize


def fresh_subnet(genome: dict, seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return Supernet(num_classes).subnet(DEFAULT_SPACE.validate(genome))


@torch.no_grad()
def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """log|det K|, K[i, j] = number of rectifying units on which images i and j agree."""
    codes = []

    def hook(_, __, out):
        codes.append((out.flatten(1) > 0).float())
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.Hardswish))]
    model.train()                                  # batch statistics, as in the paper
    model(x)
    for h in hs:
        h.remove()
    c = torch.cat(codes, 1).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k)[1])


def synflow(model: nn.Module, resolution: int) -> float:
    """sum |theta * dR/dtheta| with R the output sum of the all-ones input through |theta|."""
    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    model.zero_grad()
    out = model(torch.ones(1, 3, resolution, resolution, dtype=torch.float64))
    out.sum().backward()
    score = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name in signs:
                p.mul_(signs[name])
    return score


def proxies(genome: dict, images: np.ndarray, seed: int = 0) -> dict:
    g = DEFAULT_SPACE.validate(genome)
    model = fresh_subnet(g, seed)
    x = resize(normalize(torch.from_numpy(images)), g["r"])
    return {"naswot": naswot(model, x), "synflow": float(np.log(synflow(fresh_subnet(g, seed), g["r"]) + 1e-30)),
            "params": int(sum(p.numel() for p in model.parameters())), "macs": genome_macs(g)}


def correlations(rows: list[dict], images: np.ndarray, seed: int = 0, progress: bool = False) -> dict:
    """Spearman and Kendall correlation of each proxy with measured accuracy on the same subnets."""
    from scipy.stats import kendalltau, spearmanr
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc="proxies", unit="subnet")
    vals = [proxies(r["genome"], images, seed) for r in it]
    acc = [r["top1"] for r in rows]
    out = {}
    for name in ("naswot", "synflow", "params", "macs"):
        v = [p[name] for p in vals]
        out[name] = {"spearman": float(spearmanr(v, acc)[0]), "kendall": float(kendalltau(v, acc)[0])}
    out["n"] = len(rows)
    return out
