"""Network genomes: plain dicts ``{"ks": [...], "e": [...], "d": [...], "r": 32}`` (one kernel size
and expand ratio per block slot, one depth per stage, the input resolution), as in Once-for-All.
Trivially saved, hashed and compared; validated with errors that name the field."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from accelerators.errors import SpecError


@dataclass(frozen=True)
class SearchSpace:
    stages: int = 4
    max_depth: int = 4
    kernels: tuple = (3, 5, 7)
    expands: tuple = (3, 4, 6)
    depths: tuple = (2, 3, 4)
    resolutions: tuple = (24, 28, 32)

    @property
    def slots(self) -> int:
        return self.stages * self.max_depth

    def max_genome(self) -> dict:
        return {"ks": [max(self.kernels)] * self.slots, "e": [max(self.expands)] * self.slots,
                "d": [max(self.depths)] * self.stages, "r": max(self.resolutions)}

    def min_genome(self) -> dict:
        return {"ks": [min(self.kernels)] * self.slots, "e": [min(self.expands)] * self.slots,
                "d": [min(self.depths)] * self.stages, "r": min(self.resolutions)}

    def sample(self, rng: np.random.Generator, kernels=None, expands=None, depths=None,
               resolutions=None) -> dict:
        """A random genome; the keyword sets restrict each choice (progressive shrinking)."""
        pick = lambda opts, n: [int(v) for v in rng.choice(np.array(opts), n)]
        return {"ks": pick(kernels or self.kernels, self.slots), "e": pick(expands or self.expands, self.slots),
                "d": pick(depths or self.depths, self.stages), "r": pick(resolutions or self.resolutions, 1)[0]}

    def validate(self, g, where: str = "genome") -> dict:
        if isinstance(g, str):
            try:
                g = json.loads(g)
            except json.JSONDecodeError as e:
                raise SpecError(where, f"not valid JSON: {e.msg}") from None
        if not isinstance(g, dict):
            raise SpecError(where, "must be an object with keys ks, e, d, r")
        for k in g:
            if k not in ("ks", "e", "d", "r"):
                raise SpecError(f"{where}.{k}", "unknown key (expected ks, e, d, r)")
        for key, n, opts in (("ks", self.slots, self.kernels), ("e", self.slots, self.expands),
                             ("d", self.stages, self.depths)):
            v = g.get(key)
            if not isinstance(v, list) or len(v) != n:
                raise SpecError(f"{where}.{key}", f"must be a list of {n} values")
            for i, x in enumerate(v):
                if x not in opts or isinstance(x, bool):
                    raise SpecError(f"{where}.{key}[{i}]", f"{x!r} is not one of {list(opts)}")
        if g.get("r") not in self.resolutions:
            raise SpecError(f"{where}.r", f"{g.get('r')!r} is not one of {list(self.resolutions)}")
        return {"ks": [int(x) for x in g["ks"]], "e": [int(x) for x in g["e"]],
                "d": [int(x) for x in g["d"]], "r": int(g["r"])}

    def active_blocks(self, g: dict):
        """(stage, slot index) of the blocks a genome uses: the first d of each stage."""
        for s in range(self.stages):
            for b in range(g["d"][s]):
                yield s, s * self.max_depth + b

    def canonical(self, g: dict) -> dict:
        """Same network, unused slots reset to the minimum (so equal networks compare equal)."""
        used = {i for _, i in self.active_blocks(g)}
        return {"ks": [k if i in used else min(self.kernels) for i, k in enumerate(g["ks"])],
                "e": [e if i in used else min(self.expands) for i, e in enumerate(g["e"])],
                "d": list(g["d"]), "r": g["r"]}


DEFAULT_SPACE = SearchSpace()


def subnet_key(g: dict) -> str:
    """The subnet a network genome builds, as compact JSON: genomes that differ only in slots their
    depths leave unused share it (``codesign.rundir.store.genome_key`` instead hashes a joint
    genome exactly as given, to key a run's store)."""
    return json.dumps(DEFAULT_SPACE.canonical(g), sort_keys=True, separators=(",", ":"))


def named_genome(g, where: str = "genome") -> dict:
    """A network genome given as ``max`` / ``min`` (the largest / smallest subnet), JSON text or a
    dict, checked against the default space."""
    if g == "max":
        return DEFAULT_SPACE.max_genome()
    if g == "min":
        return DEFAULT_SPACE.min_genome()
    return DEFAULT_SPACE.validate(g, where=where)
