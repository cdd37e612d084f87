"""A learned latency / energy predictor for the co-search (hardware-aware NAS in the style of
nn-Meter): the accelerator model with every layer mapped costs 1-5 s per new candidate; this
predicts a batch of candidates at ~3-5 us each (2 ms for a single one).

It works per layer (nn-Meter's kernel-level prediction) and adds up over the network's layers.
The features (:mod:`codesign.predictors.features`) include closed-form bounds the model's numbers
mostly sit on, so the heads predict log residuals against them: log cycles, log DRAM energy and
log on-chip energy (energy = DRAM + on-chip). An ensemble of small MLPs (5 x 2 hidden layers of
64) trained with torch on the model's per-layer outputs (:mod:`codesign.predictors.cost_data`), with an
extra loss on the network totals, is stored as a plain .npz; inference is numpy, vectorized over
all layers of all candidates.

Measured (415 candidates of specs/spaces/default.yaml at mapper budget 1500, 5-fold by candidate):
latency within +-10% of the model for 99.0% of candidates (MAPE 1.4%), energy 98.1% (MAPE 2.5%).

The public names of ``cost_data`` and ``cost_features`` are importable from here as well.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

from codesign.predictors.archive import load_npz, save_npz
from codesign.predictors.cost_data import FORMAT, SHAPE_KEYS, candidate, cost_dataset, evaluate_cost, layer_shape, read_dataset
from codesign.predictors.features import (BASES, LayerTable, analytic, dataflow_dims, hw_energy, hw_matrix, layer_features,
                                          reference_hw, spatial_best, spatial_lookup, template_info)
from codesign.space.hardware import hardware_metrics

__all__ = ["FORMAT", "SHAPE_KEYS", "DRAM_TYPES", "candidate", "cost_dataset", "evaluate_cost", "layer_shape",
           "read_dataset", "BASES", "LayerTable", "analytic", "dataflow_dims", "hw_energy", "hw_matrix",
           "layer_features", "reference_hw", "spatial_best", "spatial_lookup", "template_info", "OUTPUTS", "SMALL",
           "CostPredictor", "predictor_meta", "split_rows", "fit", "evaluate_predictor", "train_cost_predictor"]

DRAM_TYPES = ("LPDDR4", "HBM2", "GDDR5", "DDR3")


# ----------------------------------------------------------------------------- the predictor

OUTPUTS = {"direct": ("cycles", "energy"),                 # per-layer log cycles, log energy
           "split": ("cycles", "dram", "rest"),            # energy = DRAM energy + the rest
           "aux": ("cycles", "energy", "compute", "dram")}  # extra targets only as multi-task help


SMALL = 1024     # rows below which matrix products avoid BLAS threads (they stall on a busy machine)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,jk->ik", a, b) if len(a) < SMALL else a @ b


def _mlp(h: np.ndarray, layers) -> np.ndarray:
    for i, (W, b) in enumerate(layers):
        h = _matmul(h, W) + b
        if i < len(layers) - 1:
            np.maximum(h, 0, out=h)
    return h


def _combine(logs: np.ndarray, outputs) -> np.ndarray:
    """(M, 2) per-layer cycles and energy from the heads' log outputs (numpy or torch)."""
    exp = np.exp if isinstance(logs, np.ndarray) else __import__("torch").exp
    cyc = exp(logs[:, outputs.index("cycles")])
    if "energy" in outputs:
        en = exp(logs[:, outputs.index("energy")])
    else:
        en = exp(logs[:, outputs.index("dram")]) + exp(logs[:, outputs.index("rest")])
    stack = np.stack if isinstance(logs, np.ndarray) else __import__("torch").stack
    return stack([cyc, en], 1)


