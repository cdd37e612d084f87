"""The bilevel search loop: shared weights on the training part, architecture parameters on the
validation part (DARTS), first-order by default, DARTS' second-order (unrolled) approximation as
an option.

Forward passes (``mode``):
* ``sample`` / ``gumbel``: one discrete path per step (``relax.sample_path``); its block outputs
  and its stage exits are multiplied by gates of value 1 whose gradient reaches the logits, so a
  step costs one subnet's forward and backward;
* ``soft``: classic DARTS mixing: every block slot is the probability-weighted sum of its 9
  candidate ops, every stage the weighted sum of its exits (and of the resolutions when they are
  searched): about 9x the cost; for small checks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from codesign.darts.loss import hardware_loss
from codesign.darts.lut import CostTable
from codesign.darts.relax import ArchParams, Path, expected_cost, gates, sample_path
from codesign.nn.supernet import Supernet, resize


def path_forward(net: Supernet, arch: ArchParams, x: torch.Tensor, path: Path) -> torch.Tensor:
    """Logits of the path's subnet, each block output and each stage exit multiplied by its gate
    (value 1, so the values are the subnet's; the gradients reach the logits)."""
    sp = net.space
    og, dg, rg = gates(arch, path)
    x = net._stem(resize(x, path.r))
    for s in range(sp.stages):
        for b in range(sp.depths[path.depth[s]]):
            i = s * sp.max_depth + b
            k, e = arch.choices[path.op[i]]
            x = net.blocks[i](x, k, e) * og[i]
        x = x * dg[s]
    out = net.classifier(net.head(x).mean((2, 3)))
    return out * rg if rg is not None else out


def soft_forward(net: Supernet, x: torch.Tensor, arch: ArchParams) -> torch.Tensor:
    """Classic DARTS: every candidate op of a slot, weighted by its probability; the stage output
    the probability-weighted mixture of its exits; the resolutions mixed at the logits."""
    sp, p = net.space, arch.probs()
    rs = [arch.resolution] if arch.res is None else list(sp.resolutions)
    out = 0
    for r in rs:
        h = net._stem(resize(x, r))
        for s in range(sp.stages):
            mix = 0
            for b in range(sp.max_depth):
                i = s * sp.max_depth + b
                h = sum(p["op"][i, c] * net.blocks[i](h, k, e) for c, (k, e) in enumerate(arch.choices))
                if b + 1 in sp.depths:
                    mix = mix + p["depth"][s, sp.depths.index(b + 1)] * h
            h = mix
        logits = net.classifier(net.head(h).mean((2, 3)))
        out = out + (p["r"][sp.resolutions.index(r)] if arch.res is not None else 1.0) * logits
    return out


@dataclass(frozen=True)
class StepConfig:
    loss: str = "proxyless"
    lam: float = 0.1
    target: float | None = None
    mode: str = "sample"
    tau: float = 1.0
    entropy_reg: float = 0.0
    second_order: bool = False
    w_lr: float = 0.005


def _logits(net, arch, x, mode, path):
    return soft_forward(net, x, arch) if mode == "soft" else path_forward(net, arch, x, path)


def table_cost(arch: ArchParams, table: CostTable):
    """The cost function of a fixed accelerator: (E[cost] from the look-up table, no penalty)."""
    return lambda: (expected_cost(arch, table), 0.0)


def arch_loss(net, arch, cost_fn, x, y, cfg: StepConfig, path) -> tuple[torch.Tensor, dict]:
    """``cost_fn()``: (the differentiable cost, a penalty added as it is, e.g. an area hinge)."""
    ce = F.cross_entropy(_logits(net, arch, x, cfg.mode, path), y)
    cost, penalty = cost_fn()
    loss = hardware_loss(ce, cost, cfg.loss, cfg.lam, cfg.target) + penalty
    if cfg.entropy_reg:
        loss = loss - cfg.entropy_reg * arch.entropy()
    return loss, {"ce_val": float(ce.detach()), "expected_cost": float(cost.detach())}


def weight_params(net):
    return [p for p in net.parameters() if p.requires_grad]


def weight_step(net, arch, x, y, w_opt, mode: str, gen: torch.Generator, tau: float) -> float:
    """One SGD step of the shared weights on a training batch, on a path drawn from the current
    probabilities (soft mode: the mixture)."""
    path = None if mode == "soft" else sample_path(arch, mode, gen, tau)
    w_opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(_logits(net, arch, x, mode, path), y)
    params = weight_params(net)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = g
    w_opt.step()
    return float(loss.detach())


def arch_step(net, arch, cost_fn, xt, yt, xv, yv, a_opt, cfg: StepConfig, gen: torch.Generator,
              extra_params=()) -> dict:
    """One step of the architecture parameters on a validation batch. First-order: the gradient of
    the validation loss at the current weights. Second-order (DARTS eq. 7-8): at the weights after
    one virtual SGD step on the training batch, minus ``w_lr`` times the finite-difference
    Hessian-vector product; the same path is used throughout the step."""
    path = None if cfg.mode == "soft" else sample_path(arch, cfg.mode, gen, cfg.tau)
    a_params = list(arch.parameters()) + list(extra_params)
    a_opt.zero_grad(set_to_none=True)
    if not cfg.second_order:
        loss, info = arch_loss(net, arch, cost_fn, xv, yv, cfg, path)
        grads = torch.autograd.grad(loss, a_params, allow_unused=True)
    else:
        grads, info = _second_order_grads(net, arch, cost_fn, xt, yt, xv, yv, cfg, path, a_params)
    for p, g in zip(a_params, grads):
        p.grad = torch.zeros_like(p) if g is None else g
    a_opt.step()
    info["path"] = None if path is None else path.genome(arch)
    return info


def _second_order_grads(net, arch, cost_fn, xt, yt, xv, yv, cfg, path, a_params):
    w = weight_params(net)
    backup = [p.detach().clone() for p in w]

    def train_loss():
        return F.cross_entropy(_logits(net, arch, xt, cfg.mode, path), yt)

    gw = torch.autograd.grad(train_loss(), w, allow_unused=True)
    with torch.no_grad():                                    # w' = w - xi * dL_train/dw
        for p, g in zip(w, gw):
            if g is not None:
                p.sub_(cfg.w_lr * g)
    loss, info = arch_loss(net, arch, cost_fn, xv, yv, cfg, path)
    g_all = torch.autograd.grad(loss, a_params + w, allow_unused=True)
    da, v = g_all[:len(a_params)], g_all[len(a_params):]
    norm = torch.sqrt(sum((g ** 2).sum() for g in v if g is not None)) if any(g is not None for g in v) else None
    hv = [None] * len(a_params)
    if norm is not None and float(norm) > 0:
        eps = 0.01 / float(norm)
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(w, backup, v):
                    p.copy_(b if g is None else b + sign * eps * g)
            sides.append(torch.autograd.grad(train_loss(), a_params, allow_unused=True))
        hv = [None if gp is None else (gp - gm) / (2 * eps) for gp, gm in zip(*sides)]
    with torch.no_grad():
        for p, b in zip(w, backup):
            p.copy_(b)
    out = []
    for d, h in zip(da, hv):
        if d is None and h is None:
            out.append(None)
        else:
            out.append((0 if d is None else d) - (0 if h is None else cfg.w_lr * h))
    return out, info


def batch(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, n: int):
    idx = rng.choice(len(labels), min(n, len(labels)), replace=False)
    return images[idx], labels[idx]
