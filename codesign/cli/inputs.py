"""The command line's input layer: every option of every command is checked here, before the
command starts any work or writes anything; a failure is a SpecError (one line naming the file
or option and the field, exit status 2; see :mod:`codesign.cli.runner`).

Checked here: integer options (range, and the size limits of :mod:`accelerators.limits` that
``--allow-large`` lifts), float options (finite, in range), input files (exist, are files, are not
empty), output files (their folder exists, a plot's extension is one matplotlib writes), the Dask
``--scheduler`` address, and the data sets and checkpoints a command reads (``--data``,
``--weights``, ``--init-from``; read with their own checks where they are loaded).
The files' contents (YAML, JSONL, run directories, data sets) are checked by their readers,
which raise the same one-line errors."""
from __future__ import annotations

import math
from pathlib import Path

from accelerators.errors import SpecError
from accelerators.limits import check_int

# option -> (lowest value, limit name in accelerators.limits.MAX, or a fixed highest value)
_INTS = {
    "mapper_budget": (1, "mapper_budget"),
    "population": (2, "population"),
    "workers": (1, "workers"),
    "limit": (0, "samples"),
    "n": (1, "samples"),
    "measurements": (1, "samples"),          # accuracy-data
    "genomes": (1, "samples"),               # cost-data
    "subnets": (1, "samples"),               # proxies
    "batch_size": (1, 65_536),
    "threads": (0, 4_096),
    "sandwich_random": (0, 64),
    "max_batches": (1, None),
    "eval_images": (1, None),
    "eval_batch": (1, 65_536),
    "draws": (1, 1_000),
    "hidden": (1, 65_536),
    "members": (1, 1_000),
    "samples": (0, 100_000),
    "test_images": (1, None),
    "seed": (0, 2 ** 63 - 1),
    "max_details": (0, 100_000),
}
# commands whose --budget is the mapper's (per layer); search's is its candidate count
_MAPPER_BUDGET_COMMANDS = ("evaluate", "map", "evaluate-network")
_PLOT_EXTENSIONS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")
# input files: option -> what it is (for the message)
_IN_FILES = ("weights", "init_from", "predictor", "cost_predictor")
_OUT_FILES = ("plot", "export_timeloop")
# commands whose --out is a file (their folders are created as needed)
_FILE_OUT_COMMANDS = ("accuracy-data", "train-predictor", "model-card", "cost-data", "train-cost-predictor", "export",
                      "report")


def check_args(args) -> None:
    """Check every option of ``args`` (a parsed ``codesign`` command line); raises SpecError."""
    cmd = getattr(args, "command", "")
    v = vars(args)
    for name, (lo, hi) in _INTS.items():
        if v.get(name) is not None and not isinstance(v[name], str):
            _int(v[name], name, lo, hi)
    if v.get("budget") is not None:
        if cmd in _MAPPER_BUDGET_COMMANDS:
            _int(v["budget"], "budget", 1, "mapper_budget")
        else:
            _int(v["budget"], "budget", 1, "search_budget")
    if isinstance(v.get("bits"), int):
        _int(v["bits"], "bits", 1, 32)
    if isinstance(v.get("epochs"), int):
        _int(v["epochs"], "epochs", 1, 1_000_000)
    if isinstance(v.get("holdout"), int) and not isinstance(v["holdout"], bool):     # a count of images
        _int(v["holdout"], "holdout", 0, None)
    if v.get("holdout_fraction") is not None:                                      # a share
        _float(v["holdout_fraction"], "holdout_fraction", 0.0, 1.0, hi_open=True)
    for name in ("mutation", "crossover"):
        if v.get(name) is not None:
            _float(v[name], name, 0.0, 1.0)
    for name in ("lr", "elastic_lr", "time_limit"):
        if v.get(name) is not None:
            _float(v[name], name, 0.0, None, lo_open=True)
    for name in _IN_FILES:
        if v.get(name):
            input_file(v[name], "--" + name.replace("_", "-"))
    for name in ("accuracy_data", "extra_data", "cost_data"):
        if v.get(name):
            for f in (v[name] if isinstance(v[name], list) else [v[name]]):
                input_file(f, "--" + name.replace("_", "-"))
    if v.get("space"):
        input_file(v["space"], "--space")
        from codesign.space.joint import read_space
        read_space(v["space"])                  # the whole space file, before any other input
    if v.get("data"):
        p = Path(v["data"])
        if not p.exists():
            raise SpecError("--data", "no such file or directory", str(p))
    for name in _OUT_FILES:
        if v.get(name):
            output_file(v[name], "--" + name.replace("_", "-"))
    if v.get("plot"):
        ext = Path(v["plot"]).suffix.lower()
        if ext not in _PLOT_EXTENSIONS:
            raise SpecError("--plot", f"unknown image format {ext or '(none)'!r} (one of {', '.join(_PLOT_EXTENSIONS)})",
                            v["plot"])
    if cmd in ("map", "add-measured") and v.get("out"):
        output_file(v["out"], "--out")
    if cmd == "add-measured" and not Path(v["run"]).exists():
        raise SpecError("run", "no such run directory or measured file", v["run"])
    if cmd in _FILE_OUT_COMMANDS and v.get("out") and Path(v["out"]).is_dir() \
            and not (cmd == "export" and v.get("design") is not None):      # export --design: a folder
        raise SpecError("--out", "is a directory (give a file name)", v["out"])
    if cmd in ("search", "sweep", "train-supernet") and v.get("out") and Path(v["out"]).is_file():
        raise SpecError("--out", "is a file (give a run directory)", v["out"])
    if v.get("scheduler"):
        from codesign.search.executors import probe_scheduler
        probe_scheduler(check_scheduler_address(v["scheduler"]))     # a live Dask scheduler, before any work
    for name, flag in (("weights", "--weights"), ("init_from", "--init-from")):
        if v.get(name) and cmd == "export":
            from codesign.report.design import torch_available
            if not torch_available():               # the design's Timeloop files need no torch
                continue
        if v.get(name):
            check_checkpoint(v[name], flag)
    if cmd in ("search", "sweep", "train-supernet") and v.get("resume"):
        d = Path(v["resume"])
        if not d.is_dir():
            raise SpecError("--resume", "no such run directory", str(d))


