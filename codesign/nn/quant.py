"""Fake quantization of an extracted subnet, so that accuracy is a function of (genome, bits):
weights per output channel, symmetric, to ``bits``; activations (the input of every conv and
linear layer) per tensor, asymmetric, with ranges calibrated on held-out images.

Two range calibrations (``clip``):
- ``"minmax"``: the full observed range (weights: max |w| per channel; activations: the min and
  max seen while calibrating). Fine at 8 bits and above; at 4 bits a few outliers stretch the
  step so far that most subnets fall to chance.
- ``"mse"``: the range shrunk to the factor (of a fixed grid that includes 1, i.e. min/max)
  that minimizes the mean squared quantization error: per channel for weights, on a seeded sample
  of the calibration activations per tensor. Clipping outliers for resolution is the standard
  post-training remedy (Banner et al., "Post-training 4-bit quantization", NeurIPS 2019; PyTorch's
  HistogramObserver minimizes the same L2 error). Never worse than min/max in that error."""
from __future__ import annotations

import copy

import torch
from torch import nn

from codesign.nn.quant_ranges import CLIPS, DEFAULT_CLIP  # noqa: F401  (re-exported)

_RATIOS = torch.linspace(0.05, 1.0, 39)          # shrink factors tried by "mse" (1.0 = min/max)
_SAMPLES_PER_BATCH = 16384                       # activation values kept per calibration batch


def _check_clip(clip: str) -> str:
    if clip not in CLIPS:
        raise ValueError(f"unknown clip {clip!r} (one of {', '.join(CLIPS)})")
    return clip


def quantize_weight(w: torch.Tensor, bits: int, clip: str = "minmax") -> torch.Tensor:
    """Symmetric per-output-channel quantization. ``minmax``: max error per element <= scale / 2;
    ``mse``: per channel the clipping range of least squared error (its error never above
    min/max's)."""
    _check_clip(clip)
    if bits >= 32:
        return w
    qmax = 2 ** (bits - 1) - 1
    flat = w.reshape(w.shape[0], -1)
    amax = flat.abs().amax(1).clamp_min(1e-12)
    ratios = _RATIOS[-1:] if clip == "minmax" else _RATIOS
    best, best_err = None, None
    for r in ratios.tolist()[::-1]:               # 1.0 first: ties keep the wider range
        scale = (amax * r / qmax)[:, None]
        q = torch.clamp(torch.round(flat / scale), -qmax, qmax) * scale
        err = ((q - flat) ** 2).sum(1)
        if best is None:
            best, best_err = q, err
        else:
            better = err < best_err
            best = torch.where(better[:, None], q, best)
            best_err = torch.where(better, err, best_err)
    return best.reshape(w.shape)


def _fake_quant(x: torch.Tensor, lo, hi, bits: int) -> torch.Tensor:
    levels = 2 ** bits - 1
    scale = (hi - lo).clamp_min(1e-8) / levels
    zero = torch.round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, levels) - zero) * scale


class ActQuant(nn.Module):
    """Observes the input range while calibrating (and, for ``mse``, a seeded sample of the
    values), then fake-quantizes to ``bits`` (asymmetric)."""

    def __init__(self, bits: int, clip: str = "minmax"):
        super().__init__()
        self.bits, self.clip = bits, _check_clip(clip)
        self.calibrating = True
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))
        self._samples: list = []

    def forward(self, x):
        if self.calibrating:
            flat = x.detach().flatten()
            self.lo = torch.minimum(self.lo, flat.min())
            self.hi = torch.maximum(self.hi, flat.max())
            if self.clip == "mse":
                gen = torch.Generator().manual_seed(len(self._samples))      # uniform, with replacement
                idx = torch.randint(0, flat.numel(), (_SAMPLES_PER_BATCH,), generator=gen)
                self._samples.append(flat[idx.to(flat.device)].cpu())
            return x
        if self.bits >= 32:
            return x
        return _fake_quant(x, self.lo, self.hi, self.bits)

    def finish(self):
        """End calibration: for ``mse``, shrink [lo, hi] (towards 0) to the factor of least
        squared error on the sampled values."""
        self.calibrating = False
        if self.clip == "mse" and self._samples and self.bits < 32:
            s = torch.cat(self._samples)[None, :]
            r = _RATIOS.flip(0)[:, None]              # 1.0 first: ties keep the wider range
            lo, hi = self.lo.cpu() * r, self.hi.cpu() * r
            err = ((_fake_quant(s, lo, hi, self.bits) - s) ** 2).mean(1)
            k = int(torch.argmin(err))
            self.lo = (self.lo * r[k, 0]).to(self.lo.dtype)
            self.hi = (self.hi * r[k, 0]).to(self.hi.dtype)
        self._samples = []


class QuantWrap(nn.Module):
    def __init__(self, layer: nn.Module, bits: int, clip: str = "minmax"):
        super().__init__()
        self.act = ActQuant(bits, clip)
        self.layer = layer

    def forward(self, x):
        return self.layer(self.act(x))


def quantize_model(model: nn.Module, bits: int, clip: str = "minmax") -> nn.Module:
    """A copy of ``model`` with every Conv2d / Linear weight quantized and its input observed
    (call :func:`finish_calibration` after running calibration batches through it)."""
    _check_clip(clip)
    q = copy.deepcopy(model)

    def swap(parent):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                with torch.no_grad():
                    child.weight.copy_(quantize_weight(child.weight, bits, clip))
                setattr(parent, name, QuantWrap(child, bits, clip))
            else:
                swap(child)
    swap(q)
    return q


def finish_calibration(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, ActQuant):
            m.finish()
    return model
