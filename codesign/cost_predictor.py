"""A learned latency / energy predictor for the co-search (hardware-aware NAS in the style of
nn-Meter): the accelerator model with every layer mapped costs 1-5 s per new candidate; this
predicts a batch of candidates at ~3-5 us each (2 ms for a single one).

It works per layer (nn-Meter's kernel-level prediction) and adds up over the network's layers.
Per (layer, hardware) row the features are the layer shape (log dims, stride, depthwise, log MACs
and tensor sizes), the hardware genome (PE array, bits, dataflow and DRAM type one-hot, DRAM
bandwidth, buffer sizes, per-action energies of every level read off the template), and closed-form
bounds that mix both: the best number of PEs the dataflow can keep busy given the exact divisors of
the layer's dimensions, compute- and DRAM-bandwidth-bound cycles, DRAM energy with every tensor
moved once, MAC energy, per-level energy of one access per MAC. The model sits on those bounds
(cycles equal the bound for ~93% of layers, DRAM energy -- ~80% of the total -- equals its bound
for ~70%), so the heads predict log residuals against them: log cycles, log DRAM energy and log
on-chip energy (energy = DRAM + on-chip). An ensemble of small MLPs (5 x 2 hidden layers of 64)
trained with torch on the model's per-layer outputs, with an extra loss on the network totals,
is stored as a plain .npz; inference is numpy, vectorized over all layers of all candidates.

Measured (415 candidates of specs/spaces/default.yaml at mapper budget 1500, 5-fold by candidate):
latency within +-10% of the model for 99.0% of candidates (MAPE 1.4%), energy 98.1% (MAPE 2.5%).

Data (``cost_dataset``): one JSON line per sampled joint genome, with the per-layer cycles and
energy and the network totals; candidate ``i`` is drawn from ``default_rng([seed, i])`` so a
rerun continues where a killed one stopped and yields the same file as an uninterrupted run.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from accelerators.errors import MappingError, SpecError

FORMAT = 1                     # dataset line format
SHAPE_KEYS = ("N", "K", "C", "P", "Q", "R", "S", "G", "stride")
DRAM_TYPES = ("LPDDR4", "HBM2", "GDDR5", "DDR3")


# ----------------------------------------------------------------------------- data collection

def layer_shape(work) -> dict:
    """A conv / depthwise / FC workload as ``{N, K, C, P, Q, R, S, G, stride}`` (G = 1 unless grouped)."""
    b = work.bounds
    stride = 1
    for ds in work.dataspaces:
        if ds.name == "Inputs":
            for axis in ds.projection:
                for c, d in axis:
                    if d == "P":
                        stride = int(c)
    out = {k: int(b.get(k, 1)) for k in SHAPE_KEYS[:-1]}
    out["stride"] = stride
    return out


def candidate(space, seed: int, i: int) -> dict:
    """The ``i``-th joint genome of a dataset with ``seed`` (independent of every other index)."""
    return space.sample(np.random.default_rng([int(seed), int(i)]))


def evaluate_cost(space, genome: dict, mapper_budget: int = 1500, cache=None) -> dict:
    """Every layer of the genome's subnet mapped on its architecture (what the Evaluator adds up):
    per-layer shape, cycles, energy; network totals."""
    from accelerators.network import MappingCache
    from .genome_layers import genome_layers
    cache = cache if cache is not None else MappingCache()
    arch = space.hw.architecture(genome["hw"])
    aid = cache.arch_id(arch)
    layers = []
    for layer in genome_layers(genome["net"]):
        ev = cache.get_or_map(layer.work, arch, "dataflow", arch_id=aid, objective="edp", budget=mapper_budget,
                              seed=0)[0].evaluation
        layers.append({"name": layer.name, "shape": layer_shape(layer.work), "macs": int(ev.computes),
                       "cycles": int(ev.cycles), "compute_cycles": int(ev.compute_cycles),
                       "energy_pj": float(ev.energy_pj), "mac_energy_pj": float(ev.mac_energy_pj),
                       "level_energy_pj": {lv.name: float(lv.energy_pj) for lv in ev.levels}})
    cycles = sum(l["cycles"] for l in layers)
    energy = sum(l["energy_pj"] for l in layers)
    return {"clock_ghz": float(arch.clock_ghz), "cycles": int(cycles), "energy_pj": float(energy),
            "latency_ms": 1e3 * cycles / (arch.clock_ghz * 1e9), "energy_uj": energy / 1e6,
            "macs": int(sum(l["macs"] for l in layers)), "layers": layers}


def read_dataset(path, repair: bool = False) -> list[dict]:
    """The rows of a cost dataset. A last line cut short by a killed writer is dropped (and, with
    ``repair``, cut from the file); any other unreadable line is a SpecError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError("dataset", "no such file", str(p))
    data = p.read_bytes()
    rows, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        last = end < 0
        line = data[pos:] if last else data[pos:end]
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "genome" not in row or "i" not in row:
                raise ValueError("not a cost-dataset row")
        except ValueError as e:
            if last:                       # a partial line from a killed run
                if repair:
                    with open(p, "r+b") as f:
                        f.truncate(pos)
                break
            raise SpecError(f"line {len(rows) + 1}", f"not a cost-dataset row ({e})", str(p)) from None
        if last and repair:                # complete JSON but no newline: finish the line
            with open(p, "ab") as f:
                f.write(b"\n")
        rows.append(row)
        if last:
            break
        pos = end + 1
    return rows


