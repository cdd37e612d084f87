"""Accuracy predictor: (genome, bit-width) -> top-1, fitted on subnets measured on the supernet,
stored as a plain .npz and run in numpy (no torch), so the co-search scores thousands of
candidates per second.

Features: the one-hot genome code (OFA's encoding) plus two size features (log MACs, log of the
active blocks' sum of expand x kernel^2). The accuracies of one genome at 6, 8 and 16 bits move
together, so the design shares the genome features across those bit-widths, adds copies scaled
by ``ratio`` that only the 6- or 8-bit rows see (per-bit-width deviations, penalized more) and a
per-bit-width offset. 4-bit rows either join that shared model with their own deviation copy
(``four_bit="shared"``: where 4-bit accuracy tracks the others, as with MSE range calibration)
or get a separate linear ridge model (``"separate"``: where min/max quantization collapses most
4-bit subnets to chance); cross-validation over all rows picks which. Kinds of the shared model:

* ``kernel`` (default): kernel ridge regression with a linear plus Gaussian (RBF) kernel on
  that design (interactions between genes, e.g. depth x kernel, that a linear model misses);
* ``ridge``: linear ridge regression on it;
* ``mlp``: an ensemble of small MLPs on the code with a one-hot bit-width (OFA's predictor is an
  MLP); it needs far more measured subnets than this project has.

Penalties and kernel settings are picked by cross-validation over genomes inside the training
part (never on the held-out genomes the figures are reported on).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from accelerators.errors import SpecError

from codesign.predictors.accuracy.dataset import genome_ids, split_by_genome
from codesign.predictors.accuracy.encoder import BITS, base_features, features, summary
from codesign.predictors.archive import load_npz, save_npz


KINDS = ("kernel", "ridge", "mlp")
SHARED_BITS = (6, 8, 16)          # one shared model, per-bit deviations
DEVIATION_BITS = (6, 8)           # 16 is the reference the deviations are from
FOUR_BIT = ("separate", "shared")  # 4-bit rows: their own linear model, or in the shared one


def _bit_sets(four_bit: str) -> tuple[tuple, tuple]:
    """(bit-widths of the shared model, those with a deviation copy)."""
    if four_bit == "shared":
        return (4,) + SHARED_BITS, (4,) + DEVIATION_BITS
    return SHARED_BITS, DEVIATION_BITS


def _hier_design(X: np.ndarray, bits: np.ndarray, ratio: float, four_bit: str = "separate") -> np.ndarray:
    shared, deviation = _bit_sets(four_bit)
    dev = [X * (bits == b)[:, None] * ratio for b in deviation]
    onehot = np.stack([bits == b for b in shared], 1).astype(np.float64)
    return np.hstack([X, *dev, onehot])


def _ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(column means, weights, intercept) of ridge regression on centred columns."""
    mu, ym = X.mean(0), float(y.mean())
    Xc = X - mu
    w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - ym))
    return mu, w, ym


LINEAR_WEIGHT = 0.1                # linear part of the kernel, next to the RBF part


def _kernel(A: np.ndarray, B: np.ndarray, ell: float, c: float) -> np.ndarray:
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return LINEAR_WEIGHT * (A @ B.T) + c * np.exp(-np.maximum(d2, 0.0) / (2.0 * ell * ell))


@dataclass
class Predictor:
    """A fitted predictor: its arrays and its settings (``meta['kind']``: ridge or mlp)."""
    arrays: dict
    meta: dict

    def predict(self, genomes, bits) -> np.ndarray:
        genomes = list(genomes)
        bits = np.broadcast_to(np.asarray(bits, int), (len(genomes),)).copy()
        bad = set(bits.tolist()) - set(BITS)
        if bad:
            raise SpecError("bits", f"the accuracy predictor knows bit-widths {list(BITS)}, not {sorted(bad)}")
        if self.meta["kind"] == "mlp":
            return self._predict_mlp(genomes, bits)
        A = self.arrays
        X = base_features(genomes, self.meta)
        out = np.empty(len(genomes))
        four = self.meta.get("four_bit", "separate")
        hi = np.isin(bits, _bit_sets(four)[0])
        if hi.any():
            D = _hier_design(X[hi], bits[hi], self.meta["ratio"], four)
            if self.meta["kind"] == "kernel":
                K = _kernel(D, A["hi_train"], self.meta["ell"], self.meta["c"])
                out[hi] = K @ A["hi_alpha"] + float(A["hi_b"])
            else:
                out[hi] = (D - A["hi_mean"]) @ A["hi_w"] + float(A["hi_b"])
        if (~hi).any():
            out[~hi] = (X[~hi] - A["lo_mean"]) @ A["lo_w"] + float(A["lo_b"])
        return out

    def _predict_mlp(self, genomes, bits) -> np.ndarray:
        X = features(genomes, bits, self.meta)
        out = np.zeros(len(X))
        for m in range(self.meta["members"]):
            h = X
            n = self.meta["layers"]
            for i in range(n):
                h = h @ self.arrays[f"m{m}_W{i}"] + self.arrays[f"m{m}_b{i}"]
                if i < n - 1:
                    h = np.maximum(h, 0)
            out += h[:, 0]
        return out / self.meta["members"] * self.meta["y_std"] + self.meta["y_mean"]

    def save(self, path):
        save_npz(path, self.meta, self.arrays)

    @staticmethod
    def load(path) -> "Predictor":
        meta, arrays = load_npz(path, "predictor", "an accuracy predictor file")
        kind = meta.get("kind")
        if kind not in KINDS:
            raise SpecError("predictor", f"unknown predictor kind {kind!r}", str(path))
        return Predictor(arrays, meta)