@dataclass
class CostPredictor:
    """Latency (ms) and energy (uJ) of joint genomes: per-layer MLPs on log features (an
    ensemble averages their log outputs), exponentiated and summed over the network's layers."""
    members: list         # [[(W, b), ...], ...] float32, one MLP per ensemble member
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray    # (outputs,) of the log targets
    y_std: np.ndarray
    meta: dict
    chunk: int = 2048     # candidates per numpy batch

    def __post_init__(self):
        self._table = None
        self._spatial: dict = {}
        self._energy: dict = {}
        self._first = None
        self._scale = (1.0 / self.x_std).astype(np.float32)
        self.outputs = tuple(self.meta.get("outputs", OUTPUTS["direct"]))

    @property
    def table(self) -> LayerTable:
        if self._table is None:
            from codesign.space.genome import SearchSpace
            self._table = LayerTable(SearchSpace(**{k: (tuple(v) if isinstance(v, list) else v)
                                                    for k, v in self.meta["net_space"].items()}))
        return self._table

    def layer_log(self, shapes: np.ndarray, hw: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """(M, outputs) predicted log targets of (layer, hardware) rows (``ids``: indices into the
        layer table's distinct shapes, when the rows come from it)."""
        x, base = layer_features(shapes, hw, self.meta, ids, None if ids is None else self._spatial)
        x -= self.x_mean
        x *= self._scale
        if self._first is None:           # the members' first layers as one matrix product
            self._first = (np.concatenate([m[0][0] for m in self.members], 1),
                           np.concatenate([m[0][1] for m in self.members]))
        h = _matmul(x, self._first[0])
        h += self._first[1]
        np.maximum(h, 0, out=h)
        out, a = 0, 0
        for m in self.members:
            w = m[0][0].shape[1]
            out = out + _mlp(h[:, a:a + w], m[1:])
            a += w
        y = (out / len(self.members)).astype(np.float64) * self.y_std + self.y_mean
        if self.meta.get("residual"):
            y += base[:, [BASES.index(o) for o in self.outputs]]
        return y

    def layer_cost(self, shapes: np.ndarray, hw: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """(M, 2) predicted cycles and energy (pJ) per (layer, hardware) row."""
        return _combine(self.layer_log(shapes, hw, ids), self.outputs)

    def predict_cycles_energy(self, genomes) -> tuple[np.ndarray, np.ndarray]:
        """(cycles, energy_pj) per joint genome."""
        genomes = list(genomes)
        cyc, en = np.zeros(len(genomes)), np.zeros(len(genomes))
        for a in range(0, len(genomes), self.chunk):
            part = genomes[a:a + self.chunk]
            try:
                nets, hws = [g["net"] for g in part], [g["hw"] for g in part]
            except (KeyError, TypeError):
                raise SpecError("genome", "must be {'net': {...}, 'hw': {...}}") from None
            hw = hw_matrix(hws, self.meta, self._energy)
            shapes, owner, ids = self.table.shapes(nets)
            # a layer shape repeated within a network (equal blocks of a stage) is predicted once
            key, count = np.unique(owner * len(self.table.unique_shapes) + ids, return_counts=True)
            owner, ids = key // len(self.table.unique_shapes), key % len(self.table.unique_shapes)
            y = self.layer_cost(self.table.unique_shapes[ids], hw[owner], ids) * count[:, None]
            cyc[a:a + len(part)] = np.bincount(owner, y[:, 0], len(part))
            en[a:a + len(part)] = np.bincount(owner, y[:, 1], len(part))
        return cyc, en

    def predict(self, genomes) -> tuple[np.ndarray, np.ndarray]:
        """(latency_ms, energy_uj) arrays, one entry per joint genome."""
        cyc, en = self.predict_cycles_energy(genomes)
        return 1e3 * cyc / (self.meta["clock_ghz"] * 1e9), en / 1e6

    def check_space(self, space) -> None:
        """SpecError unless ``space`` is one this predictor was trained for (same template, buffer
        levels and network space; PE counts within range)."""
        net = space.net
        want = {"stages": net.stages, "max_depth": net.max_depth, "kernels": list(net.kernels),
                "expands": list(net.expands), "depths": list(net.depths), "resolutions": list(net.resolutions)}
        if space.hw.template_spec != self.meta["template_text"]:
            raise SpecError("cost predictor", f"trained on template {self.meta['template']!r}, the space uses "
                            f"{space.hw.template!r} (or another version of it)")
        if [lv for lv, _ in space.hw.sizes] != self.meta["size_levels"] or want != self.meta["net_space"]:
            raise SpecError("cost predictor", "trained on another space (buffer size genes or network space differ)")
        if max(max(space.hw.values("pe_x")), max(space.hw.values("pe_y"))) > self.meta["pe_cap"]:
            raise SpecError("cost predictor", f"PE array sides above {self.meta['pe_cap']} were not trained on")

    def metrics(self, space, net: dict, hw: dict) -> dict:
        """The hardware cost interface of ``codesign.search.problem.MappedCost``, predicted."""
        return self.hardware_metrics(space, [{"net": net, "hw": hw}])[0]

    def hardware_metrics(self, space, genomes) -> list[dict]:
        """What ``Evaluator.hardware`` returns, per joint genome, with latency / energy (and so
        EDP, utilization) predicted and area / on-chip memory exact from the architecture."""
        genomes = list(genomes)
        lat, en = self.predict(genomes)
        macs = self.macs([g["net"] for g in genomes])
        out = []
        for g, l, e, m in zip(genomes, lat, en, macs):
            arch = space.hw.architecture(g["hw"])
            cycles = l * 1e-3 * self.meta["clock_ghz"] * 1e9
            out.append(hardware_metrics(arch, float(l), float(e), m, m / (cycles * arch.compute.instances)))
        return out

    def macs(self, nets) -> np.ndarray:
        """Exact MACs per network genome (from the layer table)."""
        shapes, owner, _ = self.table.shapes(list(nets))
        return np.bincount(owner, shapes[:, :8].astype(np.float64).prod(1), len(nets)).round().astype(np.int64)

    def save(self, path) -> None:
        arrays = {}
        for k, layers in enumerate(self.members):
            for i, (W, b) in enumerate(layers):
                arrays[f"m{k}_W{i}"], arrays[f"m{k}_b{i}"] = W, b
        save_npz(path, self.meta, dict(x_mean=self.x_mean, x_std=self.x_std, y_mean=self.y_mean, y_std=self.y_std,
                                       **arrays))

    @staticmethod
    def load(path) -> "CostPredictor":
        meta, z = load_npz(path, "cost predictor", "a cost predictor file")
        try:
            members = []
            while f"m{len(members)}_W0" in z:
                k, layers = len(members), []
                while f"m{k}_W{len(layers)}" in z:
                    i = len(layers)
                    layers.append((z[f"m{k}_W{i}"].astype(np.float32), z[f"m{k}_b{i}"].astype(np.float32)))
                members.append(layers)
            out = CostPredictor(members, z["x_mean"].astype(np.float32), z["x_std"].astype(np.float32),
                                z["y_mean"].astype(np.float64), z["y_std"].astype(np.float64), meta)
        except Exception as e:            # missing arrays or meta keys: a foreign file
            raise SpecError("cost predictor", f"not a cost predictor file ({type(e).__name__}: {e})", str(path)) from None
        if (not members or meta.get("kind") != "cost_predictor"
                or any(m[-1][0].shape[1] != len(out.outputs) for m in members)):
            raise SpecError("cost predictor", "not a cost predictor file", str(path))
        return out


# ----------------------------------------------------------------------------- training

def _metrics(true: np.ndarray, pred: np.ndarray) -> dict:
    from scipy.stats import kendalltau
    rel = pred / true - 1
    return {"within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
            "kendall_tau": float(kendalltau(true, pred)[0]), "mape": float(np.mean(np.abs(rel))),
            "max_ape": float(np.max(np.abs(rel))), "median_error": float(np.median(rel))}


def _rows_arrays(rows, meta, outputs):
    """Per-layer (shapes, hw, log targets) and per-candidate owner index of mapped rows."""
    shapes, ys, owner = [], [], []
    hw = hw_matrix([r["genome"]["hw"] for r in rows], meta)
    for n, r in enumerate(rows):
        for l in r["layers"]:
            shapes.append([l["shape"][k] for k in SHAPE_KEYS])
            dram = next(iter(l["level_energy_pj"].values()))          # the outermost level
            t = {"cycles": l["cycles"], "energy": l["energy_pj"], "compute": l["compute_cycles"], "dram": dram,
                 "rest": l["energy_pj"] - dram}
            ys.append([max(t[o], 1e-3) for o in outputs])
            owner.append(n)
    owner = np.array(owner)
    return np.array(shapes, np.int64), hw[owner], np.log(np.array(ys, np.float64)), owner


def predictor_meta(space, rows) -> dict:
    from accelerators.spec import DATAFLOWS
    clocks = {r["clock_ghz"] for r in rows}
    if len(clocks) != 1:
        raise SpecError("dataset", f"candidates with different clocks {sorted(clocks)}: one template per predictor")
    net = space.net
    return {"kind": "cost_predictor", "version": 1, "space": space.name, "template": space.hw.template,
            "clock_ghz": clocks.pop(), "dataflows": list(DATAFLOWS), "dram_types": list(DRAM_TYPES),
            "size_levels": [lv for lv, _ in space.hw.sizes],
            "pe_cap": int(max(max(space.hw.values("pe_x")), max(space.hw.values("pe_y")))),
            "dataflow_dims": dataflow_dims(space),
            "net_space": {"stages": net.stages, "max_depth": net.max_depth, "kernels": list(net.kernels),
                          "expands": list(net.expands), "depths": list(net.depths),
                          "resolutions": list(net.resolutions)},
            "mapper_budget": sorted({int(r.get("mapper_budget", 0)) for r in rows}), **template_info(space)}


def split_rows(rows, seed: int = 0, holdout: float = 0.2) -> tuple[list, list]:
    """(train, test) mapped candidates, split by candidate with ``default_rng(seed)``."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("layers")]
    order = np.random.default_rng(seed).permutation(len(ok))
    n_test = max(1, int(round(len(ok) * holdout))) if holdout > 0 else 0
    return [ok[i] for i in np.sort(order[n_test:])], [ok[i] for i in np.sort(order[:n_test])]


def fit(train: list[dict], space, seed: int = 0, hidden: int = 64, epochs: int = 200, batch: int = 16,
        net_weight: float = 1.0, lr: float = 3e-3, weight_decay: float = 0.0, members: int = 5,
        outputs: str = "split", depth: int = 2, residual: bool = True) -> CostPredictor:
    """Train a predictor on mapped candidates (every row used)."""
    import torch
    if len(train) < 5:
        raise SpecError("dataset", f"needs at least 5 mapped candidates to train on, has {len(train)}")
    if outputs not in OUTPUTS:
        raise SpecError("outputs", f"one of {', '.join(OUTPUTS)}")
    outs = OUTPUTS[outputs]
    meta = predictor_meta(space, train)
    meta.update(outputs=list(outs), seed=seed, hidden=hidden, depth=depth, epochs=epochs, members=members,
                net_weight=net_weight, weight_decay=weight_decay, train=len(train), residual=residual)
    shapes, hw, y, owner = _rows_arrays(train, meta, outs)
    X, base = layer_features(shapes, hw, meta)
    base = base[:, [BASES.index(o) for o in outs]] if residual else np.zeros_like(y)
    y = y - base
    x_mean, x_std = X.mean(0), X.std(0) + 1e-6
    y_mean, y_std = y.mean(0), y.std(0) + 1e-6
    Xt = torch.from_numpy(((X - x_mean) / x_std).astype(np.float32))
    yt = torch.from_numpy(((y - y_mean) / y_std).astype(np.float32))
    tt = torch.from_numpy(np.log(np.array([(r["cycles"], r["energy_pj"]) for r in train], np.float64)))
    ym, ys = torch.from_numpy(y_mean), torch.from_numpy(y_std)
    bt = torch.from_numpy(base)
    lay_ce = np.log(np.array([(l["cycles"], l["energy_pj"]) for r in train for l in r["layers"]], np.float64))
    tscale = torch.from_numpy(lay_ce.std(0) + 1e-6)          # network-level errors in per-layer std units
    starts = np.searchsorted(owner, np.arange(len(train)))
    counts = np.bincount(owner, minlength=len(train))
    steps = epochs * -(-len(train) // batch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    nets = []
    try:
        for k in range(members):
            torch.manual_seed(seed * 1000 + k)
            mods = [torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU()]
            for _ in range(depth - 1):
                mods += [torch.nn.Linear(hidden, hidden), torch.nn.ReLU()]
            model = torch.nn.Sequential(*mods, torch.nn.Linear(hidden, len(outs)))
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
            gen = np.random.default_rng([seed, k])
            for _ in range(epochs):
                perm = gen.permutation(len(train))
                for i in range(0, len(perm), batch):
                    cands = perm[i:i + batch]
                    idx = torch.from_numpy(np.concatenate([np.arange(starts[c], starts[c] + counts[c]) for c in cands]))
                    out = model(Xt[idx])
                    loss = torch.nn.functional.mse_loss(out, yt[idx])
                    if net_weight:
                        own = torch.from_numpy(np.repeat(np.arange(len(cands)), counts[cands]))
                        lay = _combine(out.double() * ys + ym + bt[idx], outs)                  # (rows, 2) cycles, pJ
                        sums = torch.zeros(len(cands), 2, dtype=torch.float64).index_add_(0, own, lay)
                        loss = loss + net_weight * torch.mean(((torch.log(sums) - tt[cands]) / tscale) ** 2).float()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
            nets.append([(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                         for m in model if isinstance(m, torch.nn.Linear)])
    finally:
        torch.set_num_threads(threads)
    return CostPredictor(nets, x_mean.astype(np.float32), x_std.astype(np.float32), y_mean, y_std, meta)


def evaluate_predictor(pred: CostPredictor, rows: list[dict]) -> dict:
    """Network-level agreement with the model on mapped candidates: per latency and energy, the
    share within +-10% (and 5%), Kendall tau, MAPE, largest error, median signed error."""
    cyc, en = pred.predict_cycles_energy([r["genome"] for r in rows])
    return {"n": len(rows), "latency": _metrics(np.array([r["cycles"] for r in rows], float), cyc),
            "energy": _metrics(np.array([r["energy_pj"] for r in rows], float), en)}


def train_cost_predictor(rows: list[dict], space, seed: int = 0, holdout: float = 0.2,
                         **kw) -> tuple[CostPredictor, dict]:
    """Fit on (1 - holdout) of the mapped candidates (split by candidate, not by layer); return
    the predictor and its held-out metrics at the network level (``evaluate_predictor``).
    ``kw``: model settings of ``fit``."""
    train, test = split_rows(rows, seed, holdout)
    if len(train) + len(test) < 10:
        raise SpecError("dataset", f"needs at least 10 mapped candidates, has {len(train) + len(test)}")
    pred = fit(train, space, seed=seed, **kw)
    m = evaluate_predictor(pred, test)
    m["n_train"] = len(train)
    pred.meta["heldout"] = m
    return pred, m
