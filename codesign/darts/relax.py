"""The continuous relaxation of the supernet's choices.

* one categorical per block slot over (kernel x expand): 9 choices (``lut.op_choices`` order);
* one categorical per stage over depth: depth is a mixture of exits (the stage's output is the
  output after block d, d drawn from the categorical or, in soft mode, the probability-weighted
  sum of the exits), so slot b of a stage runs with probability P(d > b);
* optionally one categorical over the input resolution.

The expected cost is exact for the table's additive cost (``lut``):

    E[cost] = sum_r p(r) * ( fixed(r) + sum_slots P(slot active) * sum_c p(slot, c) * LUT[r, slot, c] )

since the choices are independent and each slot's cost depends only on its own choice and r.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from codesign.darts.lut import CostTable, op_choices
from codesign.space.genome import DEFAULT_SPACE, SearchSpace

MODES = ("sample", "gumbel", "soft")


class ArchParams(nn.Module):
    """Logits of the categoricals (zero-initialised: uniform). ``resolution`` is a fixed input
    resolution, or None to search over ``space.resolutions``."""

    def __init__(self, space: SearchSpace = DEFAULT_SPACE, resolution: int | None = 32):
        super().__init__()
        self.space, self.resolution = space, resolution
        self.choices = op_choices(space)
        self.op = nn.Parameter(torch.zeros(space.slots, len(self.choices)))
        self.depth = nn.Parameter(torch.zeros(space.stages, len(space.depths)))
        self.res = nn.Parameter(torch.zeros(len(space.resolutions))) if resolution is None else None

    def probs(self) -> dict:
        out = {"op": torch.softmax(self.op, -1), "depth": torch.softmax(self.depth, -1)}
        if self.res is not None:
            out["r"] = torch.softmax(self.res, -1)
        else:
            out["r"] = torch.tensor([1.0 if r == self.resolution else 0.0 for r in self.space.resolutions])
        return out

    def entropy(self) -> torch.Tensor:
        """Mean entropy (nats) of the searched categoricals."""
        logits = [self.op, self.depth] + ([self.res[None]] if self.res is not None else [])
        hs = [-(torch.softmax(l, -1) * torch.log_softmax(l, -1)).sum(-1) for l in logits]
        return torch.cat(hs).mean()


def active_probs(depth_probs: torch.Tensor, space: SearchSpace = DEFAULT_SPACE) -> torch.Tensor:
    """P(slot active) for every slot: slot b of stage s runs when the stage's depth exceeds b."""
    depths = torch.tensor(space.depths)
    per_stage = [(depth_probs * (depths > b).to(depth_probs.dtype)).sum(-1) for b in range(space.max_depth)]
    return torch.stack(per_stage, -1).reshape(-1)            # (stages * max_depth,) slot order


def expected_cost(arch: ArchParams, table: CostTable) -> torch.Tensor:
    """E[cost] under the current probabilities (differentiable in every logit)."""
    p = arch.probs()
    ops = torch.as_tensor(table.ops, dtype=p["op"].dtype)               # (R, slots, choices)
    fixed = torch.as_tensor(table.fixed, dtype=p["op"].dtype)           # (R,)
    rs = list(arch.space.resolutions)
    idx = [rs.index(r) for r in table.resolutions]
    pr = p["r"][idx]
    per_slot = (ops * p["op"][None]).sum(-1)                            # (R, slots)
    act = active_probs(p["depth"], arch.space)
    return (pr * (fixed + (per_slot * act[None]).sum(-1))).sum()


@dataclass(frozen=True)
class Path:
    """One sampled discrete path: ``op`` (slots,) and ``depth`` (stages,) choice indices, the
    resolution index ``r_index`` (None: fixed), the mode, and for gumbel the noise that was drawn
    (so that :func:`gates` can rebuild the same gates on every forward of a step)."""
    op: tuple
    depth: tuple
    r: int
    mode: str
    tau: float = 1.0
    noise: tuple | None = None           # (op, depth, r) Gumbel noise tensors

    def genome(self, arch: "ArchParams") -> dict:
        sp = arch.space
        return sp.canonical({"ks": [arch.choices[c][0] for c in self.op], "e": [arch.choices[c][1] for c in self.op],
                             "d": [sp.depths[c] for c in self.depth], "r": self.r})