def _int(value, name: str, lo: int, hi) -> int:
    flag = "--" + name.replace("_", "-")
    if isinstance(hi, str):
        return check_int(value, flag, lo=lo, limit=hi)
    return check_int(value, flag, lo=lo, hi=hi)


def _float(value, name: str, lo, hi, *, lo_open=False, hi_open=False) -> float:
    flag = "--" + name.replace("_", "-")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SpecError(flag, f"must be a finite number, not {value!r}")
    if (value < lo or (lo_open and value == lo)) or (hi is not None and (value > hi or (hi_open and value == hi))):
        rng = f"{'(' if lo_open else '['}{lo:g}, {'inf' if hi is None else f'{hi:g}'}{')' if hi_open or hi is None else ']'}"
        raise SpecError(flag, f"must be within {rng}, not {value!r}")
    return value


def input_file(path, flag: str) -> Path:
    """An input file: it exists, is a file, can be read and is not empty."""
    p = Path(path)
    if not p.exists():
        raise SpecError(flag, "no such file", str(p))
    if not p.is_file():
        raise SpecError(flag, "not a file", str(p))
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as e:
        raise SpecError(flag, e.strerror or "cannot be read", str(p)) from None
    if size == 0:
        raise SpecError(flag, "empty file", str(p))
    return p


def output_file(path, flag: str) -> Path:
    """An output file: its folder exists and it is not a folder itself."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(flag, "is a directory (give a file name)", str(p))
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise SpecError(flag, f"no such directory: {parent}", str(p))
    return p


def check_scheduler_address(addr: str) -> str:
    """A Dask scheduler address: ``tcp://host:port`` (or tls://, ucx://, inproc://), checked before
    any connection; the dashboard URL (http://host:8787/status), a missing port or a path is
    refused with the reason."""
    from urllib.parse import urlsplit
    a = str(addr).strip()
    if not a:
        raise SpecError("--scheduler", "empty address")
    if a.startswith(("http://", "https://")):
        raise SpecError("--scheduler", "an HTTP URL (the dashboard?): give the scheduler's address, e.g. "
                        "tcp://host:8786", a)
    if "://" not in a:
        raise SpecError("--scheduler", "expected tcp://host:port (e.g. tcp://127.0.0.1:8786)", a)
    scheme = a.split("://", 1)[0]
    if scheme not in ("tcp", "tls", "ucx", "inproc", "ws", "wss"):
        raise SpecError("--scheduler", f"unknown protocol {scheme!r} (tcp://host:port)", a)
    if scheme == "inproc":
        return a
    u = urlsplit(a)
    try:
        port = u.port
    except ValueError:
        raise SpecError("--scheduler", "the port is not a number in 1..65535", a) from None
    if not u.hostname:
        raise SpecError("--scheduler", "no host (tcp://host:port)", a)
    if port is None:
        raise SpecError("--scheduler", "no port (the scheduler listens on tcp://host:8786 by default)", a)
    if not 1 <= port <= 65535:
        raise SpecError("--scheduler", "the port is not a number in 1..65535", a)
    if u.path not in ("", "/") or u.query or u.fragment:
        raise SpecError("--scheduler", "an address has no path (tcp://host:port)", a)
    return a


def check_checkpoint(path, flag: str) -> None:
    """A supernet state_dict file loads (``torch.load(weights_only=True)``: no code runs) and fits
    the supernet; otherwise one line naming the file."""
    from codesign.nn.supernet import load_supernet
    try:
        load_supernet(path)
    except SpecError as e:
        raise SpecError(flag, e.message, str(path)) from None


def check_dataset(path, flag: str = "--data", *, split: str = "validation", min_images: int = 1) -> None:
    """A data set loads (zip integrity, every image decodes within the pixel limit) and the split
    a command measures on (``validation``: the held-out training images; ``test``) holds at least
    ``min_images`` images."""
    from codesign.artifacts import measure_split
    _, ev = measure_split(path, split)
    if len(ev) < min_images:
        raise SpecError(flag, f"the {split} split has {len(ev)} images; this needs at least {min_images}", str(path))
