"""Reading CIFAR-10's python batches: real ones load; a crafted pickle cannot run code, it is
refused with one line naming the file."""
import pickle

import numpy as np
import pytest

from accelerators.errors import SpecError
from codesign.nn.data import load_split


def _write_batches(d, n=4):
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(x) for x in rng.integers(0, 10, n)], b"filenames": [b"x.png"] * n}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2))


def test_cifar_batches_load(tmp_path):
    _write_batches(tmp_path / "cifar-10-batches-py")
    data = load_split(tmp_path, "train")
    assert data.images.shape == (20, 3, 32, 32) and data.images.dtype == np.uint8
    assert data.classes == [f"c{i}" for i in range(10)]


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED",))


def test_crafted_batch_is_refused_without_running_it(tmp_path, monkeypatch):
    d = tmp_path / "cifar-10-batches-py"
    _write_batches(d)
    (d / "test_batch").write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="test_batch.*refusing to load"):
        load_split(tmp_path, "test")
    assert not (tmp_path / "PWNED").exists()
