"""Where the shipped spec files are: ``accelerators/specs/`` (accelerator templates, the energy
table, workloads, the default co-search space and sweeps), package data found through
``importlib.resources`` so that a plain (non-editable) install has them too. In a checkout the
repository's ``specs/`` is a link to the same folder."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SPECS_DIR = Path(str(files("accelerators") / "specs"))
