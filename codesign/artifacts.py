"""Where the shipped artifacts live (``codesign/weights/``) and the evaluation split of a data
set: what the accuracy commands, the evaluator and the tests share."""
from __future__ import annotations

from pathlib import Path

from accelerators.errors import SpecError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def supernet_path(path=None) -> Path:
    p = Path(path) if path else WEIGHTS_DIR / "supernet.pt"
    if not p.is_file():
        raise SpecError("--weights", "no trained supernet here (make one with: codesign train-supernet "
                        "--data DIR --out DIR)", str(p))
    return p


def eval_split(data, holdout: int = 5000, seed: int = 0):
    """(held-out training images for BN recalibration, test split) of a data set root."""
    from .data import holdout_split, load_split
    if not Path(data).exists():
        raise SpecError("--data", "no such file or directory", str(data))
    train = load_split(data, "train")
    _, hold = holdout_split(train, min(holdout, len(train) // 2), seed=seed)
    return hold, load_split(data, "test")
