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


def predictor_split(data, holdout: int = 5000, calib_images: int = 2000, seed: int = 0):
    """(BN-calibration images from the training part, the held-out training images with labels):
    what the accuracy-predictor data is measured on (the test split stays for reporting)."""
    from .data import holdout_split, load_split
    if not Path(data).exists():
        raise SpecError("--data", "no such file or directory", str(data))
    train_all = load_split(data, "train")
    train, hold = holdout_split(train_all, min(holdout, len(train_all) // 2), seed=seed)
    import numpy as np
    idx = np.random.default_rng(seed).choice(len(train), min(calib_images, len(train)), replace=False)
    return train.images[np.sort(idx)], hold
