"""The closed form decides most link questions without enumerating children (``links.feasible``,
``links.may_link``, the shape conditions in ``model._group_queries``) and evaluates split
mappings inside the chunk unless a link is possible. Both shortcuts are necessary conditions
only; here they are held, on thousands of random valid mappings of every template, to the
routes without them: ``links.exact_counts`` (every group's children enumerated at every visit
kind) and the split architecture itself (``arch.split_xy``, where every split mapping is an
ordinary one). Both routes are held to the literal walk in ``tests/test_properties.py``."""
import numpy as np
import pytest

from accelerators import conv2d, evaluate_batch
from accelerators.arch import split_xy
from accelerators.links import exact_counts
from accelerators.model import _split_batch
from accelerators.reference import reference_counts
from accelerators.mapping import from_batch
from accelerators.sampling import random_batch
from accelerators.spec import list_templates, load_architecture

LAYERS = [conv2d("a", K=16, C=8, P=14, Q=14, R=3, S=3),
          conv2d("b", K=32, C=16, P=7, Q=7, R=3, S=3, stride=2)]


def _counts(res):
    return np.stack([res.reads, res.fills, res.updates], axis=-1)


@pytest.mark.parametrize("template", list_templates())
def test_prefilter_equals_enumerating_every_group(template):
    arch = load_architecture(template)
    linked = 0
    for work in LAYERS:
        b = random_batch(arch, work, 6000, seed=1, spatial_prob=0.6, bypass_prob=0.2)
        b = b[np.flatnonzero(~((b.sx > 1) & (b.sy > 1)).any(axis=(1, 2)))]   # not split
        res = evaluate_batch(arch, work, b)
        r, f, u, lk = exact_counts(arch, work, b)
        v = res.valid
        assert np.array_equal(_counts(res)[v], np.stack([r, f, u], axis=-1)[v])
        linked += int((lk[v].sum(axis=(1, 2)) > 0).sum())
    if template in ("eyeriss_like", "simba_like"):
        assert linked > 5                      # mappings that do use links are among them


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like"])
def test_split_mappings_equal_the_split_architecture(template):
    arch = load_architecture(template)
    sa, split = split_xy(arch)
    levels = [l + sum(1 for j in split if j < l) for l in range(len(arch.levels))]
    for work in LAYERS:
        b = random_batch(arch, work, 4000, seed=2, spatial_prob=0.6, bypass_prob=0.2)
        b = b[np.flatnonzero(((b.sx > 1) & (b.sy > 1)).any(axis=(1, 2)))]
        assert len(b) > 200
        res = evaluate_batch(arch, work, b)
        ref = evaluate_batch(sa, work, _split_batch(b, split))
        v = res.valid
        assert v.sum() > 20
        assert np.array_equal(_counts(res)[v], _counts(ref)[:, levels][v])
        assert np.array_equal(res.link_transfers[v], ref.link_transfers[:, levels][v])
    # and the split architecture's figures are the literal walk's, on a few of them
    for i in np.flatnonzero(res.valid)[:3]:
        m = from_batch(b, i, arch, work)
        rc = reference_counts(arch, work, m)
        for l, lv in enumerate(arch.levels):
            for s, ds in enumerate(work.dataspaces):
                got = tuple(int(x) for x in _counts(res)[i, l, s])
                assert got == rc.get((lv.name, ds.name), (0, 0, 0))
