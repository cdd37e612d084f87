"""Where the shipped artifacts live (``codesign/weights/``) and the evaluation split of a data
set: what the accuracy commands, the evaluator and the tests share."""
from __future__ import annotations

from pathlib import Path

from accelerators.errors import SpecError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def repository_root(start=None) -> Path | None:
    """The codesign-sim checkout holding ``start`` (default: the working directory), found upwards
    (a folder with ``pyproject.toml`` and ``notebooks/``), or None outside a checkout."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "notebooks").is_dir() and (d / "codesign").is_dir():
            return d
    return None


def notebook_output_dir(name: str) -> Path:
    """Where a notebook writes its runs: ``$CODESIGN_NOTEBOOK_OUT/name`` when that is set, else
    ``runs/name`` in the repository root (found from the working directory upwards, so a notebook
    opened in Jupyter, whose kernel starts in ``notebooks/``, writes to the checkout's ``runs/``),
    else ``./runs/name``. An absolute path."""
    import os
    env = os.environ.get("CODESIGN_NOTEBOOK_OUT")
    if env:
        base = Path(env)
    else:
        root = repository_root()
        base = (root if root is not None else Path.cwd()) / "runs"
    return (base / name).resolve()


def supernet_path(path=None) -> Path:
    p = Path(path) if path else WEIGHTS_DIR / "supernet.pt"
    if not p.is_file():
        raise SpecError("--weights", "no trained supernet here (make one with: codesign train-supernet "
                        "--data DIR --out DIR)", str(p))
    return p


SPLITS = ("validation", "test")


def measure_split(data, split: str = "validation", holdout: int = 5000, seed: int = 0):
    """(BN / range calibration images, evaluation ImageSet) for measuring a subnet.

    ``validation`` (the default, for every search, decision and log): calibration on 2,000
    images of the training part, evaluation on the held-out training images
    (:func:`predictor_split`). ``test``: calibration on the held-out training images, evaluation
    on the test split, only for a final report (``model-card``, ``accuracy --split test``)."""
    if split not in SPLITS:
        raise SpecError("--split", f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    if split == "validation":
        return predictor_split(data, holdout, seed=seed)
    hold, test = eval_split(data, holdout, seed)
    return hold.images, test


def eval_split(data, holdout: int = 5000, seed: int = 0):
    """(held-out training images for BN recalibration, test split) of a data set root: the final
    report's split (``model-card``); searches and decisions use :func:`measure_split`'s validation."""
    from codesign.nn.data import holdout_split, load_split
    if not Path(data).exists():
        raise SpecError("--data", "no such file or directory", str(data))
    train = load_split(data, "train")
    _, hold = holdout_split(train, min(holdout, len(train) // 2), seed=seed)
    return hold, load_split(data, "test")


def predictor_split(data, holdout: int = 5000, calib_images: int = 2000, eval_images: int | None = None,
                    seed: int = 0):
    """(BN-calibration images from the training part, held-out training images with labels):
    what the accuracy-predictor data is measured on (the test split stays for reporting).

    ``holdout`` must be the supernet training's (``TrainConfig.holdout``, 5000 by default):
    the held-out part is drawn exactly as training drew it, so no evaluation image was trained
    on; ``eval_images`` takes a seeded, class-balanced subset of it (fewer images, faster
    measurement)."""
    from codesign.nn.data import holdout_split, load_split
    if not Path(data).exists():
        raise SpecError("--data", "no such file or directory", str(data))
    train_all = load_split(data, "train")
    train, hold = holdout_split(train_all, min(holdout, len(train_all) // 2), seed=seed)
    if eval_images is not None and eval_images < len(hold):
        if eval_images < len(hold.classes):
            raise SpecError("--eval-images", f"needs at least one image per class ({len(hold.classes)})",
                            str(eval_images))
        _, hold = holdout_split(hold, eval_images, seed=seed)
    import numpy as np
    idx = np.random.default_rng(seed).choice(len(train), min(calib_images, len(train)), replace=False)
    return train.images[np.sort(idx)], hold
