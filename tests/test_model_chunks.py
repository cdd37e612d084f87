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


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like", "simba_like"])
def test_deferred_exact_route_does_not_change_results(template, monkeypatch):
    """Mappings whose link transfers take the exact route (split mappings, bypass patterns the
    light patch cannot carry) are gathered from every chunk and evaluated again together: the
    figures equal those of chunks too small to defer (exactly), and the deferral happens."""
    from accelerators import model
    arch = load_architecture(template)
    work = conv2d("c", K=16, C=8, P=14, Q=14, R=3, S=3)
    b = random_batch(arch, work, 600, seed=3, spatial_prob=0.5, bypass_prob=0.2)
    seen = []
    real = model._evaluate_chunk

    def spy(*a, **k):
        rows = real(*a, **k)
        seen.append(rows.size)
        return rows
    monkeypatch.setattr(model, "_evaluate_chunk", spy)
    whole = evaluate_batch(arch, work, b, chunk=200)
    assert sum(seen) > 0                       # some mappings took the deferred route
    small = evaluate_batch(arch, work, b, chunk=50)      # < 64 mappings: nothing deferred
    for k, v in vars(whole).items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, getattr(small, k)), k


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like", "simba_like"])
def test_group_of_layers_equals_each_layer_alone(template):
    """evaluate_group (several layers of one structure in one batch, codes from their envelope)
    gives every figure exactly as evaluate_batch on each layer alone, links and splits included."""
    from accelerators.model import evaluate_group, group_key
    arch = load_architecture(template)
    works = [conv2d("a", K=16, C=8, P=14, Q=14, R=3, S=3), conv2d("b", K=64, C=32, P=7, Q=7, R=3, S=3),
             conv2d("c", K=32, C=64, P=28, Q=28, R=1, S=1), conv2d("d", K=8, C=3, P=32, Q=32, R=5, S=5)]
    assert len({group_key(w) for w in works}) == 1
    batches = [random_batch(arch, w, 700, seed=i, spatial_prob=0.5, bypass_prob=0.2) for i, w in enumerate(works)]
    from accelerators.mapping import MappingBatch
    both = MappingBatch.concat(batches)
    which = np.repeat(np.arange(len(works)), [len(b) for b in batches])
    perm = np.random.default_rng(0).permutation(len(both))          # interleaved rows
    grp = evaluate_group(arch, works, both[perm], which[perm], chunk=1000)
    at = 0
    for w, b in zip(works, batches):
        alone = evaluate_batch(arch, w, b)
        rows = np.argsort(perm)[at:at + len(b)]
        at += len(b)
        assert alone.valid.any()
        for k, v in vars(alone).items():
            g = getattr(grp, k)
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, g[rows]), k
            else:
                assert np.all(g[rows] == v), k
    with pytest.raises(ValueError):
        evaluate_group(arch, [works[0], conv2d("s", K=4, C=4, P=4, Q=4, R=3, S=3, stride=2)], both[:2], [0, 1])
