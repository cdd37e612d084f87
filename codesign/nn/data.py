"""Image-classification data on disk: ImageFolder layout (``split/<class>/<image>``) as a
directory or a zip, or torchvision's ``cifar-10-batches-py`` pickles. Images are read with
Pillow, resized to one square size, and held as uint8 arrays (N, 3, H, W); class names come from
the folder names, sorted."""
from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass
class ImageSet:
    images: np.ndarray        # (N, 3, H, W) uint8
    labels: np.ndarray        # (N,) int64
    classes: list

    def __len__(self):
        return len(self.labels)

    def subset(self, idx) -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], self.classes)


def _decode(data: bytes, size: int) -> np.ndarray:
    from PIL import Image
    im = Image.open(io.BytesIO(data)).convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def _from_entries(entries, size: int, where: str) -> ImageSet:
    """entries: list of (class name, loader returning bytes)."""
    if not entries:
        raise SpecError("data", "no images found (expected <split>/<class>/<image> files)", where)
    classes = sorted({c for c, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(entries), 3, size, size), np.uint8)
    labels = np.empty(len(entries), np.int64)
    for i, (c, load) in enumerate(entries):
        images[i] = _decode(load(), size)
        labels[i] = index[c]
    return ImageSet(images, labels, classes)


def load_split(root, split: str, size: int = 32) -> ImageSet:
    """``split`` ('train' or 'test') from ``root``: ``root/<split>.zip``, ``root/<split>/``,
    ``root`` itself if it is such a zip or folder, or a ``cifar-10-batches-py`` folder."""
    root = Path(root)
    cands = [root / f"{split}.zip", root / split, root]
    for c in cands:
        if c.is_file() and c.suffix == ".zip":
            return _load_zip(c, split, size)
        if c.is_dir() and (c / "batches.meta").is_file():
            return _load_cifar_batches(c, split, size)
        if c.is_dir() and c.name == split:
            return _load_dir(c, size)
    if (root / "cifar-10-batches-py").is_dir():
        return _load_cifar_batches(root / "cifar-10-batches-py", split, size)
    raise SpecError("data", f"no '{split}' split found (looked for {split}.zip, {split}/, "
                    "cifar-10-batches-py/)", str(root))


def _load_zip(path: Path, split: str, size: int) -> ImageSet:
    z = zipfile.ZipFile(path)
    entries = []
    for name in sorted(z.namelist()):
        parts = name.split("/")
        if not name.lower().endswith(IMAGE_SUFFIXES) or len(parts) < 2:
            continue
        if parts[0] == split and len(parts) >= 3:
            cls = parts[1]
        elif len(parts) == 2:
            cls = parts[0]
        else:
            continue
        entries.append((cls, lambda n=name: z.read(n)))
    return _from_entries(entries, size, str(path))


def _load_dir(path: Path, size: int) -> ImageSet:
    entries = [(f.parent.name, f.read_bytes) for f in sorted(path.glob("*/*"))
               if f.suffix.lower() in IMAGE_SUFFIXES]
    return _from_entries(entries, size, str(path))


class _BatchUnpickler(pickle.Unpickler):
    """The CIFAR-10 python batches are pickles of dicts of bytes, lists and one uint8 array: only
    numpy's array reconstruction (and ``_codecs.encode``, which protocol-2 pickles written by
    Python 3 use for raw bytes) may be named, so a crafted file cannot run code on load."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_batch(f: Path) -> dict:
    try:
        with open(f, "rb") as fh:
            d = _BatchUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError) as e:
        raise SpecError("data", f"not a CIFAR-10 python batch ({e})", str(f)) from None
    if not isinstance(d, dict):
        raise SpecError("data", "not a CIFAR-10 python batch (not a dict)", str(f))
    return d


def _load_cifar_batches(path: Path, split: str, size: int) -> ImageSet:
    files = [path / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [path / "test_batch"]
    xs, ys = [], []
    for f in files:
        d = _load_batch(f)
        xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[b"labels"], np.int64))
    meta = _load_batch(path / "batches.meta")
    classes = [c.decode() for c in meta[b"label_names"]]
    x = np.concatenate(xs)
    if size != 32:
        from PIL import Image
        x = np.stack([np.asarray(Image.fromarray(im.transpose(1, 2, 0)).resize((size, size), Image.BILINEAR))
                      .transpose(2, 0, 1) for im in x])
    return ImageSet(x, np.concatenate(ys), classes)


def holdout_split(data: ImageSet, n_holdout: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, held-out) with a seeded, class-balanced held-out part (for BN recalibration and
    accuracy-predictor data; the test split stays untouched for reporting)."""
    rng = np.random.default_rng(seed)
    per = n_holdout // len(data.classes)
    hold = []
    for c in range(len(data.classes)):
        idx = np.nonzero(data.labels == c)[0]
        hold.extend(rng.choice(idx, per, replace=False))
    mask = np.zeros(len(data), bool)
    mask[hold] = True
    return data.subset(~mask), data.subset(mask)
