"""The batched model takes shortcuts per chunk of mappings (dimensions whose factors are all 1
dropped, levels without spatial factors skipped, one keep pattern resolved once, int32 loop
arrays where the factors bound them): evaluating mappings together or one at a time must give
exactly the same figures."""
import numpy as np
import pytest

from accelerators import conv2d, evaluate_batch, matmul
from accelerators.sampling import random_batch
from accelerators.spec import load_architecture


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like", "simba_like"])
@pytest.mark.parametrize("work", [
    conv2d("strided", K=8, C=4, P=6, Q=6, R=3, S=3, stride=2),       # N = 1: dropped
    matmul("big", M=4096, N=4096, K=1024),                          # products > 2^31: int64
], ids=["conv", "big_matmul"])
def test_chunking_does_not_change_results(template, work):
    arch = load_architecture(template)
    b = random_batch(arch, work, 60, seed=1, spatial_prob=0.4, bypass_prob=0.2)
    if "N" in work.dims and work.bounds["N"] == 1:
        b.tf[0, 0, work.dims.index("N")] = 2       # an invalid mapping that keeps N in its chunk
    whole = evaluate_batch(arch, work, b)
    for i in range(0, len(b), 7):
        one = evaluate_batch(arch, work, b[i:i + 1])
        for k, v in vars(whole).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v[i:i + 1], getattr(one, k)), (k, i)
