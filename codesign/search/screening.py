"""Multi-fidelity search: the learned cost predictor screens, the mapped model scores.

With ``--screen K`` a generation of NSGA-II breeds ``K x population`` children; all of them are
scored cheaply (accuracy from the run's own source, which must be cheap: the predictor or the
MACs proxy; latency and energy from the learned cost predictor, area and on-chip memory exact),
and only the ``population`` best of them by the same non-dominated sorting and crowding are
scored exactly (every layer mapped) and enter the search. Every row of a run, hence every design
on its front, carries exact figures; the screened-out children are kept with their predicted
figures, labelled as such (``screened.csv`` in the run directory), so that
:func:`audit_screening` can say how often screening dropped a design that the exact model puts
on the front.
"""
from __future__ import annotations

import numpy as np

from accelerators.errors import SpecError

CHEAP_ACCURACY = ("predictor", "macs")


def screening_predictor_path(evaluator_cfg: dict):
    """The cost predictor a screened search ranks children with: the run's own, else the shipped one."""
    from pathlib import Path

    from codesign.artifacts import WEIGHTS_DIR
    return Path(evaluator_cfg.get("cost_predictor") or WEIGHTS_DIR / "cost_predictor.npz")


class Screener:
    """``screener(genomes) -> [metrics]``: predicted metrics (the exact evaluator's columns and
    constraint violation) of many joint genomes at once."""

    def __init__(self, space, evaluator_cfg: dict):
        from codesign.predictors.cost import CostPredictor
        from codesign.search.problem import Evaluator, accuracy_function
        src = evaluator_cfg["accuracy"]["source"]
        if src not in CHEAP_ACCURACY:
            raise SpecError("--screen", f"screening needs a cheap accuracy source ({' or '.join(CHEAP_ACCURACY)}), "
                            f"not {src!r}")
        self.cost = CostPredictor.load(screening_predictor_path(evaluator_cfg))
        self.cost.check_space(space)
        self.space = space
        self.accuracy = accuracy_function(evaluator_cfg["accuracy"])
        self._violation = Evaluator(space, self.accuracy, cost=self.cost).violation
        self.count = 0

    def __call__(self, genomes) -> list[dict]:
        genomes = list(genomes)
        if not genomes:
            return []
        out = []
        for g, hw in zip(genomes, self.cost.hardware_metrics(self.space, genomes)):
            m = {"top1_pct": float(self.accuracy(g["net"], g["hw"]["bits"]))}
            m.update(hw)
            m["violation"] = self._violation(m)
            out.append(m)
        self.count += len(genomes)
        return out


def audit_screening(rows, screened, evaluate, objectives, sample: int | None = None, seed: int = 0,
                    done: dict | None = None, on_scored=None, progress: bool = False, reference=None) -> dict:
    """Score screened-out children exactly (all, or a seeded ``sample`` of them) and count those
    that the exact model puts on the front of the run's rows plus them: designs screening
    would have lost. ``done``: {genome key: exact metrics or None} scored before (a resumed
    audit: not scored again); ``on_scored(key, genome, metrics)`` is called as each new one is
    scored (to keep it). Returns the counts, the rate per audited child (and, to compare, the
    share of the kept rows on that front), the lost designs' keys and, with a ``reference``
    point, the hypervolume of the run's rows and of the rows plus the audited children."""
    from codesign.search.algorithms import pareto_front
    from codesign.search.problem import score_with
    from codesign.rundir.store import genome_key
    done = {} if done is None else done
    seen = {r["key"] for r in rows}
    cand = [s for s in screened if s["key"] not in seen]
    cand = list({s["key"]: s for s in cand}.values())
    if sample is not None and sample < len(cand):
        pick = np.random.default_rng(seed).choice(len(cand), sample, replace=False)
        cand = [cand[i] for i in sorted(pick)]
    extra = []
    it = cand
    if progress:
        from tqdm import tqdm
        it = tqdm(cand, desc="audit", unit="design", smoothing=0.1)
    for s in it:
        key = genome_key(s["genome"])
        if key in done:
            metrics = done[key]
        else:
            metrics = score_with(evaluate, s["genome"])["metrics"]
            if on_scored is not None:
                on_scored(key, s["genome"], metrics)
        if metrics is not None:
            extra.append({"id": f"screened-{len(extra)}", "key": key, "genome": s["genome"],
                          "metrics": metrics, "screened": True})
    front = pareto_front(list(rows) + extra, objectives)
    lost = [r for r in front if r.get("screened")]
    kept_on_front = len(front) - len(lost)
    out = {"screened_out": len(screened), "audited": len(cand), "scored_exactly": len(extra),
           "front": len(front), "front_from_screened_out": len(lost),
           "lost_per_audited": len(lost) / len(extra) if extra else float("nan"),
           "front_per_kept": kept_on_front / len(rows) if rows else float("nan"),
           "lost_keys": [r["key"] for r in lost]}
    if reference is not None:
        from codesign.search.algorithms import front_hypervolume
        out["hypervolume_run"] = front_hypervolume(list(rows), objectives, reference)
        out["hypervolume_with_audited"] = front_hypervolume(list(rows) + extra, objectives, reference)
    return out
