"""What every run directory shares (a search's and a sweep's): ``config.json`` holds the resolved
configuration, written once and atomically when the run is created; a later start on the same
directory must bring the same configuration (or resume from the stored one); ``store.sqlite``
holds the results (``codesign.rundir.store``). ``run_kind`` tells the two kinds apart."""
from __future__ import annotations

import json
from pathlib import Path

from accelerators.errors import SpecError

CONFIG = "config.json"
STORE = "store.sqlite"


def read_config_json(directory, what: str = "run") -> dict:
    """The parsed ``DIR/config.json`` (a SpecError when it is missing or not JSON)."""
    d = Path(directory)
    cp = d / CONFIG
    if not cp.is_file():
        raise SpecError("run", f"not a {what} directory (no config.json)", str(directory))
    try:
        return json.loads(cp.read_text())
    except json.JSONDecodeError as e:
        raise SpecError("config", f"not valid JSON ({e.msg}, line {e.lineno})", str(cp)) from None


def create_or_check(directory, config: dict, read_config, *, what: str = "run", refuse_bare_store: bool = False,
                    **dump) -> Path:
    """Create the run directory with ``config`` (``json.dumps(config, **dump)``), or check that the
    configuration already there (``read_config(DIR)``) is the same; returns the directory."""
    d = Path(directory)
    cp = d / CONFIG
    if cp.is_file():
        if read_config(d) != json.loads(json.dumps(config)):
            raise SpecError("--out", f"a {what} with a different configuration is already here (use --resume DIR "
                            "to continue it, or another --out)", str(d))
    elif refuse_bare_store and (d / STORE).exists():
        raise SpecError("--out", f"holds a run store but no config.json (not a {what} directory)", str(d))
    else:
        d.mkdir(parents=True, exist_ok=True)
        tmp = cp.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, **dump))
        tmp.replace(cp)
    return d


def run_kind(directory) -> str:
    """'search' (``codesign search`` output) or 'sweep' (``codesign sweep`` output)."""
    d = Path(directory)
    if not d.exists():
        raise SpecError("DIR", "no such directory", str(d))
    if not d.is_dir():
        raise SpecError("DIR", "not a directory (give a run directory)", str(d))
    cfg = read_config_json(d) if (d / CONFIG).is_file() else None
    if isinstance(cfg, dict) and "evaluator" in cfg:
        return "search"
    if isinstance(cfg, dict) and "sweep" in cfg:          # a sweep has a store.sqlite too
        return "sweep"
    if (d / "results.csv").is_file() and not (d / "front.csv").is_file():
        return "sweep"
    if (d / STORE).is_file() or (d / CONFIG).is_file():
        return "search"                                   # read_config names what is missing
    raise SpecError("DIR", "not a run directory (no config.json + store.sqlite of a search, "
                    "no results.csv of a sweep)", str(d))
