"""Fake quantization of an extracted subnet, so that accuracy is a function of (genome, bits):
weights per output channel, symmetric, to ``bits``; activations (the input of every conv and
linear layer) per tensor, asymmetric, with ranges calibrated on held-out images."""
from __future__ import annotations

import copy

import torch
from torch import nn


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel quantization; max error per element <= scale / 2."""
    if bits >= 32:
        return w
    qmax = 2 ** (bits - 1) - 1
    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(1).clamp_min(1e-12) / qmax
    q = torch.clamp(torch.round(flat / scale[:, None]), -qmax, qmax)
    return (q * scale[:, None]).reshape(w.shape)


class ActQuant(nn.Module):
    """Observes min/max while calibrating, then fake-quantizes to ``bits`` (asymmetric)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.calibrating = True
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))

    def forward(self, x):
        if self.calibrating:
            self.lo = torch.minimum(self.lo, x.detach().min())
            self.hi = torch.maximum(self.hi, x.detach().max())
            return x
        if self.bits >= 32:
            return x
        levels = 2 ** self.bits - 1
        scale = (self.hi - self.lo).clamp_min(1e-8) / levels
        zero = torch.round(-self.lo / scale)
        q = torch.clamp(torch.round(x / scale) + zero, 0, levels)
        return (q - zero) * scale


class QuantWrap(nn.Module):
    def __init__(self, layer: nn.Module, bits: int):
        super().__init__()
        self.act = ActQuant(bits)
        self.layer = layer

    def forward(self, x):
        return self.layer(self.act(x))


def quantize_model(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` with every Conv2d / Linear weight quantized and its input observed
    (call :func:`finish_calibration` after running calibration batches through it)."""
    q = copy.deepcopy(model)

    def swap(parent):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                with torch.no_grad():
                    child.weight.copy_(quantize_weight(child.weight, bits))
                setattr(parent, name, QuantWrap(child, bits))
            else:
                swap(child)
    swap(q)
    return q


def finish_calibration(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, ActQuant):
            m.calibrating = False
    return model
