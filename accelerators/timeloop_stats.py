"""Timeloop's own answers: parse ``timeloop-model.stats.txt`` into the object ``codesign evaluate
--json`` prints, and run Timeloop through ``pytimeloop`` when it is installed (optional backend:
pytimeloop is not on PyPI; nothing here is needed without it)."""
from __future__ import annotations

import re
import shutil
import tempfile


def _half_ulp(number: str) -> float:
    """Half a unit in the last printed digit of ``number`` (how far the printed value can be
    from the one Timeloop computed)."""
    mant = number.lower().split("e")[0]
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    exp = int(number.lower().split("e")[1]) if "e" in number.lower() else 0
    return 0.5 * 10.0 ** (exp - decimals)


def parse_stats(text: str) -> dict:
    """``{"computes", "cycles", "utilization", "energy_pj", "energy_pj_tol", "levels": [{"name",
    "instances", "energy_pj", "energy_pj_tol", "dataspaces": {name: {"reads", "fills",
    "updates"}}}]}`` from a stats.txt. ``*_tol`` is the rounding of the printed figures (half a
    unit in their last digit, summed over the terms added up)."""
    out = {"levels": []}
    parts = re.split(r"\n=== (\w+) ===\n", text)
    for name, body in zip(parts[1::2], parts[2::2]):
        m = re.search(r"Instances\s*: (\d+)", body)
        level = {"name": name, "instances": int(m.group(1)) if m else 1, "dataspaces": {}}
        energy, tol = 0.0, 0.0
        for ds in re.finditer(r"\n    (\w+):\n(.*?)(?=\n    \w+:\n|\n\w|\Z)", body, re.S):
            b = ds.group(2)
            get = lambda k: re.search(rf"Scalar {k} \(per-instance\)\s*: (\d+)", b)
            if not get("reads"):
                continue
            level["dataspaces"][ds.group(1)] = {k: int(get(k).group(1)) for k in ("reads", "fills", "updates")}
            e = re.search(r"\n\s+Energy \(total\)\s*: ([\d.e+-]+) pJ", b)
            energy += float(e.group(1)) if e else 0.0
            tol += _half_ulp(e.group(1)) if e else 0.0
        leak = re.search(r"Leakage energy \(total\)\s*: ([\d.e+-]+) pJ", body)
        compute = re.search(r"Computes \(total\)\s*: (\d+)", body)
        if compute:
            e = re.search(r"Energy \(total\)\s*: ([\d.e+-]+) pJ", body)
            energy = float(e.group(1)) if e else 0.0
            tol = _half_ulp(e.group(1)) if e else 0.0
        level["energy_pj"] = energy + (float(leak.group(1)) if leak else 0.0)
        level["energy_pj_tol"] = tol + (_half_ulp(leak.group(1)) if leak else 0.0)
        if level["dataspaces"] or compute:
            out["levels"].append(level)
    cyc = re.search(r"\nCycles: (\d+)", text)
    comp = re.search(r"Computes = (\d+)", text)
    fj = re.search(r"\n    Total\s+= ([\d.]+)", text)
    util = re.search(r"\nUtilization: ([\d.]+)%", text)
    out["cycles"] = int(cyc.group(1)) if cyc else None
    out["computes"] = int(comp.group(1)) if comp else None
    out["utilization"] = float(util.group(1)) / 100 if util else None
    out["energy_pj"] = fj and comp and float(fj.group(1)) * int(comp.group(1)) / 1000.0
    out["energy_pj_tol"] = fj and comp and _half_ulp(fj.group(1)) * int(comp.group(1)) / 1000.0
    out["levels"] = [lv for lv in out["levels"] if lv["dataspaces"]]
    return out


def pytimeloop_available() -> bool:
    try:
        import pytimeloop.app  # noqa: F401
    except Exception:
        return False
    return True


def evaluate_with_timeloop(yaml_text: str) -> dict:
    """Run ``timeloop-model`` through pytimeloop on merged Timeloop YAML; parsed stats."""
    from pytimeloop.app import ModelApp
    if shutil.which("timeloop-model") is None:
        raise RuntimeError("pytimeloop is importable but the timeloop-model binary is not on PATH")
    with tempfile.TemporaryDirectory() as d:
        stats, _ = ModelApp(yaml_text, default_out_dir=d).run_subprocess(d)
    return parse_stats(stats)


def evaluate_files_with_timeloop(paths) -> dict:
    from .timeloop import merge_files
    import yaml
    merged, _ = merge_files(paths)
    return evaluate_with_timeloop(yaml.safe_dump(merged, sort_keys=False))

