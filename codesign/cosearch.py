"""Joint network-accelerator search: candidates are scored by accuracy (predictor, measurement or
proxy) and by latency / energy / area from the accelerator model with every layer mapped (cached
per layer shape and architecture), then ranked with NSGA-II (``codesign.nsga2``).

A problem (the space, an evaluator, objectives), an algorithm (nsga2, random), and ``run``:
results are plain dicts, one per evaluated candidate."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from accelerators.network import MappingCache, evaluate_network

from .genome_layers import genome_layers
from .nsga2 import binary_tournament, hypervolume, non_dominated_fronts, rank_and_crowding, select_survivors
from .space import JointSpace

# objective -> (metric column, sign for minimization)
OBJECTIVE_COLUMNS = {"accuracy": ("top1_pct", -1.0), "latency": ("latency_ms", 1.0),
                     "energy": ("energy_uj", 1.0), "edp": ("edp_uj_ms", 1.0), "area": ("area_mm2", 1.0)}
CONSTRAINT_COLUMNS = {"area_mm2": "area_mm2", "onchip_kib": "onchip_kib", "latency_ms": "latency_ms",
                      "energy_uj": "energy_uj"}


class Evaluator:
    """Scores joint genomes. ``accuracy(net_genome, bits) -> top-1 %``."""

    def __init__(self, space: JointSpace, accuracy, mapper_budget: int = 1500, cache: MappingCache | None = None):
        self.space, self.accuracy, self.mapper_budget = space, accuracy, mapper_budget
        self.cache = cache or MappingCache()
        self.seconds = 0.0
        self.count = 0

    def __call__(self, genome: dict) -> dict:
        t = time.perf_counter()
        net, hw = genome["net"], genome["hw"]
        arch = self.space.hw.architecture(hw)
        res = evaluate_network(genome_layers(net), arch, "dataflow", budget=self.mapper_budget, cache=self.cache)
        tot = res.totals
        onchip = sum(lv.size_words * lv.word_bits * lv.instances for lv in arch.levels
                     if lv.kind != "dram" and lv.size_words) / 8 / 1024
        m = {"top1_pct": float(self.accuracy(net, hw["bits"])), "latency_ms": 1e3 * tot["latency_s"],
             "energy_uj": tot["energy_pj"] / 1e6, "area_mm2": arch.area_um2() / 1e6, "onchip_kib": onchip,
             "macs": tot["macs"], "utilization": tot["utilization"]}
        m["edp_uj_ms"] = m["energy_uj"] * m["latency_ms"]
        m["violation"] = self.violation(m)
        self.seconds += time.perf_counter() - t
        self.count += 1
        return m

    def violation(self, m: dict) -> float:
        """Sum of relative constraint excesses (0 when feasible): never dropped, only ranked last."""
        v = 0.0
        for key, limit in self.space.constraints:
            if key == "min_accuracy":
                v += max(0.0, 1.0 - m["top1_pct"] / limit)
            else:
                v += max(0.0, m[CONSTRAINT_COLUMNS[key]] / limit - 1.0)
        return v


def objective_matrix(rows, objectives) -> np.ndarray:
    return np.array([[OBJECTIVE_COLUMNS[o][1] * r["metrics"][OBJECTIVE_COLUMNS[o][0]] for o in objectives]
                     for r in rows], float)


def pareto_front(rows, objectives) -> list[dict]:
    """The feasible non-dominated rows (all rows ranked if none is feasible)."""
    if not rows:
        return []
    F = objective_matrix(rows, objectives)
    v = np.array([r["metrics"]["violation"] for r in rows])
    front = non_dominated_fronts(F, v)[0]
    return [rows[i] for i in front]


@dataclass
class SearchResult:
    rows: list = field(default_factory=list)         # every evaluation: {"id", "genome", "metrics", "generation"}
    hypervolume: list = field(default_factory=list)  # per generation
    objectives: tuple = ()
    seconds: float = 0.0

    def front(self) -> list[dict]:
        return pareto_front(self.rows, self.objectives)


def run_search(space: JointSpace, evaluate, *, algorithm: str = "nsga2", budget: int = 200,
               population: int = 24, seed: int = 0, mutation: float = 0.15, crossover: float = 0.9,
               objectives=None, ref_point=None, progress=False, fixed_hw: dict | None = None,
               fixed_net: dict | None = None, initial: list | None = None) -> SearchResult:
    """``budget`` candidate evaluations of ``algorithm`` (nsga2 or random). ``fixed_hw`` /
    ``fixed_net`` freeze one half of the genome (sequential and hardware-only baselines)."""
    objectives = tuple(objectives or space.objectives)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    res = SearchResult(objectives=objectives)
    seen = {}

    def fix(g):
        if fixed_hw is not None:
            g = {"net": g["net"], "hw": fixed_hw}
        if fixed_net is not None:
            g = {"net": fixed_net, "hw": g["hw"]}
        return g

    def score(genomes, gen):
        out = []
        for g in genomes:
            key = json.dumps(g, sort_keys=True)
            if key in seen:                            # identical candidate: reuse, costs nothing
                out.append(seen[key])
                continue
            if len(res.rows) >= budget:
                break
            row = {"id": len(res.rows), "genome": g, "metrics": evaluate(g), "generation": gen}
            res.rows.append(row)
            seen[key] = row
            out.append(row)
        return out

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=budget, desc=f"{algorithm} search", unit="cand")

    def record():
        if ref_point is not None:
            feas = [r for r in res.rows if r["metrics"]["violation"] <= 0]
            res.hypervolume.append(hypervolume(objective_matrix(feas, objectives), ref_point) if feas else 0.0)
        if bar is not None:
            bar.n = len(res.rows)
            bar.refresh()

    pop = score([fix(g) for g in (initial or [])] + [fix(space.sample(rng)) for _ in range(population - len(initial or []))], 0)
    record()
    gen = 0
    while len(res.rows) < budget:
        gen += 1
        if algorithm == "random":
            pop = score([fix(space.sample(rng)) for _ in range(population)], gen)
        elif algorithm == "nsga2":
            F = objective_matrix(pop, objectives)
            v = np.array([r["metrics"]["violation"] for r in pop])
            rank, crowd = rank_and_crowding(F, v)
            parents = binary_tournament(rank, crowd, rng, 2 * population)
            kids = []
            for i in range(population):
                a, b = pop[parents[2 * i]]["genome"], pop[parents[2 * i + 1]]["genome"]
                child = space.crossover(a, b, rng) if rng.random() < crossover else a
                kids.append(fix(space.mutate(child, rng, mutation)))
            kids = score(kids, gen)
            union = pop + [k for k in kids if all(k is not p for p in pop)]
            F = objective_matrix(union, objectives)
            v = np.array([r["metrics"]["violation"] for r in union])
            keep = select_survivors(F, v, population)
            pop = [union[i] for i in keep]
        else:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        record()
        if not pop:
            break
    if bar is not None:
        bar.close()
    res.seconds = time.perf_counter() - t0
    return res


def front_table(rows) -> "pandas.DataFrame":
    """One row per design: genome columns, then metric columns with units in their names."""
    import pandas as pd
    recs = []
    for r in rows:
        g, m = r["genome"], r["metrics"]
        rec = {"id": r["id"]}
        for key in ("ks", "e"):
            rec.update({f"net_{key}_{i}": v for i, v in enumerate(g["net"][key])})
        rec.update({f"net_d_{i}": v for i, v in enumerate(g["net"]["d"])})
        rec["net_r"] = g["net"]["r"]
        for k, v in g["hw"].items():
            if k == "sizes_kib":
                rec.update({f"hw_size_{lv}_kib": s for lv, s in v.items()})
            else:
                rec[f"hw_{k}"] = v
        rec.update({k: v for k, v in m.items()})
        recs.append(rec)
    return pd.DataFrame(recs)
