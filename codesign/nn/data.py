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
MAX_IMAGE_PIXELS = 4096 * 4096          # one image; larger is refused before it is decoded
MAX_IMAGE_BYTES = 64 * 1024 * 1024      # one image file (or zip member, uncompressed)
MAX_IMAGES = 300_000                    # one split (uint8 32x32: under 1 GB)


@dataclass
class ImageSet:
    images: np.ndarray        # (N, 3, H, W) uint8
    labels: np.ndarray        # (N,) int64
    classes: list

    def __len__(self):
        return len(self.labels)

    def subset(self, idx) -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], self.classes)


def _decode(data: bytes, size: int, where: str = "image") -> np.ndarray:
    """One image as (3, size, size) uint8; an undecodable, truncated or oversized image is a
    SpecError naming it (Pillow's pixel limit is enforced before decoding)."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise SpecError("data", f"image of {w}x{h} pixels is over the limit of {MAX_IMAGE_PIXELS:,} "
                                "(a decompression bomb?)", where)
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except SpecError:
        raise
    except Image.DecompressionBombError:
        raise SpecError("data", "image over Pillow's pixel limit (a decompression bomb?)", where) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombWarning) as e:
        msg = " ".join(str(e).split())[:120] or type(e).__name__
        raise SpecError("data", f"not a readable image ({msg})", where) from None


def _from_entries(entries, size: int, where: str) -> ImageSet:
    """entries: list of (class name, loader returning bytes[, the entry's name])."""
    if not entries:
        raise SpecError("data", "no images found (expected <split>/<class>/<image> files)", where)
    if len(entries) > MAX_IMAGES:
        raise SpecError("data", f"{len(entries):,} images is over the limit of {MAX_IMAGES:,}", where)
    classes = sorted({e[0] for e in entries})
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(entries), 3, size, size), np.uint8)
    labels = np.empty(len(entries), np.int64)
    for i, e in enumerate(entries):
        c, load = e[0], e[1]
        name = f"{where}:{e[2]}" if len(e) > 2 else where
        images[i] = _decode(load(), size, name)
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
    import zlib
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise SpecError("data", f"not a readable zip ({' '.join(str(e).split())[:120]})", str(path)) from None
    entries = []
    for info in sorted(z.infolist(), key=lambda i: i.filename):
        name = info.filename
        parts = name.split("/")
        if not name.lower().endswith(IMAGE_SUFFIXES) or len(parts) < 2:
            continue
        if parts[0] == split and len(parts) >= 3:
            cls = parts[1]
        elif len(parts) == 2:
            cls = parts[0]
        else:
            continue
        if info.file_size > MAX_IMAGE_BYTES:
            raise SpecError("data", f"{name}: {info.file_size:,} bytes uncompressed is over the limit of "
                            f"{MAX_IMAGE_BYTES:,} (a zip bomb?)", str(path))
        entries.append((cls, lambda n=name: _zip_read(z, n, path), name))
    try:
        return _from_entries(entries, size, str(path))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise SpecError("data", f"corrupt zip ({' '.join(str(e).split())[:120]})", str(path)) from None


def _zip_read(z, name: str, path) -> bytes:
    import zlib
    try:
        return z.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
        raise SpecError("data", f"{name}: corrupt zip member ({' '.join(str(e).split())[:100]})", str(path)) from None


def _read_image_file(f: Path) -> bytes:
    size = f.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise SpecError("data", f"{size:,} bytes is over the limit of {MAX_IMAGE_BYTES:,} for one image", str(f))
    return f.read_bytes()


def _load_dir(path: Path, size: int) -> ImageSet:
    entries = [(f.parent.name, lambda f=f: _read_image_file(f), f.relative_to(path).as_posix())
               for f in sorted(path.glob("*/*")) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
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
    if not f.is_file():
        raise SpecError("data", "missing CIFAR-10 python batch", str(f))
    if f.stat().st_size > 4 * MAX_IMAGE_BYTES:
        raise SpecError("data", "too large for a CIFAR-10 python batch", str(f))
    try:
        with open(f, "rb") as fh:
            d = _BatchUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError, KeyError,
            TypeError, MemoryError, RecursionError, OverflowError) as e:
        raise SpecError("data", f"not a CIFAR-10 python batch ({e})", str(f)) from None
    if not isinstance(d, dict):
        raise SpecError("data", "not a CIFAR-10 python batch (not a dict)", str(f))
    return d


def _load_cifar_batches(path: Path, split: str, size: int) -> ImageSet:
    files = [path / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [path / "test_batch"]
    xs, ys = [], []
    for f in files:
        d = _load_batch(f)
        try:
            x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(d[b"labels"], np.int64).reshape(-1)
            if len(x) != len(y) or (len(y) and (y.min() < 0 or y.max() > 9)):
                raise ValueError("data and labels do not match")
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise SpecError("data", f"not a CIFAR-10 python batch ({type(e).__name__}: {str(e)[:80]})", str(f)) from None
        xs.append(x)
        ys.append(y)
    meta = _load_batch(path / "batches.meta")
    try:
        classes = [c.decode() for c in meta[b"label_names"]]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise SpecError("data", "not a CIFAR-10 batches.meta (label_names)", str(path / "batches.meta")) from None
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
        if len(idx) < per:
            raise SpecError("data", f"class {data.classes[c]!r} has {len(idx)} images; holding out {n_holdout:,} "
                            f"images class-balanced needs {per} of each")
        hold.extend(rng.choice(idx, per, replace=False))
    mask = np.zeros(len(data), bool)
    mask[hold] = True
    return data.subset(~mask), data.subset(mask)


def write_synthetic_imagefolder(root, per_class: int = 6, test_per_class: int = 2, classes: int = 10,
                                seed: int = 0) -> Path:
    """A tiny CIFAR-like data set for smoke runs and tests, in the layout :func:`load_split`
    reads (``ROOT/train.zip``, ``ROOT/test.zip``, ImageFolder inside): class ``c``'s 32x32 PNG
    images are seeded noise around grey level ``20 c`` (so classes are learnable). Returns ROOT."""
    from PIL import Image
    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", per_class), ("test", test_per_class)):
        with zipfile.ZipFile(root / f"{split}.zip", "w") as z:
            for c in range(classes):
                for i in range(n):
                    arr = (rng.random((32, 32, 3)) * 40 + c * 20).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(arr).save(buf, format="PNG")
                    z.writestr(f"{split}/class{c}/{i:03d}.png", buf.getvalue())
    return root
