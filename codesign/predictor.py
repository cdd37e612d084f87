"""Accuracy predictor: (genome, bit-width) -> top-1, a small MLP on a one-hot encoding (as in
Once-for-All's predictor), trained with torch, stored as a plain .npz and run in numpy, so the
co-search scores thousands of candidates per second without torch."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

from .genome import DEFAULT_SPACE, SearchSpace

BITS = (4, 6, 8, 16)


def encode(genomes, bits, space: SearchSpace = DEFAULT_SPACE) -> np.ndarray:
    """(N, F) features: per block slot one-hot kernel and expand (zero when the slot is unused),
    per stage one-hot depth, one-hot resolution, one-hot bit-width."""
    genomes = list(genomes)
    bits = np.broadcast_to(np.asarray(bits), (len(genomes),))
    nk, ne, nd, nr = len(space.kernels), len(space.expands), len(space.depths), len(space.resolutions)
    F = space.slots * (nk + ne) + space.stages * nd + nr + len(BITS)
    out = np.zeros((len(genomes), F), np.float32)
    for n, (g, b) in enumerate(zip(genomes, bits)):
        used = {i for _, i in space.active_blocks(g)}
        for i in range(space.slots):
            if i in used:
                out[n, i * (nk + ne) + space.kernels.index(g["ks"][i])] = 1
                out[n, i * (nk + ne) + nk + space.expands.index(g["e"][i])] = 1
        o = space.slots * (nk + ne)
        for s in range(space.stages):
            out[n, o + s * nd + space.depths.index(g["d"][s])] = 1
        o += space.stages * nd
        out[n, o + space.resolutions.index(g["r"])] = 1
        out[n, o + nr + BITS.index(int(b))] = 1
    return out


@dataclass
class Predictor:
    layers: list          # [(W, b), ...] numpy
    y_mean: float
    y_std: float
    meta: dict

    def predict(self, genomes, bits) -> np.ndarray:
        h = encode(genomes, bits)
        for i, (W, b) in enumerate(self.layers):
            h = h @ W + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
        return h[:, 0] * self.y_std + self.y_mean

    def save(self, path):
        arrays = {f"W{i}": W for i, (W, _) in enumerate(self.layers)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(self.layers)})
        np.savez(path, y_mean=self.y_mean, y_std=self.y_std, meta=json.dumps(self.meta), **arrays)

    @staticmethod
    def load(path) -> "Predictor":
        p = Path(path)
        if not p.is_file():
            raise SpecError("predictor", "no such file", str(p))
        with np.load(p, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("W"))
            layers = [(z[f"W{i}"], z[f"b{i}"]) for i in range(n)]
            return Predictor(layers, float(z["y_mean"]), float(z["y_std"]), json.loads(str(z["meta"])))


def metrics(y_true, y_pred) -> dict:
    from scipy.stats import kendalltau, spearmanr
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"kendall_tau": float(kendalltau(y_true, y_pred)[0]), "spearman": float(spearmanr(y_true, y_pred)[0]),
            "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))), "n": int(len(y_true))}


def split_by_genome(rows: list[dict], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices with every genome wholly on one side: the rows of one genome at
    several bit-widths share its BN recalibration, so a row split would leak the genome."""
    from .genome import genome_key
    keys = sorted({genome_key(r["genome"]) for r in rows})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    test_keys = {keys[i] for i in order[:max(1, int(round(len(keys) * holdout)))]}
    in_test = np.array([genome_key(r["genome"]) in test_keys for r in rows])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def train_predictor(rows: list[dict], seed: int = 0, holdout: float = 0.2, hidden: int = 128,
                    epochs: int = 400) -> tuple[Predictor, dict]:
    """Fit on the rows of (1 - holdout) of the measured genomes; report metrics on the held-out
    genomes, over all rows and per bit-width (the ranking within one bit-width is what a search
    at fixed hardware bits sees)."""
    import torch
    if len(rows) < 20:
        raise SpecError("dataset", f"needs at least 20 measured subnets, has {len(rows)}")
    train, test = split_by_genome(rows, holdout, seed)
    if len(train) == 0:
        raise SpecError("dataset", "needs at least 2 distinct genomes")
    X = encode([r["genome"] for r in rows], [r["bits"] for r in rows])
    y = np.array([r["top1"] for r in rows], np.float32)
    mu, sd = float(y[train].mean()), float(y[train].std() + 1e-6)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    Xt = torch.from_numpy(X[train])
    yt = torch.from_numpy((y[train] - mu) / sd)[:, None]
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen)
        for i in range(0, len(Xt), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.mse_loss(net(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    pred = Predictor([(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lin], mu, sd,
                     {"features": int(X.shape[1]), "hidden": hidden, "seed": seed, "train": int(len(train)),
                      "test": int(len(test))})
    p_test = pred.predict([rows[i]["genome"] for i in test], [rows[i]["bits"] for i in test])
    m = metrics(y[test], p_test)
    b_test = np.array([int(rows[i]["bits"]) for i in test])
    m["per_bits"] = {str(b): metrics(y[test][b_test == b], p_test[b_test == b])
                     for b in BITS if (b_test == b).sum() >= 3}
    pred.meta["heldout"] = m
    return pred, m
