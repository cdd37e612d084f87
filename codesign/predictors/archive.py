"""A predictor on disk: one ``.npz`` with its arrays and a JSON ``meta`` (numpy only, no pickle)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError


def save_npz(path, meta: dict, arrays: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_npz(path, field: str, what: str) -> tuple[dict, dict]:
    """(meta, {name: array}) of a file written by ``save_npz``; a missing, corrupt or foreign file
    is a SpecError (``field``: what the message names, ``what``: the file's kind)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(field, "no such file", str(p))
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except Exception as e:            # zip / npy / JSON / missing key: a corrupt or foreign file
        raise SpecError(field, f"not {what} ({type(e).__name__}: {e})", str(p)) from None
    if not isinstance(meta, dict):
        raise SpecError(field, f"not {what}", str(p))
    return meta, arrays
