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


# ---------------------------------------------------------------------------- the link pre-tests

FIELDS = ("valid", "reads", "fills", "updates", "link_transfers", "tiles", "instances_used",
          "energy_action_pj", "leak_pj", "level_energy_pj", "energy_pj", "compute_cycles",
          "cycles", "utilization", "macs_used")


def _both_paths(arch, work, b, chunk=8192):
    """``evaluate_batch`` with the link pre-tests (``model._link_pretests``) and without them."""
    import accelerators.model as model
    fast = evaluate_batch(arch, work, b, chunk=chunk)
    model._LINK_PRETESTS = False
    try:
        full = evaluate_batch(arch, work, b, chunk=chunk)
    finally:
        model._LINK_PRETESTS = True
    return fast, full


def _assert_identical(fast, full, what):
    for f in FIELDS:
        assert np.array_equal(getattr(fast, f), getattr(full, f)), (what, f)


def test_fast_path_equals_full_path_on_the_benchmark_mixes():
    """The pre-tests skip the exact link computation only where it gives nothing: every count
    and energy bit-identical to the route without them, on the mixes ``benchmarks/link_speed.py``
    times (smaller), and on random mappings of every template and of a row-stationary array with
    overlapping input windows over two groups: both spatial axes, splits, bypass, and random
    spatial orders. Chunks smaller than the batches, so that the deferred route runs too."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import link_speed
    from test_properties import ARCH, RS_ARCH
    work = link_speed.layer()
    linked = 0
    for name in link_speed.TEMPLATES:
        arch = load_architecture(name)
        for mix, b in link_speed.mixes(name, work, 3000, budget=1500).items():
            fast, full = _both_paths(arch, work, b, chunk=1024)
            _assert_identical(fast, full, (name, mix))
            linked += int((full.link_transfers.sum(axis=(1, 2)) > 0).sum())
    small = [conv2d("c", K=4, C=4, P=8, Q=8, R=3, S=3), conv2d("s", K=8, C=4, P=4, Q=6, R=3, S=2, stride=2),
             conv2d("p", K=8, C=8, P=6, Q=6, R=1, S=1)] + LAYERS
    cases = [(load_architecture(t), w) for t in list_templates() for w in LAYERS]
    cases += [(RS_ARCH, w) for w in small]
    cases += [(ARCH, w) for w in small]             # two spatial levels: RF array and the MACs
    for i, (arch, w) in enumerate(cases):
        b = random_batch(arch, w, 3000, seed=10 + i, spatial_prob=0.7, bypass_prob=0.25)
        if i % 2:                                   # Timeloop's own spatial order, random
            b.sorder = np.argsort(np.random.default_rng(i).random(b.tf.shape), axis=2)
        fast, full = _both_paths(arch, w, b, chunk=512)
        _assert_identical(fast, full, (arch.name, w.name))
        linked += int((full.link_transfers.sum(axis=(1, 2)) > 0).sum())
    # several layers of one structure in one call (each row its own bounds; codes of the envelope)
    from accelerators.model import evaluate_group
    import accelerators.model as model
    works = [conv2d("g1", K=4, C=4, P=8, Q=8, R=3, S=3), conv2d("g2", K=8, C=2, P=6, Q=4, R=3, S=3),
             conv2d("g3", K=2, C=8, P=14, Q=7, R=1, S=3)]
    for arch in (load_architecture("eyeriss_like"), RS_ARCH, ARCH):
        parts = [random_batch(arch, w, 1200, seed=20 + j, spatial_prob=0.7, bypass_prob=0.25)
                 for j, w in enumerate(works)]
        b = parts[0].concat(parts)
        which = np.repeat(np.arange(len(works)), [len(p) for p in parts])
        fast = evaluate_group(arch, works, b, which, chunk=512)
        model._LINK_PRETESTS = False
        try:
            full = evaluate_group(arch, works, b, which, chunk=512)
        finally:
            model._LINK_PRETESTS = True
        _assert_identical(fast, full, (arch.name, "group"))
        linked += int((full.link_transfers.sum(axis=(1, 2)) > 0).sum())
    assert linked > 50                              # links are used in these mixes


def test_shared_choose_memo_gives_the_answers_of_a_cold_one():
    """``links.choose``'s memo is shared by every plan and call: figures evaluated after many
    other architectures and layers filled it equal those evaluated from an empty memo, one
    (template, layer) at a time, in the opposite order."""
    import accelerators.model as model
    cases = []
    for template in list_templates():
        arch = load_architecture(template)
        for work in LAYERS:
            cases.append((arch, work, random_batch(arch, work, 3000, seed=4, spatial_prob=0.6, bypass_prob=0.2)))
    model.clear_choose_memo()
    warm = [evaluate_batch(a, w, b) for a, w, b in cases]
    assert len(model._CHOOSE_MEMO) > 0
    for (a, w, b), res in reversed(list(zip(cases, warm))):
        model.clear_choose_memo()
        cold = evaluate_batch(a, w, b)
        for f in ("valid", "reads", "fills", "updates", "link_transfers", "cycles", "energy_pj"):
            assert np.array_equal(getattr(res, f), getattr(cold, f)), (a.name, w.name, f)
