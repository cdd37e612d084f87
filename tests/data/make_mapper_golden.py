#!/usr/bin/env python3
"""Writes tests/data/mapper_golden.json: the mapper's results (EDP, evaluations, a digest of the
mapping) on every distinct layer of four seeded candidates of the default co-search space, at
the co-search's mapper budget (1,500). ``tests/test_mapper_golden.py`` holds the current code to
it: speed work on the mapper, the mapspace or the model must find the same mappings.

Regenerate it only when the model's figures or the search itself are meant to change, and say
why in the commit (the file now comes from commit adbcd6a, before the 2026-12-03 speed-ups):

    PYTHONPATH=. python3 tests/data/make_mapper_golden.py tests/data/mapper_golden.json
"""
import hashlib
import json
import sys

import numpy as np

from accelerators.constraints import dataflow_constraints
from accelerators.mapper import map_layers
from accelerators.mapping import to_batch
from codesign.space.joint import load_space
from codesign.space.layers import genome_layers

BUDGET = 1500


def layers_of(space, genome):
    arch = space.hw.architecture(genome["hw"])
    works = list({l.work.key(): l.work for l in genome_layers(genome["net"])}.values())
    return arch, works


def digest(mapping, arch, work) -> str:
    b = to_batch([mapping], arch, work)
    h = hashlib.sha256()
    for a in (b.tf, b.sx, b.sy, b.perm, b.keep):
        h.update(np.ascontiguousarray(a, np.int64).tobytes())
    return h.hexdigest()[:16]


def results(space, genome) -> list[dict]:
    arch, works = layers_of(space, genome)
    res = map_layers(arch, works, [dataflow_constraints(arch, w) for w in works], budget=BUDGET)
    return [{"name": w.name, "edp": float(r.edp), "evaluated": int(r.evaluated),
             "mapping": digest(r.mapping, arch, w)} for w, r in zip(works, res)]


def main(path: str) -> None:
    space = load_space()
    rng = np.random.default_rng(2026)
    out = [{"genome": g, "layers": results(space, g)} for g in (space.sample(rng) for _ in range(4))]
    with open(path, "w") as fh:
        json.dump(out, fh, indent=0)
    print(sum(len(c["layers"]) for c in out), "layers")


if __name__ == "__main__":
    main(sys.argv[1])