def cost_dataset(space, n: int, out_path, seed: int = 0, mapper_budget: int = 1500,
                 progress: bool = True) -> list[dict]:
    """Map ``n`` random joint genomes of ``space`` and append one JSON line each to ``out_path``
    (resumable: rows already there are checked and kept, a cut-off last line is redone)."""
    from accelerators.network import MappingCache
    if not isinstance(n, int) or n < 0:
        raise SpecError("--n", f"must be a non-negative integer, got {n!r}")
    if not isinstance(mapper_budget, int) or mapper_budget < 1:
        raise SpecError("--mapper-budget", f"must be a positive integer, got {mapper_budget!r}")
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = read_dataset(p, repair=True) if p.exists() else []
    for k, r in enumerate(rows):
        want = {"i": k, "seed": seed, "mapper_budget": mapper_budget, "genome": candidate(space, seed, k)}
        got = {key: r.get(key) for key in want}
        if got != want:
            bad = next(key for key in want if got[key] != want[key])
            raise SpecError(f"line {k + 1}.{bad}", f"{got[bad]!r} differs from this run's {want[bad]!r} "
                            "(written with another space, seed or mapper budget; use another --out)", str(p))
    todo = range(len(rows), n)
    it = todo
    if progress and len(todo):
        from tqdm import tqdm
        it = tqdm(todo, desc="cost data", unit="cand", initial=len(rows), total=n)
    cache = MappingCache()
    with open(p, "a") as f:
        for i in it:
            g = candidate(space, seed, i)
            row = {"format": FORMAT, "i": i, "seed": seed, "space": space.name, "mapper_budget": mapper_budget,
                   "genome": g}
            try:
                row.update(status="ok", **evaluate_cost(space, g, mapper_budget, cache))
            except (MappingError, SpecError) as e:
                row.update(status="failed", error=e.one_line())
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
            rows.append(row)
            if len(cache.entries) > 200_000:          # bound memory on long runs
                cache = MappingCache()
    return rows[:n]


# ----------------------------------------------------------------------------- features

def _log(x):
    return np.log(np.maximum(np.asarray(x, np.float64), 1e-12))


def dataflow_dims(space) -> dict:
    """Per dataflow and layer kind (conv / depthwise), the dimensions the PE array may unroll on
    X and on Y (the template's own dataflow constraints)."""
    from accelerators.constraints import dataflow_constraints
    from accelerators.spec import DATAFLOWS
    from accelerators.workload import conv2d, depthwise_conv2d
    hw = {name: vals[0] for name, vals in space.hw.params}
    hw["sizes_kib"] = {lv: vals[0] for lv, vals in space.hw.sizes}
    hw.update(pe_x=2, pe_y=2)
    arch = space.hw.architecture(hw)
    fan = [l for l in range(len(arch.levels)) if arch.fanout(l) != (1, 1)]
    works = {"conv": conv2d(K=4, C=4, P=4, Q=4, R=3, S=3), "depthwise": depthwise_conv2d(C=4, P=4, Q=4, R=3, S=3)}
    out = {}
    for df in DATAFLOWS:
        out[df] = {}
        for kind, w in works.items():
            sx, sy = list(w.dims), list(w.dims)
            if fan:
                c = dataflow_constraints(arch, w, df).of(arch.levels[fan[0]].name)
                sx = list(w.dims) if c.spatial_x is None else list(c.spatial_x)
                sy = list(w.dims) if c.spatial_y is None else list(c.spatial_y)
            out[df][kind] = [sx, sy]
    return out