def metrics(y_true, y_pred) -> dict:
    from scipy.stats import kendalltau, spearmanr
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"kendall_tau": float(kendalltau(y_true, y_pred)[0]), "spearman": float(spearmanr(y_true, y_pred)[0]),
            "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))), "n": int(len(y_true))}


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


def _fit_ridge(X: np.ndarray, bits: np.ndarray, y: np.ndarray, alpha: float, ratio: float,
               lo_alpha: float | None = None, four_bit: str = "separate") -> dict:
    """Linear ridge models: ``hi_*`` for the shared bit-widths (penalty ``alpha``), ``lo_*`` for
    4 bits when separate (penalty ``lo_alpha``, default ``alpha``)."""
    arrays = {}
    hi = np.isin(bits, _bit_sets(four_bit)[0])
    for name, mask, design, a in (("hi", hi, lambda m: _hier_design(X[m], bits[m], ratio, four_bit), alpha),
                                  ("lo", ~hi, lambda m: X[m], alpha if lo_alpha is None else lo_alpha)):
        if mask.any():
            mu, w, b = _ridge(design(mask), y[mask], a)
        else:                                   # no rows at these bit-widths: nothing to predict from
            d = design(np.ones(len(y), bool))
            mu, w, b = np.zeros(d.shape[1]), np.zeros(d.shape[1]), float("nan")
        arrays.update({f"{name}_mean": mu, f"{name}_w": w, f"{name}_b": np.float64(b)})
    return arrays


def _fit_kernel(X, bits, y, lam: float, ratio: float, ell: float, c: float, lo_alpha: float,
                four_bit: str = "separate") -> dict:
    """The shared model as kernel ridge regression; a separate 4-bit one stays linear."""
    arrays = _fit_ridge(X, bits, y, lo_alpha, ratio, four_bit=four_bit)   # lo_*; hi_* replaced below
    hi = np.isin(bits, _bit_sets(four_bit)[0])
    for k in ("hi_mean", "hi_w"):
        arrays.pop(k)
    if hi.any():
        D = _hier_design(X[hi], bits[hi], ratio, four_bit)
        ym = float(y[hi].mean())
        alpha = np.linalg.solve(_kernel(D, D, ell, c) + lam * np.eye(len(D)), y[hi] - ym)
    else:
        D, alpha = np.zeros((0, _hier_design(X[:1], bits[:1], ratio, four_bit).shape[1])), np.zeros(0)
        ym = float("nan")
    arrays.update({"hi_train": D, "hi_alpha": alpha, "hi_b": np.float64(ym)})
    return arrays


KERNEL_GRID = [(lam, ell, c) for lam in (0.3, 1.0, 3.0) for ell in (3.0, 5.0, 8.0) for c in (0.5, 2.0)]


def _grouped_cv_rmse(groups, scored, seed: int, folds: int, residuals) -> float:
    """RMSE on the ``scored`` rows (a mask) over folds of genomes (``groups``: a genome id per
    row; the fold of a genome is seeded): ``residuals(train, test)`` (row masks) returns
    prediction - truth on the test rows."""
    n_groups = int(groups.max()) + 1
    fold = (np.random.default_rng(seed).permutation(n_groups) % folds)[groups]
    err = []
    for k in range(min(folds, n_groups)):
        tr, te = fold != k, (fold == k) & scored
        if te.any() and (tr & scored).any():
            err.append(residuals(tr, te) ** 2)
    return float(np.sqrt(np.mean(np.concatenate(err)))) if err else float("inf")