def _gumbel(shape, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=gen).clamp(1e-10, 1 - 1e-10)
    return -torch.log(-torch.log(u))


def _gate(logits: torch.Tensor, idx: torch.Tensor, mode: str, noise, tau: float) -> torch.Tensor:
    """Gates of value 1 at the chosen entries whose gradient reaches ``logits``: gumbel, the
    straight-through estimator of the hard Gumbel-softmax (y_hard - sg(y_soft) + y_soft); sample,
    ProxylessNAS's binarized gate with one active path (1 + p_c - sg(p_c))."""
    y = torch.softmax((logits + noise) / tau, -1) if mode == "gumbel" else torch.softmax(logits, -1)
    chosen = y.gather(-1, idx[..., None])[..., 0]
    return 1.0 + chosen - chosen.detach()


def gates(arch: "ArchParams", path: Path):
    """(op gates (slots,), depth gates (stages,), resolution gate or None) of a path."""
    n = path.noise or (None, None, None)
    og = _gate(arch.op, torch.tensor(path.op), path.mode, n[0], path.tau)
    dg = _gate(arch.depth, torch.tensor(path.depth), path.mode, n[1], path.tau)
    rg = None
    if arch.res is not None:
        ri = torch.tensor([arch.space.resolutions.index(path.r)])
        rg = _gate(arch.res[None], ri, path.mode, None if n[2] is None else n[2][None], path.tau)[0]
    return og, dg, rg


def _draw(logits: torch.Tensor, mode: str, gen: torch.Generator, tau: float):
    """(indices, noise) for rows of logits."""
    with torch.no_grad():
        if mode == "gumbel":
            noise = _gumbel(logits.shape, gen)
            return ((logits + noise) / tau).argmax(-1), noise
        cdf = torch.softmax(logits, -1).cumsum(-1)                      # inverse-CDF draw per row
        u = torch.rand(logits.shape[:-1], generator=gen)[..., None]
        idx = (cdf < u).sum(-1).clamp_max(logits.shape[-1] - 1)
        return idx, None


def sample_path(arch: "ArchParams", mode: str, gen: torch.Generator, tau: float = 1.0) -> Path:
    """One discrete path (``mode`` sample or gumbel). Sample: each categorical drawn from its
    softmax (ProxylessNAS's binarized path sampling); gumbel: the argmax of the Gumbel-perturbed
    logits (hard Gumbel-softmax, temperature ``tau``)."""
    if mode not in ("sample", "gumbel"):
        raise ValueError(f"mode {mode!r}: a path is sampled in sample or gumbel mode")
    op, on = _draw(arch.op, mode, gen, tau)
    d, dn = _draw(arch.depth, mode, gen, tau)
    rn = None
    if arch.res is not None:
        ri, rn = _draw(arch.res[None], mode, gen, tau)
        r = arch.space.resolutions[int(ri[0])]
        rn = None if rn is None else rn[0]
    else:
        r = arch.resolution
    noise = (on, dn, rn) if mode == "gumbel" else None
    return Path(tuple(int(i) for i in op), tuple(int(i) for i in d), int(r), mode, tau, noise)


def derive_genome(arch: ArchParams) -> dict:
    """The discrete genome of the argmax choices (canonical: unused slots at the minimum)."""
    sp = arch.space
    with torch.no_grad():
        op = arch.op.argmax(-1).tolist()
        d = arch.depth.argmax(-1).tolist()
        r = sp.resolutions[int(arch.res.argmax())] if arch.res is not None else arch.resolution
    return sp.canonical({"ks": [arch.choices[c][0] for c in op], "e": [arch.choices[c][1] for c in op],
                         "d": [sp.depths[c] for c in d], "r": int(r)})


def probs_record(arch: ArchParams) -> dict:
    """The probabilities as plain lists (one trajectory row)."""
    with torch.no_grad():
        p = arch.probs()
        return {"op": [[round(float(v), 6) for v in row] for row in p["op"]],
                "depth": [[round(float(v), 6) for v in row] for row in p["depth"]],
                "r": [round(float(v), 6) for v in p["r"]]}