@lru_cache(maxsize=None)
def _divisors(n: int) -> tuple:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


@lru_cache(maxsize=200_000)
def spatial_best(shape: tuple, xdims: tuple, ydims: tuple, cap: int) -> np.ndarray:
    """``best[a, b]``: the largest number of PEs a mapping can keep busy on an ``a`` x ``b`` array
    when only ``xdims`` / ``ydims`` may be unrolled on X / Y and every spatial factor must divide
    its dimension (perfect factorization, as the mapper's). ``shape`` in SHAPE_KEYS order."""
    c1 = cap + 1
    reach = np.zeros((c1, c1), bool)
    reach[1, 1] = True
    for d, bound in zip(SHAPE_KEYS[:-1], shape[:-1]):
        inx, iny = d in xdims, d in ydims
        if bound == 1 or not (inx or iny):
            continue
        new = reach.copy()
        for f in _divisors(bound)[1:]:
            for fx in _divisors(f):
                fy = f // fx
                if (fx > 1 and not inx) or (fy > 1 and not iny) or fx > cap or fy > cap:
                    continue
                ax, ay = cap // fx, cap // fy
                new[0:ax * fx + 1:fx, 0:ay * fy + 1:fy] |= reach[:ax + 1, :ay + 1]
        reach = new
    a = np.arange(c1)
    best = np.where(reach, a[:, None] * a[None, :], 0)
    best = np.maximum.accumulate(np.maximum.accumulate(best, axis=0), axis=1)
    best.setflags(write=False)
    return best


def template_info(space) -> dict:
    """What the features need from the template: a reference hardware genome of the space, the
    template's text, and per level its width, kept roles and whether it is per PE."""
    arch = space.hw.architecture(reference_hw(space))
    roles = {"Weights": "weights", "Inputs": "inputs", "Outputs": "outputs"}
    levels = [{"name": lv.name, "width_bits": int(lv.width_bits or lv.word_bits),
               "roles": sorted(roles.values()) if lv.keeps is None else sorted(roles[k] for k in lv.keeps if k in roles),
               "per_pe": bool(lv.instances == arch.compute.instances and lv.instances > 1)}
              for lv in arch.levels]
    return {"template_text": space.hw.template_spec, "reference_hw": reference_hw(space), "levels": levels}


def reference_hw(space) -> dict:
    hw = {name: vals[0] for name, vals in space.hw.params}
    hw["sizes_kib"] = {lv: vals[0] for lv, vals in space.hw.sizes}
    return json.loads(json.dumps(hw))


def hw_matrix(hws, meta: dict, cache: dict | None = None) -> np.ndarray:
    """(B, 6 + sizes + energy columns): the raw hardware genes (pe_x, pe_y, bits, dram_bw,
    dataflow index, DRAM type index, buffer sizes in KiB in meta's level order) followed by
    ``hw_energy``'s per-action energies."""
    dfs, dts, levels = meta["dataflows"], meta["dram_types"], meta["size_levels"]
    out = np.empty((len(hws), 6 + len(levels)), np.float64)
    n = 0
    try:
        for n, h in enumerate(hws):
            sz = h["sizes_kib"]
            out[n, :6] = (h["pe_x"], h["pe_y"], h["bits"], h["dram_bw"], dfs.index(h["dataflow"]),
                          dts.index(h["dram_type"]))
            out[n, 6:] = [sz[lv] for lv in levels]
    except (KeyError, ValueError, TypeError) as e:
        raise SpecError(f"genome[{n}].hw", f"not a hardware genome of this predictor's space ({e!r})") from None
    cap = meta["pe_cap"]
    if out.size and (out[:, :2].max() > cap or out[:, :2].min() < 1 or (out[:, :2] % 1).any()):
        raise SpecError("hw.pe_x/pe_y", f"outside the predictor's range 1..{cap}")
    if out.size and (out[:, 2:4].min() <= 0 or (out[:, 6:].size and out[:, 6:].min() <= 0)):
        raise SpecError("hw", "bits, dram_bw and buffer sizes must be positive")
    return np.concatenate([out, hw_energy(out, meta, {} if cache is None else cache)], 1)