def _select_kernel(X, bits, y, groups, seed: int, folds: int = 5, ratio: float = 0.3, four_bit: str = "separate"):
    """(lam, ell, c, CV RMSE) over KERNEL_GRID, on the rows of the shared bit-widths."""
    D, hi = _hier_design(X, bits, ratio, four_bit), np.isin(bits, _bit_sets(four_bit)[0])
    best = None
    for lam, ell, c in KERNEL_GRID:
        def residuals(tr, te):
            tr = tr & hi
            ym = y[tr].mean()
            alpha = np.linalg.solve(_kernel(D[tr], D[tr], ell, c) + lam * np.eye(int(tr.sum())), y[tr] - ym)
            return _kernel(D[te], D[tr], ell, c) @ alpha + ym - y[te]
        rmse = _grouped_cv_rmse(groups, hi, seed, folds, residuals)
        if best is None or rmse < best[3] - 1e-12:
            best = (lam, ell, c, rmse)
    return best


ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
RATIOS = (0.1, 0.3, 1.0)


def _select_ridge(X, bits, y, groups, seed: int, folds: int = 5,
                  four_bit: str = "separate") -> tuple[float, float, float]:
    """(alpha, ratio, CV RMSE): the penalties with the lowest RMSE at the shared bit-widths."""
    best = None
    for alpha in ALPHAS:
        for ratio in RATIOS:
            def residuals(tr, te):
                A = _fit_ridge(X[tr], bits[tr], y[tr], alpha, ratio, four_bit=four_bit)
                D = _hier_design(X[te], bits[te], ratio, four_bit)
                return (D - A["hi_mean"]) @ A["hi_w"] + float(A["hi_b"]) - y[te]
            rmse = _grouped_cv_rmse(groups, np.isin(bits, _bit_sets(four_bit)[0]), seed, folds, residuals)
            if best is None or rmse < best[2] - 1e-12:
                best = (alpha, ratio, rmse)
    return best


LO_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def _select_lo_alpha(X, bits, y, groups, seed: int, folds: int = 5) -> tuple[float, float]:
    """(alpha, CV RMSE) of the 4-bit ridge model (NaN RMSE without 4-bit rows)."""
    lo = bits == 4
    if not lo.any():
        return 10.0, float("nan")
    best = None
    for alpha in LO_ALPHAS:
        def residuals(tr, te):
            mu, w, b = _ridge(X[tr & lo], y[tr & lo], alpha)
            return (X[te] - mu) @ w + b - y[te]
        rmse = _grouped_cv_rmse(groups, lo, seed, folds, residuals)
        if best is None or rmse < best[1] - 1e-12:
            best = (alpha, rmse)
    return best


def fit(rows: list[dict], seed: int = 0, kind: str = "kernel", use_summary: bool = True, hidden: int = 128,
        epochs: int = 400, members: int = 5, weight_decay: float = 1e-4) -> Predictor:
    """A predictor fitted on all of ``rows``."""
    if kind not in KINDS:
        raise SpecError("--kind", f"expected one of {', '.join(KINDS)}, not {kind!r}")
    genomes = [r["genome"] for r in rows]
    meta = {"kind": kind, "seed": seed, "summary": bool(use_summary), "train": len(rows)}
    if use_summary:
        sm = summary(genomes)
        meta["summary_mean"], meta["summary_std"] = sm.mean(0).tolist(), (sm.std(0) + 1e-6).tolist()
    if kind in ("ridge", "kernel"):
        X = base_features(genomes, meta)
        bits = np.array([int(r["bits"]) for r in rows])
        y = np.array([r["top1"] for r in rows], float)
        groups = genome_ids(genomes)[0]
        lo_alpha, lo_cv = _select_lo_alpha(X, bits, y, groups, seed)
        meta.update({"lo_alpha": lo_alpha, "cv_rmse_4": lo_cv})
        n4, n = int((bits == 4).sum()), len(bits)
        best, by_four = None, {}
        for four in FOUR_BIT if n4 else ("separate",):
            if kind == "kernel":
                ratio = 0.3
                lam, ell, c, cv = _select_kernel(X, bits, y, groups, seed, ratio=ratio, four_bit=four)
                settings = {"lam": lam, "ell": ell, "c": c, "ratio": ratio}
            else:
                alpha, ratio, cv = _select_ridge(X, bits, y, groups, seed, four_bit=four)
                settings = {"alpha": alpha, "ratio": ratio}
            # the CV RMSE over all rows: a separate 4-bit model adds its own CV error
            cv_all = cv if four == "shared" else float(np.sqrt(((n - n4) * cv ** 2 + n4 * (lo_cv if n4 else 0) ** 2) / n))
            by_four[four] = cv_all
            if best is None or cv_all < best[0] - 1e-12:
                best = (cv_all, four, settings, cv)
        cv_all, four, settings, cv = best
        meta.update(settings, four_bit=four, cv_rmse_all=cv_all, cv_rmse_all_by_four_bit=by_four,
                    **({"cv_rmse_6_8_16": cv} if four == "separate" else {}))
        if kind == "kernel":
            return Predictor(_fit_kernel(X, bits, y, settings["lam"], settings["ratio"], settings["ell"], settings["c"],
                                         lo_alpha, four), meta)
        return Predictor(_fit_ridge(X, bits, y, settings["alpha"], settings["ratio"], lo_alpha, four), meta)
    X = features(genomes, [r["bits"] for r in rows], meta)
    y = np.array([r["top1"] for r in rows], np.float32)
    mu, sd = float(y.mean()), float(y.std() + 1e-6)
    arrays = {}
    for m in range(members):
        for i, (W, b) in enumerate(_fit_mlp(X, (y - mu) / sd, seed + 1000 * m, hidden, epochs, weight_decay)):
            arrays[f"m{m}_W{i}"], arrays[f"m{m}_b{i}"] = W, b
    meta.update({"hidden": hidden, "epochs": epochs, "members": members, "layers": 3, "weight_decay": weight_decay,
                 "features": int(X.shape[1]), "y_mean": mu, "y_std": sd})
    return Predictor(arrays, meta)


