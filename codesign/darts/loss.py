"""Hardware-aware losses of the differentiable search, on the expected cost E[c] (latency in ms,
energy in uJ or EDP in uJ*ms, from the look-up table):

* ``proxyless``: CE + lambda * E[c]  (ProxylessNAS; lambda per unit of the metric);
* ``fbnet``: CE * alpha * log(E[c] * 1000) ** beta  (FBNet; beta = lambda, alpha = 0.2 as in the
  paper; the cost in thousandths of the metric's unit, i.e. microseconds for latency, so that the
  logarithm stays positive);
* ``target``: CE + lambda * max(0, E[c] / target - 1)  (a hard target with a hinge penalty: no
  pressure once the expected cost is under the target).
"""
from __future__ import annotations

import torch

LOSSES = ("proxyless", "fbnet", "target")
FBNET_ALPHA = 0.2


def hardware_loss(ce: torch.Tensor, cost: torch.Tensor, kind: str, lam: float, target: float | None = None,
                  fbnet_alpha: float = FBNET_ALPHA) -> torch.Tensor:
    if kind == "proxyless":
        return ce + lam * cost
    if kind == "fbnet":
        return ce * fbnet_alpha * torch.log(cost.clamp_min(1e-9) * 1000.0).clamp_min(1e-6) ** lam
    if kind == "target":
        if target is None or target <= 0:
            raise ValueError("the target loss needs a positive target")
        return ce + lam * torch.relu(cost / target - 1.0)
    raise ValueError(f"unknown loss {kind!r} (one of {', '.join(LOSSES)})")
