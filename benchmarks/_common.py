"""Shared by the benchmark scripts: one pinned core, the repository on sys.path, and ZigZag run
in its scratch venv (``benchmarks/zigzag_peer.py``, see ZIGZAG.md)."""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import subprocess
import sys
from pathlib import Path

try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
except (AttributeError, OSError):
    pass

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
ZIGZAG_VENV = Path(os.environ.get("ZIGZAG_VENV", "/tmp/zigzag-venv"))


def run_zigzag(*args: str) -> dict | None:
    """``zigzag_peer.py ARGS`` in the scratch venv (created on first use); its key: value lines."""
    py = ZIGZAG_VENV / "bin" / "python"
    if not py.exists():
        print(f"# creating scratch venv {ZIGZAG_VENV} with zigzag-dse + six", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(ZIGZAG_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "zigzag-dse", "six"], check=True)
    r = subprocess.run([str(py), str(HERE / "zigzag_peer.py"), *args], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"# zigzag_peer failed: {r.stderr.strip().splitlines()[-1:]}")
        return None
    return dict(line.split(": ", 1) for line in r.stdout.strip().splitlines() if ": " in line)