def hw_energy(raw: np.ndarray, meta: dict, cache: dict) -> np.ndarray:
    """(B, 6 + 3 x levels) per candidate: bits of weights / inputs / outputs, MAC pJ, DRAM read
    and write pJ per vector, then per on-chip level read / write pJ per vector and leakage pJ per
    cycle per instance -- read off the template's architecture built for each distinct value of
    the genes they depend on (a level's own size and the bits; the DRAM type), cached."""
    from .space import _build
    ref = meta["reference_hw"]
    lv_names = [lv["name"] for lv in meta["levels"]]
    size_col = {name: 6 + i for i, name in enumerate(meta["size_levels"])}

    def arch(**change):
        hw = json.loads(json.dumps(ref))
        sizes = change.pop("sizes_kib", {})
        hw.update(change)
        hw["sizes_kib"].update(sizes)
        return _build(meta["template_text"], json.dumps(hw, sort_keys=True))

    def per_unique(tag, cols, fn, width):
        keys = raw[:, cols]
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        vals = np.empty((len(uniq), width))
        for u, key in enumerate(uniq.tolist()):
            ck = (tag, tuple(key))
            if ck not in cache:
                cache[ck] = fn(*key)
            vals[u] = cache[ck]
        return vals[inv.ravel()]

    def bits_part(b):
        a = arch(bits=int(b))
        return [a.levels[0].bits_of("weights"), a.levels[0].bits_of("inputs"), a.levels[0].bits_of("outputs"),
                a.compute.energy_pj]

    def dram_part(b, t):
        e = arch(bits=int(b), dram_type=meta["dram_types"][int(t)]).levels[0].energy
        return [e.read_pj, e.write_pj]

    parts = [per_unique("bits", [2], bits_part, 4), per_unique("dram", [2, 5], dram_part, 2)]
    for j, name in enumerate(lv_names[1:], start=1):
        if name in size_col:
            def lvl(b, size, j=j, name=name):
                e = arch(bits=int(b), sizes_kib={name: float(size)}).levels[j].energy
                return [e.read_pj, e.write_pj, e.leak_pj]
            parts.append(per_unique(name, [2, size_col[name]], lvl, 3))
        else:
            def lvl(b, j=j):
                e = arch(bits=int(b)).levels[j].energy
                return [e.read_pj, e.write_pj, e.leak_pj]
            parts.append(per_unique(name, [2], lvl, 3))
    return np.concatenate(parts, 1)


BASES = ("cycles", "energy", "dram", "rest", "compute")