def evaluate(pred: Predictor, rows: list[dict]) -> dict:
    """Metrics of ``pred`` on ``rows``, over all of them and per bit-width (the ranking within one
    bit-width is what a search at fixed hardware bits sees)."""
    y = np.array([r["top1"] for r in rows], float)
    p = pred.predict([r["genome"] for r in rows], [r["bits"] for r in rows])
    m = metrics(y, p)
    b = np.array([int(r["bits"]) for r in rows])
    m["per_bits"] = {str(v): metrics(y[b == v], p[b == v]) for v in BITS if (b == v).sum() >= 3}
    return m


def train_predictor(rows: list[dict], seed: int = 0, holdout: float = 0.2, kind: str = "kernel",
                    use_summary: bool = True, hidden: int = 128, epochs: int = 400,
                    members: int = 5, extra: list[dict] | None = None) -> tuple[Predictor, dict]:
    """Fit on the rows of (1 - holdout) of the measured genomes; report metrics on the held-out
    genomes (all rows and per bit-width). The returned predictor is the one those figures are of.

    ``extra``: further measured rows (e.g. extreme subnets, or front designs a verified search
    measured: ``codesign add-measured``) that only ever join the fitting part: the held-out
    genomes, and so the reported figures, are those of ``rows`` alone, and an extra row of a
    held-out genome is left out (never fitted on a genome it is judged on). Where an extra row
    measures the same (genome, bit-width) as a training row, both are kept (two measurements)."""
    if len(rows) < 20:
        raise SpecError("dataset", f"needs at least 20 measured subnets, has {len(rows)}")
    train, test = split_by_genome(rows, holdout, seed)
    if len(train) == 0:
        raise SpecError("dataset", "needs at least 2 distinct genomes")
    fit_rows = [rows[i] for i in train]
    used, dropped = [], 0
    if extra:
        from codesign.space.genome import DEFAULT_SPACE, subnet_key
        held = {subnet_key(DEFAULT_SPACE.canonical(rows[i]["genome"])) for i in test}
        for r in extra:
            if subnet_key(DEFAULT_SPACE.canonical(r["genome"])) in held:
                dropped += 1
            else:
                used.append(r)
    pred = fit(fit_rows + used, seed=seed, kind=kind, use_summary=use_summary, hidden=hidden,
               epochs=epochs, members=members)
    m = evaluate(pred, [rows[i] for i in test])
    pred.meta.update({"test": int(len(test)), "heldout": m, "holdout": holdout,
                      "genomes": {"train": len({json.dumps(rows[i]["genome"], sort_keys=True) for i in train}),
                                  "test": len({json.dumps(rows[i]["genome"], sort_keys=True) for i in test})}})
    if extra is not None:
        pred.meta["extra"] = {"rows": len(used), "left_out_heldout_genome": dropped,
                              "genomes": len({json.dumps(r["genome"], sort_keys=True) for r in used})}
    from codesign.predictors.accuracy.protocols import count_protocols
    # the measurement protocol of every fitted row (rows without one: "unrecorded")
    pred.meta["protocols"] = {"base": count_protocols(fit_rows), "extra": count_protocols(used)}
    return pred, m
