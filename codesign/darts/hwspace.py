"""Differentiable network-accelerator co-search (``codesign darts --hw-space``; DANCE / EDD style,
issue #22 item 2).

The accelerator's categorical genes (PE rows and columns, DRAM bandwidth and type, dataflow, the
buffer sizes; the bit-width stays the run's ``--bits``, at which accuracy is measured) get one
categorical each (``HwRelax``). A small torch MLP (``Surrogate``, DANCE's evaluator network)
predicts log latency, log energy and log area from the encoding of a (network, hardware) pair:
the slot-op probabilities times the slot's probability of running, the depth and resolution
probabilities (the expectation of the discrete genomes' one-hot encodings), and per hardware gene
the one-hot of its current argmax with the straight-through gradient of its probabilities (so
the area penalty acts on the accelerator the run would derive; soft probabilities there let the
expected encoding look small while the argmax design breaks the area limit).

The surrogate is trained on random joint genomes of the space labelled by the shipped learned
cost predictor (``codesign.predictors.cost``; 99% of its latencies and energies within 10% of the
mapped model) and the exact area of each architecture: a distillation of the predictor into a
differentiable function of the relaxed choices. The derived (network, accelerator) pair is then
scored exactly, every layer mapped, beside the baseline accelerator running the same network."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from codesign.darts.relax import ArchParams, active_probs

HW_GENES = ("pe_x", "pe_y", "dram_bw", "dataflow", "dram_type")     # bits: fixed to the run's


class HwRelax(nn.Module):
    """One zero-initialised categorical per hardware gene of the space (bits excepted)."""

    def __init__(self, hw_space, bits: int):
        super().__init__()
        self.bits = int(bits)
        self.genes = [(g, tuple(hw_space.values(g))) for g in HW_GENES] + \
                     [(f"sizes_kib.{lv}", tuple(vals)) for lv, vals in hw_space.sizes]
        self.logits = nn.ParameterList([nn.Parameter(torch.zeros(len(v))) for _, v in self.genes])

    def probs(self) -> list:
        return [torch.softmax(l, -1) for l in self.logits]

    def encoding(self, hard: bool = True) -> torch.Tensor:
        """Hard (default): the one-hot of each gene's argmax, with the straight-through gradient of
        its probabilities, so that the surrogate scores (and the area penalty sees) the accelerator
        the run would derive now; soft: the probabilities."""
        ps = self.probs()
        if not hard:
            return torch.cat(ps)
        return torch.cat([torch.nn.functional.one_hot(p.argmax(), len(p)).to(p.dtype) - p.detach() + p for p in ps])

    def one_hot(self, hw: dict) -> torch.Tensor:
        parts = []
        for name, vals in self.genes:
            v = hw["sizes_kib"][name.split(".", 1)[1]] if name.startswith("sizes_kib.") else hw[name]
            parts.append(torch.nn.functional.one_hot(torch.tensor(vals.index(v)), len(vals)).float())
        return torch.cat(parts)

    def derive(self) -> dict:
        hw = {"bits": self.bits, "sizes_kib": {}}
        for (name, vals), l in zip(self.genes, self.logits):
            v = vals[int(l.argmax())]
            if name.startswith("sizes_kib."):
                hw["sizes_kib"][name.split(".", 1)[1]] = v
            else:
                hw[name] = v
        return hw

    def onchip_kib(self, hw_space) -> torch.Tensor:
        """On-chip memory (KiB, every level but DRAM, all instances) of the accelerator the run
        would derive now, exactly (``accelerators.arch.onchip_kib``), with a gradient from a
        one-gene-at-a-time linearization around it: sum over genes of p(value) x the exact on-chip
        memory with only that gene set to that value (straight-through: the value is exact, the
        gradient moves each gene's probabilities towards values that need less memory)."""
        hw = self.derive()
        exact = onchip_of(hw_space, hw)
        lin = torch.zeros(())
        for (name, vals), p in zip(self.genes, self.probs()):
            alt = []
            for v in vals:
                h = {**hw, "sizes_kib": dict(hw["sizes_kib"])}
                if name.startswith("sizes_kib."):
                    h["sizes_kib"][name.split(".", 1)[1]] = v
                else:
                    h[name] = v
                alt.append(onchip_of(hw_space, h))
            lin = lin + (p * torch.tensor(alt, dtype=p.dtype)).sum()
        return lin - lin.detach() + exact

    def entropy(self) -> torch.Tensor:
        return torch.stack([-(p * torch.log(p.clamp_min(1e-12))).sum() for p in self.probs()]).mean()


def onchip_of(hw_space, hw: dict) -> float:
    """On-chip memory (KiB) of a hardware genome."""
    from accelerators.arch import onchip_kib
    return float(onchip_kib(hw_space.architecture(hw)))


def within_onchip_limit(space, hw: dict) -> bool | None:
    """Whether ``hw`` meets the joint space's on-chip memory constraint (``onchip_kib``, 512 KiB in
    the default space); None when the space has none."""
    limit = dict(space.constraints).get("onchip_kib")
    return None if limit is None else bool(onchip_of(space.hw, hw) <= limit)


def net_encoding(op: torch.Tensor, depth: torch.Tensor, r: torch.Tensor, space) -> torch.Tensor:
    """Slot-op probabilities times the slot's probability of running, depth and resolution
    probabilities (one-hot inputs give a discrete genome's encoding)."""
    act = active_probs(depth, space)
    return torch.cat([(op * act[:, None]).reshape(-1), depth.reshape(-1), r])


def genome_net_encoding(genome: dict, arch: ArchParams) -> torch.Tensor:
    sp = arch.space
    op = torch.zeros(sp.slots, len(arch.choices))
    for i in range(sp.slots):
        op[i, arch.choices.index((genome["ks"][i], genome["e"][i]))] = 1.0
    depth = torch.zeros(sp.stages, len(sp.depths))
    for s, d in enumerate(genome["d"]):
        depth[s, sp.depths.index(d)] = 1.0
    r = torch.zeros(len(sp.resolutions))
    r[sp.resolutions.index(genome["r"])] = 1.0
    return net_encoding(op, depth, r, sp)


class Surrogate(nn.Module):
    """MLP: (network encoding, hardware encoding) -> standardized (log latency_ms, log energy_uj,
    log area_mm2); ``forward`` returns the three in their units."""

    def __init__(self, n_in: int, hidden: int = 128):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 3))
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.mlp(x) * self.std + self.mean)


