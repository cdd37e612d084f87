"""The accuracy predictor's encoding of a (genome, bit-width): the one-hot genome code (OFA's
encoding) plus two size features (log MACs, log of the active blocks' sum of expand x kernel^2)."""
from __future__ import annotations

import numpy as np

from codesign.space.genome import DEFAULT_SPACE, SearchSpace


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
    from codesign.space.layers import genome_macs
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


def base_features(genomes, meta: dict) -> np.ndarray:
    """The genome's one-hot code (no bit-width) and, when ``meta['summary']``, its standardized
    size features."""
    genomes = list(genomes)
    X = encode(genomes, np.full(len(genomes), 8))[:, :-len(BITS)]
    if meta.get("summary"):
        z = (summary(genomes) - np.asarray(meta["summary_mean"])) / np.asarray(meta["summary_std"])
        X = np.concatenate([X, z.astype(np.float32)], axis=1)
    return X.astype(np.float64)