def analytic(shapes: np.ndarray, hw: np.ndarray, meta: dict, ids=None, cache=None) -> dict:
    """Closed-form bounds per (layer, hardware) row that the model's numbers mostly sit on:
    the best spatial PE count under the dataflow, compute / DRAM-bandwidth cycles, DRAM energy
    with every tensor moved once, MAC energy, per-level energy of one access per MAC and of one
    pass over each kept tensor, leakage over the bound cycles."""
    s = shapes.astype(np.float64)
    N, K, C, P, Q, R, S, G, st = s.T
    pex, pey, bits, bw = hw[:, 0], hw[:, 1], hw[:, 2], hw[:, 3]
    e = hw[:, 6 + len(meta["size_levels"]):]
    T = {"weights": G * K * C * R * S, "inputs": N * G * C * ((P - 1) * st + R) * ((Q - 1) * st + S),
         "outputs": N * G * K * P * Q}
    rb = {"weights": e[:, 0], "inputs": e[:, 1], "outputs": e[:, 2]}
    macs = N * K * C * P * Q * R * S * G
    spatial = spatial_lookup(shapes, hw, meta, ids, cache)
    cyc = np.maximum.reduce([macs / spatial, (T["weights"] + T["inputs"]) / bw, T["outputs"] / bw])
    dw = meta["levels"][0]["width_bits"]
    dram = (np.ceil(T["weights"] * rb["weights"] / dw) + np.ceil(T["inputs"] * rb["inputs"] / dw)) * e[:, 4] \
        + np.ceil(T["outputs"] * rb["outputs"] / dw) * e[:, 5]
    mac = macs * e[:, 3]
    per_mac, once, leak = [], [], np.zeros(len(s))
    for j, lv in enumerate(meta["levels"][1:]):
        rd, wr, lk = e[:, 6 + 3 * j], e[:, 7 + 3 * j], e[:, 8 + 3 * j]
        word = [rd * rb[r] / lv["width_bits"] for r in lv["roles"]]
        per_mac.append(macs * sum(word) if word else np.zeros(len(s)))
        once.append(sum(T[r] * w for r, w in zip(lv["roles"], word)) if word else np.zeros(len(s)))
        leak += lk * (pex * pey if lv["per_pe"] else 1.0)
    leak_e = leak * cyc
    # on-chip estimate: PE-local levels touched once per MAC, chip-level ones once per MAC divided
    # by the square root of the spatial fan-out (multicast and reuse in the PEs)
    onchip = sum(pm if lv["per_pe"] else pm / np.sqrt(spatial) for pm, lv in zip(per_mac, meta["levels"][1:]))
    rest = mac + leak_e + onchip
    return {"macs": macs, "T": T, "spatial": spatial, "cycles": cyc, "compute": macs / spatial, "dram": dram,
            "mac": mac, "per_mac": per_mac, "once": once, "leak": leak_e, "energy": dram + rest, "rest": rest}


