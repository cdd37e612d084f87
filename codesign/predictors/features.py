"""Features of the learned latency / energy predictor (:mod:`codesign.predictors.cost`), per
(layer, hardware) row: the layer shape (log dims, stride, depthwise, log MACs and tensor sizes),
the hardware genome (PE array, bits, dataflow and DRAM type one-hot, DRAM bandwidth, buffer
sizes, per-action energies of every level read off the template), and closed-form bounds that mix
both: the best number of PEs the dataflow can keep busy given the exact divisors of the layer's
dimensions, compute- and DRAM-bandwidth-bound cycles, DRAM energy with every tensor moved once,
MAC energy, per-level energy of one access per MAC. The model sits on those bounds (cycles equal
the bound for ~93% of layers, DRAM energy -- ~80% of the total -- equals its bound for ~70%).

``LayerTable``: every layer a genome of the network space can run, so that a batch of genomes
becomes one gather of layer shapes.
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from accelerators.errors import SpecError

from codesign.predictors.cost_data import SHAPE_KEYS, layer_shape


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
    from codesign.space.hardware import point_architecture
    ref = meta["reference_hw"]
    lv_names = [lv["name"] for lv in meta["levels"]]
    size_col = {name: 6 + i for i, name in enumerate(meta["size_levels"])}

    def arch(**change):
        hw = json.loads(json.dumps(ref))
        sizes = change.pop("sizes_kib", {})
        hw.update(change)
        hw["sizes_kib"].update(sizes)
        return point_architecture(meta["template_text"], json.dumps(hw, sort_keys=True))

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
        from codesign.space.layers import genome_layers
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
