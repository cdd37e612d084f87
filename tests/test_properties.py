"""Property tests on random mappings: physical lower bounds hold, and the closed-form batched
model equals both its scalar wrapper and the literal re-enactment of Timeloop's nest analysis,
with Timeloop's link transfers on and off."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelerators import (ActionEnergy, Architecture, Compute, Level, conv2d, depthwise_conv2d,
                          evaluate, evaluate_batch, matmul)
from accelerators.mapping import from_batch
from accelerators.reference import reference_counts
from accelerators.sampling import random_batch

DRAM_PJ = 64.0
MAC_PJ = 0.5
ARCH = Architecture("prop", (
    Level("DRAM", kind="dram", word_bits=8, width_bits=32, energy=ActionEnergy(DRAM_PJ, DRAM_PJ, DRAM_PJ)),
    Level("GLB", word_bits=8, width_bits=32, size_words=4096, energy=ActionEnergy(2, 1.5, 1.5, 0.01)),
    Level("RF", word_bits=8, size_words=64, instances=4, mesh_x=2, mesh_y=2, energy=ActionEnergy(.1, .1, .1)),
), Compute("MAC", instances=8, mesh_x=4, mesh_y=2, energy_pj=MAC_PJ))

layers = st.one_of(
    st.builds(lambda k, c, p, q, r, s, st_: conv2d(K=k, C=c, P=p, Q=q, R=r, S=s, stride=st_),
              st.sampled_from([1, 2, 4, 6]), st.sampled_from([1, 2, 3]), st.sampled_from([2, 4, 6]),
              st.sampled_from([1, 2, 3]), st.sampled_from([1, 3]), st.sampled_from([1, 2]),
              st.sampled_from([1, 2])),
    st.builds(lambda c, p, r: depthwise_conv2d(C=c, P=p, Q=2, R=r, S=1),
              st.sampled_from([2, 4]), st.sampled_from([2, 4]), st.sampled_from([1, 3])),
    st.builds(lambda m, n, k: matmul(M=m, N=n, K=k), st.sampled_from([2, 4, 6]),
              st.sampled_from([2, 3, 8]), st.sampled_from([2, 4])),
)


def touched(work, ds):
    """Words of a data space the layer really uses (strided windows can skip some)."""
    n = 1
    for axis in ds.projection:
        pts = {0}
        for c, d in axis:
            pts = {x + c * i for x in pts for i in range(work.bounds[d])}
        n *= len(pts)
    return n


def _batch(work, seed):
    return random_batch(ARCH, work, 40, seed=seed, spatial_prob=0.4, bypass_prob=0.25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(work=layers, seed=st.integers(0, 10_000))
def test_lower_bounds(work, seed):
    b = _batch(work, seed)
    res = evaluate_batch(ARCH, work, b)
    compulsory = sum(-(-touched(work, ds) // 4) for ds in work.dataspaces)   # 4 words / vector
    assert np.all(res.energy_pj >= work.macs * MAC_PJ + compulsory * DRAM_PJ - 1e-6)
    assert np.all(res.cycles * res.macs_used >= work.macs)
    assert np.all(res.cycles >= res.compute_cycles)
    assert np.all(res.reads >= 0) and np.all(res.fills >= 0) and np.all(res.updates >= 0)


def assert_equals_literal_walk(arch, work, b, every: int, scalar: bool = False):
    """The batched model against ``reference_counts`` on every ``every``-th mapping of ``b``,
    with link transfers on and off (and, with ``scalar``, against the scalar wrapper)."""
    for links in (True, False):
        res = evaluate_batch(arch, work, b, link_transfers=links)
        for i in range(0, len(b), every):
            m = from_batch(b, i, arch, work)
            ref = reference_counts(arch, work, m, link_transfers=links)
            for l, lv in enumerate(arch.levels):
                for s, ds in enumerate(work.dataspaces):
                    got = (int(res.reads[i, l, s]), int(res.fills[i, l, s]), int(res.updates[i, l, s]))
                    assert got == ref.get((lv.name, ds.name), (0, 0, 0)), (links, lv.name, ds.name, m.loop_nest(arch))
            if scalar and res.valid[i]:
                ev = evaluate(arch, work, m, link_transfers=links)
                assert ev.energy_pj == res.energy_pj[i] and ev.cycles == res.cycles[i]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(work=layers, seed=st.integers(0, 10_000))
def test_batched_equals_scalar_and_literal_walk(work, seed):
    assert_equals_literal_walk(ARCH, work, _batch(work, seed), every=4, scalar=True)


# Eyeriss-like: the PE array's fan-out split over two bypass-all (dummy) levels, as Timeloop's
# eyeriss_like example does, so that a sliding-window axis (H = Q + S, W = P + R) can be spread
# over two separate spatial groups (columns over X, rows over Y) or over one group (both axes
# at the inner level): Timeloop shares equal deltas only inside one group.
RS_ARCH = Architecture("rs", (
    Level("DRAM", kind="dram", word_bits=8, width_bits=32, energy=ActionEnergy(DRAM_PJ, DRAM_PJ, DRAM_PJ)),
    Level("GLB", word_bits=8, width_bits=32, size_words=8192, energy=ActionEnergy(2, 1.5, 1.5)),
    Level("Columns", kind="dummy", instances=4, mesh_x=4, mesh_y=1),
    Level("Rows", kind="dummy", instances=12, mesh_x=4, mesh_y=3),
    Level("Spad", word_bits=8, size_words=256, instances=12, mesh_x=4, mesh_y=3,
          energy=ActionEnergy(.1, .1, .1)),
), Compute("MAC", instances=24, mesh_x=4, mesh_y=6, energy_pj=MAC_PJ))

rs_layers = st.builds(lambda k, c, p, q, r, s, st_: conv2d(K=k, C=c, P=p, Q=q, R=r, S=s, stride=st_),
                      st.sampled_from([1, 2]), st.sampled_from([1, 2]), st.sampled_from([2, 4]),
                      st.sampled_from([2, 4]), st.sampled_from([2, 3]), st.sampled_from([2, 3]),
                      st.sampled_from([1, 2]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(work=rs_layers, seed=st.integers(0, 10_000))
def test_row_stationary_groups_equal_literal_walk(work, seed):
    b = random_batch(RS_ARCH, work, 24, seed=seed, spatial_prob=0.7, bypass_prob=0.2)
    assert_equals_literal_walk(RS_ARCH, work, b, every=3)
    # Timeloop's own order of the spatial loops on one axis (a mapping's spatial permutation)
    # decides which PEs are neighbours: a random one per level
    rng = np.random.default_rng(seed)
    b.sorder = np.argsort(rng.random(b.tf.shape), axis=2)
    assert_equals_literal_walk(RS_ARCH, work, b, every=3)


def test_overlapping_windows_share_only_inside_one_group():
    """Q over the columns (X) and S over the rows (Y): PE (q, s) and (q+1, s-1) need the same
    input row but sit in different groups, so the GLB sends each PE its own copy (Timeloop's
    eyeriss_like case: 126 PEs x 10,752 = 1,354,752 GLB reads). With Q and S in one group the
    equal deltas are multicast."""
    from accelerators import LevelMapping, Mapping
    work = conv2d(K=1, C=1, P=1, Q=4, R=1, S=3)
    def lm(**kw):
        return LevelMapping(temporal=kw.get("t", {}), permutation=tuple(kw.get("t", {})),
                            spatial_x=kw.get("sx", {}), spatial_y=kw.get("sy", {}))
    split = Mapping((lm(), lm(sx={"Q": 4}), lm(sy={"S": 3}), lm(), lm()))
    one_arch = Architecture("rs1", (RS_ARCH.levels[0], RS_ARCH.levels[1], RS_ARCH.levels[4]),
                            Compute("MAC", instances=12, mesh_x=4, mesh_y=3, energy_pj=MAC_PJ))
    one = Mapping((lm(), lm(sx={"Q": 4}, sy={"S": 3}), lm()))
    for arch, m, want in ((RS_ARCH, split, 12), (one_arch, one, 6)):   # distinct rows q + s: 6
        ev = evaluate(arch, work, m)
        glb = arch.level_index("GLB")
        assert ev.levels[glb].dataspaces["Inputs"]["reads"] == want
        assert reference_counts(arch, work, m)[("GLB", "Inputs")][0] == want
