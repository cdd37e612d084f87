"""Measured fronts (issue #20): every design on a search run's final front re-measured on the
supernet, on the validation split (the held-out training images, never the test split), at its
own bit-width, so that ``front.csv`` shows ``top1_measured`` beside the figure the search ranked
by (``top1_predicted`` when that was the accuracy predictor).

Each measurement is committed to the run's store (table ``measured``, keyed by candidate, bit-width
and protocol) as it arrives: an interrupted verification resumes where it stopped, and a run
extended later re-measures only the designs that are new on its front. The protocol (split,
number of evaluation images, the weights' sha256, the held-out count and the seed) is part of the
key, so figures measured differently are never mixed.

``verify_front(DIR, data)`` does it for a finished run (``codesign verify DIR --data D``);
``codesign search --data D`` calls it at the end unless ``--no-verify``. ``front_error`` is the
predictor's error on the front: bias, RMSE, largest error and Kendall's tau (scipy)."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from accelerators.errors import SpecError

from codesign.rundir.store import open_run

SUMMARY = "front_verification.json"
VALIDATION_HOLDOUT = 5000           # the supernet's held-out training images (train-supernet's default)


def protocol_of(weights: Path, images: int | None, holdout: int = VALIDATION_HOLDOUT, seed: int = 0) -> dict:
    """What a measurement depends on besides the design (part of the store's key)."""
    return {"split": "validation", "images": images, "holdout": holdout, "seed": seed,
            "weights_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest()}


def verify_front(directory, data=None, *, weights=None, images: int | None = None, device: str = "cpu",
                 progress: bool = False, log=print) -> dict:
    """Re-measure the front of the search run in ``directory`` (module docstring); rewrites
    ``front.csv`` / ``all.csv`` with the measured column, writes ``front_verification.json`` and
    returns that summary. ``data``: the data set root (default: the run's own ``--data``);
    ``weights``: the supernet (default: the run's, else the shipped one); ``images``: evaluate on
    a seeded class-balanced subset of that many validation images (default: all of them)."""
    from codesign.artifacts import predictor_split, supernet_path
    from codesign.rundir.search import load_run, write_outputs
    d = Path(directory)
    cfg, res = load_run(d)
    acc = cfg["evaluator"]["accuracy"]
    data = data or acc.get("data")
    if not data:
        raise SpecError("--data", "the data set root is needed to measure the front (the run has none)", str(d))
    if images is not None and (isinstance(images, bool) or not isinstance(images, int) or images < 10):
        raise SpecError("--verify-images", f"must be an integer >= 10 (one image per class at least), got {images!r}")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SpecError("torch", "measuring the front needs PyTorch (pip install -e '.[torch]')") from None
    from codesign.nn.measure import measure
    from codesign.nn.supernet import load_supernet
    wpath = supernet_path(weights or acc.get("weights"))
    protocol = protocol_of(wpath, images)
    front = [r for r in res.front() if r["metrics"].get("latency_ms") is not None]
    store = open_run(d)
    try:
        done = store.measured(protocol)
        todo = [r for r in front if (r["key"], int(r["genome"]["hw"]["bits"])) not in done]
        if todo:
            net = load_supernet(wpath)
            calib, val = predictor_split(data, VALIDATION_HOLDOUT, eval_images=images, seed=0)
            bar = _bar(len(front), len(front) - len(todo), progress)
            for r in todo:
                bits = int(r["genome"]["hw"]["bits"])
                t = time.perf_counter()
                top1 = measure(net, r["genome"]["net"], bits, calib, val.images, val.labels)
                store.put_measured(r["key"], bits, protocol, top1, time.perf_counter() - t)
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
        measured = store.measured(protocol)
    finally:
        store.close()
    from codesign.space.joint import space_from_dict
    space = space_from_dict(cfg["evaluator"]["space"], cfg["evaluator"].get("space_name", "space"))
    write_outputs(d, res, cfg.get("population"), space.constraints)
    from codesign.predictors.accuracy.protocols import verify_protocol_name
    summary = {"protocol": protocol, "protocol_name": verify_protocol_name(protocol), "source": acc["source"],
               "designs": len(front), "measured_now": len(todo), "data": str(Path(data).resolve()),
               "error": front_error(front, measured) if acc["source"] == "predictor" else None,
               **front_hypervolumes(front, measured, tuple(cfg["objectives"]), space)}
    (d / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    log(summary_line(summary))
    return summary


def _bar(total: int, initial: int, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc="measuring the front", unit="design")


def front_error(front, measured: dict) -> dict | None:
    """The accuracy predictor's error on the measured front designs: bias (mean of predicted -
    measured), RMSE and largest absolute error in points, Kendall's tau between the two."""
    import numpy as np
    pairs = [(r["metrics"]["top1_pct"], measured[(r["key"], int(r["genome"]["hw"]["bits"]))]) for r in front
             if (r["key"], int(r["genome"]["hw"]["bits"])) in measured and r["metrics"].get("top1_pct") is not None]
    if not pairs:
        return None
    pred, meas = np.array(pairs, float).T
    err = pred - meas
    out = {"n": len(pairs), "bias_pct": float(err.mean()), "rmse_pct": float(np.sqrt((err ** 2).mean())),
           "max_abs_pct": float(np.abs(err).max()), "kendall_tau": None}
    if len(pairs) >= 3 and np.ptp(pred) > 0 and np.ptp(meas) > 0:
        from scipy.stats import kendalltau
        out["kendall_tau"] = float(kendalltau(pred, meas).statistic)
    return out


def front_hypervolumes(front, measured: dict, objectives, space) -> dict:
    """The front's hypervolume as the search scored it and with each design's accuracy replaced by
    its measurement (the space's reference point; ``None`` without an accuracy objective or before
    every front design is measured). Measured accuracy can reorder the front, so the second figure
    is the hypervolume of the same designs, not of a re-ranked front."""
    import copy

    from codesign.search.algorithms import front_hypervolume
    if "accuracy" not in objectives:
        return {"hypervolume_search": None, "hypervolume_measured": None}
    ref = space.reference_point(objectives)
    hv_search = front_hypervolume(front, objectives, ref) if front else 0.0
    keyed = [(r, (r["key"], int(r["genome"]["hw"]["bits"]))) for r in front]
    if any(k not in measured for _, k in keyed):
        return {"hypervolume_search": hv_search, "hypervolume_measured": None}
    rows = []
    for r, k in keyed:
        r = copy.deepcopy(r)
        r["metrics"]["top1_pct"] = measured[k]
        rows.append(r)
    return {"hypervolume_search": hv_search, "hypervolume_measured": front_hypervolume(rows, objectives, ref)}


def summary_line(summary: dict) -> str:
    p = summary["protocol"]
    imgs = "all" if p["images"] is None else f"{p['images']:,}"
    head = (f"front re-measured on the validation split ({imgs} images): {summary['designs']} designs "
            f"({summary['measured_now']} measured now)")
    if summary.get("hypervolume_measured") is not None:
        head += (f"; hypervolume {summary['hypervolume_search']:.6g} as searched, "
                 f"{summary['hypervolume_measured']:.6g} on measured accuracy")
    e = summary.get("error")
    if not e:
        return head
    tau = "n/a" if e["kendall_tau"] is None else f"{e['kendall_tau']:.2f}"
    return (f"{head}; predictor error on the front: bias {e['bias_pct']:+.2f} points, RMSE {e['rmse_pct']:.2f}, "
            f"largest {e['max_abs_pct']:.2f}, Kendall tau {tau} (n={e['n']})")


# ----------------------------------------------------------------------------- the active-learning loop

def measured_rows(directory) -> list[dict]:
    """The measured designs of a verified search run (``codesign verify``) as accuracy-predictor
    rows: ``{"genome", "bits", "top1", ...}`` (the network genome, the design's bit-width, the
    measured top-1 on the validation split) plus where it came from (``run``, ``key``,
    ``protocol``: the protocol's name, ``verify`` for all validation images, ``protocol_detail``:
    its dict, ``top1_predicted`` when the run ranked by the predictor), one row per distinct
    (subnet, bit-width), sorted. Only the measurements of the run's latest protocol (its
    ``front_verification.json``) are taken.

    ``directory`` may also be a kept copy of a verified run without its store (a folder with
    ``front.csv`` and ``front_verification.json``, e.g. ``experiments/measured_front/``) or a
    co-search benchmark's ``measured.jsonl`` (``benchmarks/cosearch.py``): the same rows from
    those files.

    A missing run, a run whose front was never measured or an unreadable summary is a SpecError
    naming the file and the field."""
    d = Path(directory)
    if d.is_file():
        return _benchmark_rows(d)
    if not d.is_dir():
        raise SpecError("run", "no such run directory", str(d))
    if not (d / "store.sqlite").is_file():
        if (d / "front.csv").is_file() and (d / SUMMARY).is_file():
            return _front_csv_rows(d)
        raise SpecError("run", "not a run directory (no store.sqlite)", str(d))
    summary, protocol = _read_summary(d / SUMMARY)
    from codesign.predictors.accuracy.protocols import verify_protocol_name
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
    store = open_run(d)
    try:
        measured = store.measured(protocol)
        by_key = {r["key"]: r for r in store.rows()}
    finally:
        store.close()
    if not measured:
        raise SpecError("measured", "no measurement of the run's front under its protocol in the store "
                        f"(codesign verify {d} --data DIR)", str(d / "store.sqlite"))
    rows, seen = [], set()
    for (key, bits), top1 in sorted(measured.items()):
        r = by_key.get(key)
        if r is None or not isinstance(r.get("genome"), dict) or "net" not in r["genome"]:
            continue                                   # a design of a replaced run: no genome to learn from
        try:
            net = DEFAULT_SPACE.canonical(DEFAULT_SPACE.validate(r["genome"]["net"], where="genome.net"))
        except SpecError as e:
            raise e.in_file(str(d / "store.sqlite")) from None
        k = (subnet_key(net), int(bits))
        if k in seen:
            continue
        seen.add(k)
        row = {"genome": net, "bits": int(bits), "top1": float(top1), "source": "codesign verify",
               "run": str(d), "key": key, "protocol": verify_protocol_name(protocol), "protocol_detail": protocol}
        pred = (r.get("metrics") or {}).get("top1_pct")
        if summary.get("source") == "predictor" and pred is not None:
            row["top1_predicted"] = float(pred)
        rows.append(row)
    return rows


def _read_summary(summary_path: Path) -> tuple[dict, dict]:
    """(summary, protocol) of a ``front_verification.json``; a SpecError naming it otherwise."""
    if not summary_path.is_file():
        raise SpecError("front_verification", "the run's front is not measured yet (codesign verify "
                        f"{summary_path.parent} --data DIR first)", str(summary_path))
    try:
        summary = json.loads(summary_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise SpecError("front_verification", f"not JSON ({e})"[:200], str(summary_path)) from None
    protocol = summary.get("protocol") if isinstance(summary, dict) else None
    if not isinstance(protocol, dict) or not protocol.get("weights_sha256"):
        raise SpecError("protocol", "missing or not an object with the weights' sha256", str(summary_path))
    return summary, protocol


def _row(net, bits, top1, protocol: dict, where: str, **more) -> dict:
    from codesign.predictors.accuracy.protocols import verify_protocol_name
    from codesign.space.genome import DEFAULT_SPACE
    try:
        net = DEFAULT_SPACE.canonical(DEFAULT_SPACE.validate(net, where="genome.net"))
    except SpecError as e:
        raise e.in_file(where) from None
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in (4, 6, 8, 16):
        raise SpecError("bits", f"not a bit-width of 4, 6, 8, 16: {bits!r}"[:100], where)
    if isinstance(top1, bool) or not isinstance(top1, (int, float)) or not 0 <= float(top1) <= 100:
        raise SpecError("top1", f"not a percentage: {top1!r}"[:100], where)
    return {"genome": net, "bits": int(bits), "top1": float(top1), "protocol": verify_protocol_name(protocol),
            "protocol_detail": protocol, **more}


def _dedup(rows: list[dict]) -> list[dict]:
    from codesign.space.genome import subnet_key
    out, seen = [], set()
    for r in rows:
        k = (subnet_key(r["genome"]), r["bits"])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _front_csv_rows(d: Path) -> list[dict]:
    """Rows of a kept verified front (``front.csv`` with ``top1_measured`` + its summary)."""
    import csv
    summary, protocol = _read_summary(d / SUMMARY)
    rows = []
    with open(d / "front.csv", newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh), 2):
            where = f"{d / 'front.csv'}:{i}"
            if not r.get("top1_measured"):
                continue
            try:
                g = json.loads(r["genome_json"])
                top1 = float(r["top1_measured"])
            except (KeyError, TypeError, ValueError):
                raise SpecError("genome_json", "missing or not a JSON genome, or top1_measured not a number",
                                where) from None
            if not isinstance(g, dict) or not isinstance(g.get("hw"), dict):
                raise SpecError("genome_json", "not a joint genome ({net, hw})", where)
            more = {"source": "codesign verify", "run": str(d)}
            if summary.get("source") == "predictor" and r.get("top1_predicted"):
                more["top1_predicted"] = float(r["top1_predicted"])
            rows.append(_row(g.get("net"), g["hw"].get("bits"), top1, protocol, where, **more))
    if not rows:
        raise SpecError("top1_measured", "no measured design in the front", str(d / "front.csv"))
    return _dedup(rows)


def _benchmark_rows(path: Path) -> list[dict]:
    """Rows of a co-search benchmark's ``measured.jsonl`` (``{net, bits, top1, protocol}`` lines)."""
    rows = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            r = json.loads(line)
        except ValueError:
            raise SpecError("measured", "not a JSON line", where) from None
        if not isinstance(r, dict) or not isinstance(r.get("protocol"), dict):
            raise SpecError("protocol", "missing or not an object", where)
        rows.append(_row(r.get("net"), r.get("bits"), r.get("top1"), r["protocol"], where,
                         source="benchmarks/cosearch.py", run=str(path)))
    if not rows:
        raise SpecError("measured", "no measured design in the file", str(path))
    return _dedup(rows)


def add_measured(directory, out) -> dict:
    """Append the measured designs of the verified run in ``directory`` (:func:`measured_rows`; or
    of a kept verified front, or of a benchmark's ``measured.jsonl``) to
    the accuracy-data file ``out`` (JSON lines, created if missing), skipping every (subnet,
    bit-width) the file already has: the file can then be given to ``codesign train-predictor
    --extra-data``. Returns ``{"added", "skipped", "rows", "out"}``. A bad line of ``out`` is a
    SpecError naming the file and the line; nothing is written then."""
    from codesign.jsonio import read_jsonl
    from codesign.predictors.accuracy.dataset import check_row
    from codesign.space.genome import DEFAULT_SPACE, subnet_key
    out = Path(out)
    if out.is_dir():
        raise SpecError("--out", "is a directory, not a JSONL file", str(out))
    if not out.parent.is_dir():
        raise SpecError("--out", "the folder does not exist", str(out))
    have = []
    if out.is_file() and out.stat().st_size:           # the file first: a bad line changes nothing anywhere
        have = read_jsonl(out, check=check_row, cut_last="error", field="--out",
                          what="a measured subnet row ({genome, bits, top1})")
    rows = measured_rows(directory)
    seen = {(subnet_key(DEFAULT_SPACE.canonical(r["genome"])), int(r["bits"])) for r in have}
    new = []
    for r in rows:
        k = (subnet_key(r["genome"]), r["bits"])
        if k not in seen:
            seen.add(k)
            new.append(r)
    if new:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in new)
        if out.is_file() and out.stat().st_size and not out.read_bytes().endswith(b"\n"):
            text = "\n" + text
        with open(out, "a") as fh:
            fh.write(text)
    return {"added": len(new), "skipped": len(rows) - len(new), "rows": len(have) + len(new), "out": str(out)}
