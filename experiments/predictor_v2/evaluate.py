"""Predictor v2 against the shipped v1, genome-grouped cross-validation (issue #20's remainder).

Data (every row names its measurement protocol, ``codesign.predictors.accuracy.protocols``):

* ``base``: ``codesign/weights/accuracy_data.jsonl`` (280 random genomes x 4/6/8/16 bits,
  protocol ``predictor``);
* ``extremes``: ``experiments/predictor_extremes/extremes.jsonl`` (32 corner genomes x 4 bit-widths,
  ``predictor``);
* ``front``: ``experiments/predictor_v2/front_rows.jsonl`` (designs co-search fronts picked,
  measured by ``codesign verify`` / the benchmark's EDP step: protocol ``verify``), made with
  ``codesign add-measured`` from ``experiments/bench_cosearch/2026-12-02/measured.jsonl`` and
  ``experiments/measured_front/``.

Cross-validation: every distinct genome (subnet) of the three sets is put in one of ``--folds``
seeded folds; for each fold the v1 recipe (base rows only) and the v2 recipe (base + extremes +
front rows) are fitted (``codesign.predictors.accuracy.fit``, the model ``train-predictor`` fits)
on the rows of the other folds and predict the fold's rows: no genome is ever in both the fit and
the evaluation. Reported per set (random = base genomes, extremes, front) and per bit-width:
Kendall tau, RMSE and bias (predicted - measured). Also: the shipped v1 file on what it never saw
(its 56 held-out random genomes, all extremes, the front), and a paired bootstrap over genomes of
the RMSE difference v2 - v1 on each set (the noise band for "no worse").

    PYTHONPATH=. taskset -c 1 python3 experiments/predictor_v2/evaluate.py    # -> results.json, table.md
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

BITS = (4, 6, 8, 16)
SETS = ("random", "extremes", "front")


def _metrics(meas, pred) -> dict:
    from scipy.stats import kendalltau
    meas, pred = np.asarray(meas, float), np.asarray(pred, float)
    out = {"n": int(len(meas))}
    if not len(meas):
        return out
    err = pred - meas
    tau = float(kendalltau(pred, meas).statistic) if len(meas) >= 3 and np.ptp(meas) > 0 and np.ptp(pred) > 0 else None
    out.update({"kendall_tau": tau, "rmse": float(np.sqrt((err ** 2).mean())), "bias": float(err.mean())})
    return out


def report(rows, pred) -> dict:
    meas = np.array([r["top1"] for r in rows], float)
    bits = np.array([int(r["bits"]) for r in rows])
    out = {"all": _metrics(meas, pred)}
    for b in BITS:
        if (bits == b).any():
            out[str(b)] = _metrics(meas[bits == b], np.asarray(pred)[bits == b])
    return out


def _key(r):
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
    return subnet_key(DEFAULT_SPACE.canonical(r["genome"]))


def _predict(p, rows):
    return p.predict([r["genome"] for r in rows], [int(r["bits"]) for r in rows]) if rows else np.zeros(0)


def bootstrap_rmse_diff(rows, p_new, p_old, n_boot: int = 2000, seed: int = 0) -> dict:
    """RMSE(new) - RMSE(old) on ``rows`` and its 95 % interval, resampling genomes (paired)."""
    keys = [_key(r) for r in rows]
    uniq = sorted(set(keys))
    idx = {k: [i for i, kk in enumerate(keys) if kk == k] for k in uniq}
    y = np.array([r["top1"] for r in rows], float)
    e_new, e_old = (np.asarray(p_new) - y) ** 2, (np.asarray(p_old) - y) ** 2
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        pick = np.concatenate([idx[uniq[i]] for i in rng.integers(0, len(uniq), len(uniq))])
        diffs.append(np.sqrt(e_new[pick].mean()) - np.sqrt(e_old[pick].mean()))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"diff": float(np.sqrt(e_new.mean()) - np.sqrt(e_old.mean())), "ci95": [float(lo), float(hi)],
            "genomes": len(uniq)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=8)
    ap.add_argument("--v1", default=str(ROOT / "codesign/weights/predictor_v1.npz"), help="the v1 predictor file")
    ap.add_argument("--v2", default=str(ROOT / "codesign/weights/predictor.npz"), help="the shipped v2 file")
    a = ap.parse_args(argv)
    from codesign.artifacts import WEIGHTS_DIR
    from codesign.predictors.accuracy import Predictor, fit, read_datasets, split_by_genome
    t0 = time.time()
    base = read_datasets(WEIGHTS_DIR / "accuracy_data.jsonl")
    ext = read_datasets(ROOT / "experiments/predictor_extremes/extremes.jsonl", field="--extra-data")
    front = read_datasets(HERE / "front_rows.jsonl", field="--extra-data")
    sets = {"random": base, "extremes": ext, "front": front}
    keys = sorted({_key(r) for s in sets.values() for r in s})
    fold_of = {k: int(i) % a.folds for k, i in zip(keys, np.random.default_rng(0).permutation(len(keys)))}
    oof = {rec: {s: np.full(len(v), np.nan) for s, v in sets.items()} for rec in ("v1", "v2")}
    for k in range(a.folds):
        out = {s: np.array([fold_of[_key(r)] == k for r in v]) for s, v in sets.items()}
        fit_v1 = [r for r, o in zip(base, out["random"]) if not o]
        fit_v2 = fit_v1 + [r for s in ("extremes", "front") for r, o in zip(sets[s], out[s]) if not o]
        for rec, rows in (("v1", fit_v1), ("v2", fit_v2)):
            p = fit(rows, seed=0)
            for s, v in sets.items():
                if out[s].any():
                    oof[rec][s][out[s]] = _predict(p, [r for r, o in zip(v, out[s]) if o])
        print(f"fold {k}: held out {sum(int(o.sum()) for o in out.values())} rows, {time.time() - t0:.0f} s", flush=True)

    res = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "folds": a.folds,
           "counts": {s: {"rows": len(v), "genomes": len({_key(r) for r in v})} for s, v in sets.items()},
           "protocols": {s: sorted({r.get("protocol", "unrecorded") if isinstance(r.get("protocol"), str) else "verify"
                                     for r in v}) for s, v in sets.items()},
           "cv": {rec: {s: report(sets[s], oof[rec][s]) for s in SETS} for rec in ("v1", "v2")},
           "cv_rmse_diff_v2_minus_v1": {s: bootstrap_rmse_diff(sets[s], oof["v2"][s], oof["v1"][s]) for s in SETS}}
    # the largest genomes: where v1 was worst
    big = {"max", "max_r28", "max_d3", "stage2_min", "stage3_min", "k5_e6_d4_r32", "k7_e4_d4_r32"}
    sel = np.array([r.get("name") in big for r in ext])
    res["cv_seven_largest"] = {rec: _metrics([r["top1"] for r in ext if r.get("name") in big], oof[rec]["extremes"][sel])
                               for rec in ("v1", "v2")}
    # the files themselves, on what each never saw
    files = {}
    for name, path in (("v1", a.v1), ("v2", a.v2)):
        if not Path(path).is_file():
            continue
        p = Predictor.load(path)
        _, test = split_by_genome(base, p.meta.get("holdout", 0.2), p.meta["seed"])
        held = [base[i] for i in test]
        entry = {"meta_protocols": p.meta.get("protocols"), "extra": p.meta.get("extra"),
                 "random_heldout": report(held, _predict(p, held))}
        if name == "v1":             # v1 was fitted on base rows only: every extreme and front row is unseen
            seen = {_key(base[i]) for i in range(len(base)) if i not in set(test.tolist())}
            for s in ("extremes", "front"):
                rows = [r for r in sets[s] if _key(r) not in seen]
                entry[s] = report(rows, _predict(p, rows))
        files[name] = entry
    res["files"] = files
    res["seconds"] = round(time.time() - t0, 1)
    (HERE / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (HERE / "table.md").write_text(table_md(res))
    print((HERE / "table.md").read_text())
    return 0


def _c(m):
    if not m or not m.get("n"):
        return "– | – | –"
    tau = "n/a" if m.get("kendall_tau") is None else f"{m['kendall_tau']:.2f}"
    return f"{tau} | {m['rmse']:.2f} | {m['bias']:+.2f}"


def table_md(res) -> str:
    names = {"random": "random genomes (base data)", "extremes": "extreme subnets", "front": "front designs (verify protocol)"}
    lines = [f"# Predictor v1 vs v2 ({res['date']})", "",
             f"Genome-grouped {res['folds']}-fold cross-validation: each row predicted by a fit that never saw its "
             "genome. v1 recipe: the base data only; v2 recipe: base + extremes + front rows. Predicted minus "
             "measured top-1, points. `PYTHONPATH=. taskset -c 1 python3 experiments/predictor_v2/evaluate.py`.", "",
             "| set | bits | n | v1 tau | v1 RMSE | v1 bias | v2 tau | v2 RMSE | v2 bias |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in SETS:
        for b in ("all", *map(str, BITS)):
            m1, m2 = res["cv"]["v1"][s].get(b), res["cv"]["v2"][s].get(b)
            if m1:
                lines.append(f"| {names[s]} | {b} | {m1['n']} | {_c(m1)} | {_c(m2)} |")
    s7 = res["cv_seven_largest"]
    lines.append(f"| the seven largest extremes | all | {s7['v1']['n']} | {_c(s7['v1'])} | {_c(s7['v2'])} |")
    lines += ["", "RMSE v2 - v1 (paired bootstrap over genomes, 95 % interval):", ""]
    for s in SETS:
        d = res["cv_rmse_diff_v2_minus_v1"][s]
        lines.append(f"- {names[s]}: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] ({d['genomes']} genomes)")
    f = res.get("files", {})
    if f:
        lines += ["", "## The files, on rows they never saw", "",
                  "| file | set | n | tau | RMSE | bias |", "|---|---|---:|---:|---:|---:|"]
        for name, e in f.items():
            for s, lab in (("random_heldout", "its 56 held-out random genomes"), ("extremes", "extreme subnets"),
                           ("front", "front designs")):
                if s in e:
                    lines.append(f"| {name} | {lab} | {e[s]['all']['n']} | {_c(e[s]['all'])} |")
    lines += ["", f"({res['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