def layer_features(shapes: np.ndarray, hw: np.ndarray, meta: dict, ids: np.ndarray | None = None,
                   cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(M, F) features of M (layer, hardware) rows and (M, len(BASES)) the log analytic bases the
    heads predict residuals against. ``shapes`` (M, 9) in SHAPE_KEYS order, ``hw`` (M, ...) rows of
    ``hw_matrix``; ``ids``, ``cache``: see ``spatial_lookup``."""
    s = shapes.astype(np.float64)
    N, K, C, P, Q, R, S, G, st = s.T
    pex, pey, bits, bw, df, dt = hw[:, :6].T
    ns = len(meta["size_levels"])
    sizes, energies = hw[:, 6:6 + ns], hw[:, 6 + ns:]
    a = analytic(shapes, hw, meta, ids, cache)
    macs, T, spatial = a["macs"], a["T"], a["spatial"]
    W, I, O = T["weights"], T["inputs"], T["outputs"]
    wb = np.maximum(16, 2 * bits)
    pes = pex * pey
    nd, nt = len(meta["dataflows"]), len(meta["dram_types"])
    cols = [_log(s[:, :8]), st[:, None], (G > 1)[:, None],
            _log(np.stack([macs, W, I, O, pex, pey, pes, bits, wb, bw], 1)),
            np.eye(nd)[df.astype(int)], np.eye(nt)[dt.astype(int)],
            _log(sizes), _log(sizes * 8192 / wb[:, None]), _log(energies),
            _log(np.stack([macs / pes, spatial, spatial / pes, macs / spatial, (W + I + O) / bw, W / bw, I / bw,
                           O / bw, W / pes, O / pes, I / pes, a["cycles"], a["dram"], a["mac"], a["leak"] + 1e-3,
                           a["energy"], a["rest"]], 1)),
            _log(np.stack(a["per_mac"] + a["once"], 1) + 1e-3)]
    X = np.concatenate(cols, 1).astype(np.float32)
    return X, _log(np.stack([a[k] for k in BASES], 1))


def spatial_lookup(shapes: np.ndarray, hw: np.ndarray, meta: dict, ids: np.ndarray | None = None,
                   cache: dict | None = None) -> np.ndarray:
    """Best spatial PE count per (layer, hardware) row (``spatial_best``), vectorized over rows:
    one table per distinct (shape, dataflow). ``ids``: row -> index of its shape among the
    distinct shapes (computed when not given); ``cache``: a dict keeping the tables between calls,
    keyed like ``ids``."""
    cap = int(meta["pe_cap"])
    if ids is None:
        uniq, ids = np.unique(shapes, axis=0, return_inverse=True)
        ids = ids.ravel()
        first = np.zeros(len(uniq), np.int64)
        first[ids] = np.arange(len(ids))
    else:
        first = None
    nd = len(meta["dataflows"])
    key = ids.astype(np.int64) * nd + hw[:, 4].astype(np.int64)
    ukeys, inv = np.unique(key, return_inverse=True)
    cache = {} if cache is None else cache
    if first is None:
        first = {}
        missing = [k for k in ukeys.tolist() if k not in cache]
        if missing:
            pos = np.searchsorted(ukeys, missing)
            rows = np.zeros(len(ukeys), np.int64)
            rows[inv.ravel()] = np.arange(len(key))
            first = dict(zip(missing, rows[pos].tolist()))
    else:
        first = {int(k): int(first[k // nd]) for k in ukeys.tolist() if int(k) not in cache}
    for k, row in first.items():
        shape = tuple(int(v) for v in shapes[row])
        xd, yd = meta["dataflow_dims"][meta["dataflows"][k % nd]]["depthwise" if shape[7] > 1 else "conv"]
        cache[k] = spatial_best(shape, tuple(xd), tuple(yd), cap)
    tables = np.stack([cache[k] for k in ukeys.tolist()])
    out = tables[inv.ravel(), hw[:, 0].astype(np.int64), hw[:, 1].astype(np.int64)]
    return np.maximum(out, 1).astype(np.float64)


# ----------------------------------------------------------------------------- the network's layers, as a table

class LayerTable:
    """Every layer a genome of the network space can run, indexed so that a batch of genomes
    becomes a (candidates x layers) gather: the blocks' layers depend only on (slot, r, k, e),
    the fixed layers (stem, head, ...) only on r. Built once from ``genome_layers``."""

    def __init__(self, net_space):
        import re
        from .genome_layers import genome_layers
        sp = self.space = net_space
        self.kernels, self.expands = np.array(sp.kernels), np.array(sp.expands)
        self.depths, self.res = np.array(sp.depths), np.array(sp.resolutions)
        nr, nk, ne = len(sp.resolutions), len(sp.kernels), len(sp.expands)
        pat = re.compile(r"^s(\d+)\.b(\d+)\.(\w+)$")
        roles: list = []
        fixed: list = []
        block, fixed_shapes = {}, {}
        for ri, r in enumerate(sp.resolutions):
            for ki, k in enumerate(sp.kernels):
                for ei, e in enumerate(sp.expands):
                    g = {"ks": [k] * sp.slots, "e": [e] * sp.slots, "d": [max(sp.depths)] * sp.stages, "r": r}
                    for layer in genome_layers(g, space=sp):
                        m = pat.match(layer.name)
                        shp = tuple(layer_shape(layer.work).values())
                        if m:
                            slot = int(m.group(1)) * sp.max_depth + int(m.group(2))
                            if (slot, m.group(3)) not in roles:
                                roles.append((slot, m.group(3)))
                            block[(slot, m.group(3), ri, ki, ei)] = shp
                        else:
                            if layer.name not in fixed:
                                fixed.append(layer.name)
                            if fixed_shapes.setdefault((layer.name, ri), shp) != shp:
                                raise RuntimeError(f"layer {layer.name} depends on more than the resolution")
        self.roles, self.fixed = roles, fixed
        self.block = np.zeros((len(roles), nr, nk, ne, 9), np.int64)
        for j, (slot, role) in enumerate(roles):
            for ri in range(nr):
                for ki in range(nk):
                    for ei in range(ne):
                        self.block[j, ri, ki, ei] = block[(slot, role, ri, ki, ei)]
        self.role_slot = np.array([slot for slot, _ in roles])
        self.fixed_shapes = np.array([[fixed_shapes[(name, ri)] for ri in range(nr)] for name in fixed], np.int64)
        both = np.concatenate([self.block.reshape(-1, 9), self.fixed_shapes.reshape(-1, 9)])
        self.unique_shapes, inv = np.unique(both, axis=0, return_inverse=True)
        inv = inv.ravel()
        self.block_id = inv[:self.block[..., 0].size].reshape(self.block.shape[:-1])
        self.fixed_id = inv[self.block[..., 0].size:].reshape(self.fixed_shapes.shape[:-1])

    @staticmethod
    def _index(choices: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
        order = np.argsort(choices)
        pos = np.clip(np.searchsorted(choices[order], values), 0, len(choices) - 1)
        idx = order[pos]
        bad = choices[idx] != values
        if bad.any():
            raise SpecError(f"net.{what}", f"{values[bad].ravel()[0]!r} is not one of {choices.tolist()}")
        return idx

    def shapes(self, nets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M, 9) layer shapes of all genomes' subnets, (M,) the genome each belongs to and (M,)
        the index of each shape in ``unique_shapes``."""
        sp = self.space
        try:
            ks = np.array([n["ks"] for n in nets], np.int64).reshape(len(nets), sp.slots)
            es = np.array([n["e"] for n in nets], np.int64).reshape(len(nets), sp.slots)
            ds = np.array([n["d"] for n in nets], np.int64).reshape(len(nets), sp.stages)
            rs = np.array([n["r"] for n in nets], np.int64).reshape(len(nets))
        except (KeyError, ValueError, TypeError) as e:
            raise SpecError("net", f"not a network genome (ks, e, d, r): {e}") from None
        ki, ei = self._index(self.kernels, ks, "ks"), self._index(self.expands, es, "e")
        self._index(self.depths, ds, "d")
        ri = self._index(self.res, rs, "r")
        B = len(nets)
        slot = self.role_slot
        stage, pos = slot // sp.max_depth, slot % sp.max_depth
        active = pos[None, :] < ds[:, stage]                                  # (B, roles)
        bid = self.block_id[np.arange(len(slot))[None, :], ri[:, None], ki[:, slot], ei[:, slot]][active]
        fid = self.fixed_id[:, ri].T.ravel()                                   # (B * fixed,)
        ids = np.concatenate([fid, bid])
        owner = np.concatenate([np.repeat(np.arange(B), len(self.fixed)), np.nonzero(active)[0]])
        return self.unique_shapes[ids], owner, ids


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
            from .genome import SearchSpace
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

    def hardware_metrics(self, space, genomes) -> list[dict]:
        """What ``Evaluator.hardware`` returns, per joint genome, with latency / energy (and so
        EDP, utilization) predicted and area / on-chip memory exact from the architecture."""
        from .evaluator import onchip_kib
        genomes = list(genomes)
        lat, en = self.predict(genomes)
        macs = self.macs([g["net"] for g in genomes])
        out = []
        for g, l, e, m in zip(genomes, lat, en, macs):
            arch = space.hw.architecture(g["hw"])
            cycles = l * 1e-3 * self.meta["clock_ghz"] * 1e9
            out.append({"latency_ms": float(l), "energy_uj": float(e), "area_mm2": arch.area_um2() / 1e6,
                        "onchip_kib": onchip_kib(arch), "macs": int(m),
                        "utilization": float(m / (cycles * arch.compute.instances)),
                        "edp_uj_ms": float(l * e)})
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
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            np.savez(f, x_mean=self.x_mean, x_std=self.x_std, y_mean=self.y_mean, y_std=self.y_std,
                     meta=np.array(json.dumps(self.meta)), **arrays)

    @staticmethod
    def load(path) -> "CostPredictor":
        p = Path(path)
        if not p.is_file():
            raise SpecError("cost predictor", "no such file", str(p))
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                members = []
                while f"m{len(members)}_W0" in z.files:
                    k, layers = len(members), []
                    while f"m{k}_W{len(layers)}" in z.files:
                        i = len(layers)
                        layers.append((z[f"m{k}_W{i}"].astype(np.float32), z[f"m{k}_b{i}"].astype(np.float32)))
                    members.append(layers)
                out = CostPredictor(members, z["x_mean"].astype(np.float32), z["x_std"].astype(np.float32),
                                    z["y_mean"].astype(np.float64), z["y_std"].astype(np.float64), meta)
        except Exception as e:            # zip / npy / JSON / missing key: a corrupt or foreign file
            raise SpecError("cost predictor", f"not a cost predictor file ({type(e).__name__}: {e})", str(p)) from None
        if (not members or not isinstance(meta, dict) or meta.get("kind") != "cost_predictor"
                or any(m[-1][0].shape[1] != len(out.outputs) for m in members)):
            raise SpecError("cost predictor", "not a cost predictor file", str(p))
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