def surrogate_data(space, arch: ArchParams, hw_relax: HwRelax, n: int, seed: int = 0, cost_predictor=None):
    """(inputs, targets log(latency_ms, energy_uj, area_mm2)) for ``n`` random joint genomes at
    the run's bit-width, labelled by the learned cost predictor and the exact area."""
    from codesign.artifacts import WEIGHTS_DIR
    from codesign.predictors.cost import CostPredictor
    pred = cost_predictor or CostPredictor.load(WEIGHTS_DIR / "cost_predictor.npz")
    pred.check_space(space)
    rng = np.random.default_rng(seed)
    genomes = []
    for _ in range(n):
        g = space.sample(rng)
        g["hw"]["bits"] = hw_relax.bits
        if rng.random() < 0.5:                               # half at the run's fixed resolution too
            g["net"]["r"] = arch.resolution or g["net"]["r"]
        genomes.append(g)
    lat, en = pred.predict(genomes)
    area = np.array([space.hw.architecture(g["hw"]).area_um2() / 1e6 for g in genomes])
    x = torch.stack([torch.cat([genome_net_encoding(g["net"], arch), hw_relax.one_hot(g["hw"])]) for g in genomes])
    y = torch.log(torch.tensor(np.stack([lat, en, area], 1), dtype=torch.float32))
    return x, y


def train_surrogate(x: torch.Tensor, y: torch.Tensor, seed: int = 0, steps: int = 1500, log=print) -> Surrogate:
    """Full-batch Adam on 90% of the rows; logs the held-out 10%'s median relative error."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(x), generator=gen)
    n_val = max(1, len(x) // 10)
    va, tr = perm[:n_val], perm[n_val:]
    model = Surrogate(x.shape[1])
    model.mean.copy_(y[tr].mean(0))
    model.std.copy_(y[tr].std(0).clamp_min(1e-6))
    opt = torch.optim.Adam(model.mlp.parameters(), lr=3e-3)
    z = (y - model.mean) / model.std
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model.mlp(x[tr]) - z[tr]) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rel = (model(x[va]) / torch.exp(y[va]) - 1).abs().median(0).values
    model.val_median_rel_error = [round(float(v), 4) for v in rel]
    log(f"surrogate: median relative error on held-out rows: latency {rel[0]:.3f}, energy {rel[1]:.3f}, "
        f"area {rel[2]:.3f}")
    return model.eval()


def surrogate_cost(surrogate: Surrogate, arch: ArchParams, hw_relax: HwRelax) -> torch.Tensor:
    """(latency_ms, energy_uj, area_mm2) of the relaxed pair, differentiable in both."""
    p = arch.probs()
    x = torch.cat([net_encoding(p["op"], p["depth"], p["r"], arch.space), hw_relax.encoding()])
    return surrogate(x[None])[0]
