"""The screening audit of a multi-fidelity run (``codesign search --screen K``): how often the
learned cost predictor screened out a design that the exact model puts on the front.

``audit_run(DIR)`` scores the run's screened-out children (``DIR/screened.csv``, predicted
figures) with the run's own exact evaluator (every layer mapped, the run's accuracy source) and
counts those that land on the front of the run's rows plus them
(``codesign.search.screening.audit_screening``). Each exact score is appended to
``DIR/screening_audit.jsonl`` as it arrives, so an interrupted audit resumes where it stopped;
the summary goes to ``DIR/screening_audit.json``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from accelerators.errors import SpecError

from codesign.jsonio import read_jsonl


def screened_genomes(d: Path) -> list[dict]:
    """[{"key", "genome"}] of the run's screened-out children, in ``screened.csv`` order."""
    from codesign.rundir.store import genome_key
    path = d / "screened.csv"
    if not path.is_file():
        raise SpecError("run", "not a screened run: no screened.csv (search with --screen K)", str(d))
    out = []
    with open(path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            try:
                g = json.loads(row["genome_json"])
            except (KeyError, TypeError, ValueError):
                raise SpecError(f"genome_json (row {i + 1})", "missing or not JSON", str(path)) from None
            out.append({"key": genome_key(g), "genome": g})
    return out


def _scored(path: Path) -> dict:
    """{key: metrics or None} from an earlier (perhaps interrupted) audit; a torn last line is
    cut from the file, so that the next score appended starts a line of its own."""
    if not path.is_file():
        return {}

    def check(r):
        if not isinstance(r, dict) or "key" not in r or "metrics" not in r:
            raise ValueError("not an audit row (key, metrics)")
    return {r["key"]: r["metrics"] for r in read_jsonl(path, check=check, what="an audit row",
                                                      cut_last="repair", field="screening_audit")}


def audit_run(directory, sample: int | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Audit the screening of run ``directory`` (all screened-out children, or a seeded
    ``sample``); returns the summary also written to ``screening_audit.json``."""
    from codesign.rundir.search import load_run
    from codesign.search.problem import build_evaluator
    from codesign.search.screening import audit_screening
    d = Path(directory)
    if not d.is_dir():
        raise SpecError("run", "no such run directory", str(d))
    cfg, res = load_run(d)
    if not cfg.get("screen"):
        raise SpecError("run", "not a screened run (its config has no --screen)", str(d / "config.json"))
    screened = screened_genomes(d)
    log = d / "screening_audit.jsonl"
    done = _scored(log)
    evaluate = build_evaluator(cfg["evaluator"])
    with open(log, "a") as fh:
        def keep(key, genome, metrics):
            fh.write(json.dumps({"key": key, "genome": genome, "metrics": metrics}, sort_keys=True) + "\n")
            fh.flush()
        out = audit_screening(res.rows, screened, evaluate, res.objectives, sample=sample, seed=seed,
                              done=done, on_scored=keep, progress=progress,
                              reference=evaluate.space.reference_point(res.objectives))
    out.update({"run": str(d), "sample": sample, "seed": seed, "screen": cfg["screen"],
                "budget": cfg["budget"], "population": cfg["population"], "rows": len(res.rows)})
    (d / "screening_audit.json").write_text(json.dumps(out, indent=1) + "\n")
    return out
