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


def summary(genomes) -> np.ndarray:
    """(N, 2) size features the one-hot code spreads over many inputs: log10 MACs and log10 of
    the active blocks' expanded channels (a parameter-count stand-in)."""
    from .genome_layers import genome_macs
    rows = []
    for g in genomes:
        used = [i for _, i in DEFAULT_SPACE.active_blocks(g)]
        rows.append((np.log10(genome_macs(g)), np.log10(sum(g["e"][i] * g["ks"][i] ** 2 for i in used))))
    return np.asarray(rows, np.float32)


def features(genomes, bits, meta: dict) -> np.ndarray:
    genomes = list(genomes)
    X = encode(genomes, bits)
    if meta.get("summary"):
        z = (summary(genomes) - np.asarray(meta["summary_mean"], np.float32)) / np.asarray(meta["summary_std"], np.float32)
        X = np.concatenate([X, z.astype(np.float32)], axis=1)
    return X


@dataclass
class Predictor:
    """An ensemble of small MLPs (mean of the members), in numpy."""
    members: list         # per member [(W, b), ...]
    y_mean: float
    y_std: float
    meta: dict

    def predict(self, genomes, bits) -> np.ndarray:
        X = features(genomes, bits, self.meta)
        out = np.zeros(len(X))
        for layers in self.members:
            h = X
            for i, (W, b) in enumerate(layers):
                h = h @ W + b
                if i < len(layers) - 1:
                    h = np.maximum(h, 0)
            out += h[:, 0]
        return out / len(self.members) * self.y_std + self.y_mean

    def save(self, path):
        arrays = {}
        for m, layers in enumerate(self.members):
            for i, (W, b) in enumerate(layers):
                arrays[f"m{m}_W{i}"], arrays[f"m{m}_b{i}"] = W, b
        np.savez(path, y_mean=self.y_mean, y_std=self.y_std, meta=json.dumps(self.meta), **arrays)

    @staticmethod
    def load(path) -> "Predictor":
        p = Path(path)
        if not p.is_file():
            raise SpecError("predictor", "no such file", str(p))
        try:
            with np.load(p, allow_pickle=False) as z:
                n_members = len({k.split("_")[0] for k in z.files if k.startswith("m") and "_W" in k})
                members = []
                for m in range(n_members):
                    n = sum(1 for k in z.files if k.startswith(f"m{m}_W"))
                    members.append([(z[f"m{m}_W{i}"], z[f"m{m}_b{i}"]) for i in range(n)])
                pred = Predictor(members, float(z["y_mean"]), float(z["y_std"]), json.loads(str(z["meta"])))
        except (OSError, ValueError, KeyError) as e:
            raise SpecError("predictor", f"not an accuracy predictor file ({e})", str(p)) from None
        if not members:
            raise SpecError("predictor", "not an accuracy predictor file (no networks in it)", str(p))
        return pred


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


def _fit_mlp(X, y, seed: int, hidden: int, epochs: int, weight_decay: float):
    import torch
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]
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
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
            for m in net if isinstance(m, torch.nn.Linear)]


def fit(rows: list[dict], seed: int = 0, hidden: int = 128, epochs: int = 400, members: int = 1,
        use_summary: bool = False, weight_decay: float = 1e-4) -> Predictor:
    """A predictor fitted on all of ``rows``."""
    genomes, bits = [r["genome"] for r in rows], [r["bits"] for r in rows]
    meta = {"hidden": hidden, "epochs": epochs, "members": members, "seed": seed, "summary": bool(use_summary),
            "weight_decay": weight_decay}
    if use_summary:
        sm = summary(genomes)
        meta["summary_mean"], meta["summary_std"] = sm.mean(0).tolist(), (sm.std(0) + 1e-6).tolist()
    X = features(genomes, bits, meta)
    y = np.array([r["top1"] for r in rows], np.float32)
    mu, sd = float(y.mean()), float(y.std() + 1e-6)
    nets = [_fit_mlp(X, (y - mu) / sd, seed + 1000 * m, hidden, epochs, weight_decay) for m in range(members)]
    meta.update({"features": int(X.shape[1]), "train": len(rows)})
    return Predictor(nets, mu, sd, meta)


def evaluate(pred: Predictor, rows: list[dict]) -> dict:
    """Metrics of ``pred`` on ``rows``, over all of them and per bit-width (the ranking within one
    bit-width is what a search at fixed hardware bits sees)."""
    y = np.array([r["top1"] for r in rows], float)
    p = pred.predict([r["genome"] for r in rows], [r["bits"] for r in rows])
    m = metrics(y, p)
    b = np.array([int(r["bits"]) for r in rows])
    m["per_bits"] = {str(v): metrics(y[b == v], p[b == v]) for v in BITS if (b == v).sum() >= 3}
    return m


def train_predictor(rows: list[dict], seed: int = 0, holdout: float = 0.2, hidden: int = 128,
                    epochs: int = 400, members: int = 1, use_summary: bool = False) -> tuple[Predictor, dict]:
    """Fit on the rows of (1 - holdout) of the measured genomes; report metrics on the held-out
    genomes (all rows and per bit-width). The returned predictor is the one those figures are of."""
    if len(rows) < 20:
        raise SpecError("dataset", f"needs at least 20 measured subnets, has {len(rows)}")
    train, test = split_by_genome(rows, holdout, seed)
    if len(train) == 0:
        raise SpecError("dataset", "needs at least 2 distinct genomes")
    pred = fit([rows[i] for i in train], seed=seed, hidden=hidden, epochs=epochs, members=members,
               use_summary=use_summary)
    m = evaluate(pred, [rows[i] for i in test])
    pred.meta.update({"test": int(len(test)), "heldout": m,
                      "genomes": {"train": len({json.dumps(rows[i]["genome"], sort_keys=True) for i in train}),
                                  "test": len({json.dumps(rows[i]["genome"], sort_keys=True) for i in test})}})
    return pred, m
