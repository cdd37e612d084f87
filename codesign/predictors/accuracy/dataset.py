"""The accuracy predictor's data: measured (genome, bit-width, top-1) rows of ``codesign accuracy-data``
files, and their split by genome (all rows of one genome on one side)."""
from __future__ import annotations

import json

import numpy as np


def genome_ids(genomes) -> tuple[np.ndarray, list[str]]:
    """(an id per genome, the distinct genome keys in order of first appearance): rows of one
    genome at several bit-widths get one id."""
    from codesign.space.genome import subnet_key
    ids: dict = {}
    return np.array([ids.setdefault(subnet_key(g), len(ids)) for g in genomes], int), list(ids)


def read_datasets(paths, field: str = "--accuracy-data", bits=None) -> list[dict]:
    """The rows of one or more accuracy-data files (``codesign accuracy-data``); where several
    measure the same (genome, bit-width), the later file's row replaces the earlier one's (e.g.
    repeated 4-bit draws over a single-draw data set). ``bits``: the bit-widths a row may have
    (the predictor's; default any), else a SpecError naming the file and line."""
    from codesign.jsonio import read_jsonl
    if not isinstance(paths, (list, tuple)):
        paths = [paths]

    def check(r):
        check_row(r)
        if bits is not None and r["bits"] not in bits:
            raise ValueError(f"bits: {r['bits']} is not one of the predictor's {list(bits)}")
    rows = {}
    for path in paths:
        for r in read_jsonl(path, cut_last="error", field=field, check=check,
                            what="a measured subnet row ({genome, bits, top1})"):
            key = (json.dumps(r.get("genome"), sort_keys=True), r.get("bits"))
            if key in rows and rows[key][0] == path:
                key = (key, len(rows))                # a file's own repeats are all kept
            rows[key] = (path, r)
    return [r for _, r in rows.values()]


def check_row(r) -> None:
    """One accuracy-data row: a dict with a valid network ``genome``, integer ``bits``, a finite
    ``top1`` in [0, 100] and, if present, a known ``protocol`` (a ValueError says what is wrong)."""
    import math
    from codesign.space.genome import DEFAULT_SPACE
    if not isinstance(r, dict):
        raise ValueError("a JSON object")
    for k in ("genome", "bits", "top1"):
        if k not in r:
            raise ValueError(f"no '{k}'")
    DEFAULT_SPACE.validate(r["genome"], where="genome")
    if isinstance(r["bits"], bool) or not isinstance(r["bits"], int):
        raise ValueError(f"bits: not an integer: {r['bits']!r}"[:100])
    t = r["top1"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 <= t <= 100:
        raise ValueError(f"top1: not a percentage: {t!r}"[:100])
    from codesign.predictors.accuracy.protocols import check_protocol
    check_protocol(r)


def split_by_genome(rows: list[dict], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices with every genome wholly on one side: the rows of one genome at
    several bit-widths share its BN recalibration, so a row split would leak the genome."""
    ids, keys = genome_ids(r["genome"] for r in rows)
    ordered = sorted(keys)
    order = np.random.default_rng(seed).permutation(len(ordered))
    test_keys = {ordered[i] for i in order[:max(1, int(round(len(ordered) * holdout)))]}
    in_test = np.array([keys[i] in test_keys for i in ids], bool)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
