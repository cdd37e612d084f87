"""Timeloop's link transfers (``ComputeNetworkLinkTransfers`` + ``ComputePeerAccesses``), worked
by hand from Timeloop's source on the smallest case that uses one, and the model, the literal
re-enactment and the closed form held to that hand count. No public Timeloop output uses a link
(tests/test_timeloop_reference.py holds the re-enactment, links on, to all of them)."""
import numpy as np

from accelerators import ActionEnergy, Architecture, Compute, Level, LevelMapping, Mapping, evaluate
from accelerators.links import exact_counts
from accelerators.mapping import to_batch
from accelerators.reference import reference_counts
from accelerators.workload import DataSpace, Workload

E1 = ActionEnergy(1.0, 1.0, 1.0)
ARCH = Architecture("links", (
    Level("DRAM", kind="dram", word_bits=8, energy=ActionEnergy(10.0, 10.0, 10.0)),
    Level("Buffer", word_bits=8, size_words=64, energy=E1),
    Level("PE", word_bits=8, size_words=4, instances=2, mesh_x=2, mesh_y=1, energy=E1),
), Compute("MAC", instances=2, mesh_x=2, mesh_y=1, energy_pj=1.0))

# Timeloop's conv1d: Outputs[K, P] += Weights[K, R] * Inputs[P + R]
WORK = Workload("conv1d", ("K", "R", "P"), {"K": 1, "R": 3, "P": 2}, (
    DataSpace("Weights", (((1, "K"),), ((1, "R"),)), False, "weights"),
    DataSpace("Inputs", (((1, "R"), (1, "P")),), False, "inputs"),
    DataSpace("Outputs", (((1, "K"),), ((1, "P"),)), True, "outputs")))

# Buffer: for R in [0:3) / parallel-for P in [0:2) (X); each PE holds one input word.
MAPPING = Mapping((LevelMapping(), LevelMapping(temporal={"R": 3}, permutation=("R",), spatial_x={"P": 2}),
                   LevelMapping()))


def test_link_transfer_by_hand():
    """PE p needs input word r + p at step r. Step 0: both deltas come from the Buffer (2 reads).
    Steps 1 and 2 (Timeloop's visit #1, weight n - 1 = 2): PE0 needs word r, which PE1 held at
    step r - 1, its right neighbour: a link (``CompareSpatioTemporalDeltas``); PE1's word r + 1
    was nowhere. With the link the Buffer serves 1 delta per step instead of 2, so Timeloop uses
    it: Buffer Inputs reads 2 + 2 * 1 = 4 (6 without links), 2 link transfers. Each PE's fills
    are its share of the Buffer's weighted accesses, (2 + 2) / 2 = 2, plus the link transfers
    divided over the 2 PEs (``ComputePeerAccesses``: 2 // 2 = 1): 3; its reads are its 3 MAC
    operands plus those 1 peer accesses: 4."""
    ev = evaluate(ARCH, WORK, MAPPING)
    by = {lv.name: lv.dataspaces for lv in ev.levels}
    assert (by["Buffer"]["Inputs"]["reads"], by["Buffer"]["Inputs"]["link_transfers"]) == (4, 2)
    assert (by["PE"]["Inputs"]["reads"], by["PE"]["Inputs"]["fills"]) == (4, 3)
    assert by["DRAM"]["Inputs"]["reads"] == 4 and by["Buffer"]["Inputs"]["fills"] == 4
    ref = reference_counts(ARCH, WORK, MAPPING)
    assert ref[("Buffer", "Inputs")] == (4, 4, 0) and ref[("PE", "Inputs")] == (4, 3, 0)
    assert ref["_links"][("Buffer", "Inputs")] == 2
    r, f, u, lk = exact_counts(ARCH, WORK, to_batch([MAPPING], ARCH, WORK))
    assert (r[0, 1, 1], lk[0, 1, 1], r[0, 2, 1], f[0, 2, 1]) == (4, 2, 4, 3)


def test_without_link_transfers():
    """Timeloop with TIMELOOP_DISABLE_LINK_TRANSFERS: every delta from the Buffer, 3 + 3 = 6."""
    ev = evaluate(ARCH, WORK, MAPPING, link_transfers=False)
    by = {lv.name: lv.dataspaces for lv in ev.levels}
    assert by["Buffer"]["Inputs"]["reads"] == 6 and "link_transfers" not in by["Buffer"]["Inputs"]
    assert (by["PE"]["Inputs"]["reads"], by["PE"]["Inputs"]["fills"]) == (3, 3)
    off = reference_counts(ARCH, WORK, MAPPING, link_transfers=False)
    assert off[("Buffer", "Inputs")] == (6, 4, 0) and off[("PE", "Inputs")] == (3, 3, 0)


def test_link_energy_moves_from_parent_to_children():
    """2 Buffer reads (1 pJ, 1 instance) fewer, 1 more read in each of the 2 PEs (1 pJ)."""
    on = {lv.name: lv for lv in evaluate(ARCH, WORK, MAPPING).levels}
    off = {lv.name: lv for lv in evaluate(ARCH, WORK, MAPPING, link_transfers=False).levels}
    assert np.isclose(off["Buffer"].energy_pj - on["Buffer"].energy_pj, 2 * 1.0)
    assert np.isclose(on["PE"].energy_pj - off["PE"].energy_pj, 1 * 1.0 * 2)


def test_spatial_order_decides_the_neighbours():
    """Timeloop numbers the children by its spatial loops, in the mapping's spatial permutation
    (``FillSpatialDeltas``), and neighbours are adjacent numbers in the mesh: the order of
    several dimensions on one axis can decide a link. On the Eyeriss-like template a few of the
    random mappings change with a random order; the model (``MappingBatch.sorder``) and the
    literal walk (``LevelMapping.spatial_permutation``) agree on every one of them."""
    from accelerators import conv2d, evaluate_batch
    from accelerators.mapping import from_batch
    from accelerators.sampling import random_valid_batch
    from accelerators.spec import load_architecture
    arch = load_architecture("eyeriss_like")
    work = conv2d(K=16, C=8, P=8, Q=8, R=3, S=3)
    b = random_valid_batch(arch, work, 600, seed=1, spatial_prob=0.8)
    canonical = evaluate_batch(arch, work, b)
    b.sorder = np.argsort(np.random.default_rng(0).random(b.tf.shape), axis=2)
    ordered = evaluate_batch(arch, work, b)
    moved = np.flatnonzero((canonical.reads != ordered.reads).any(axis=(1, 2)))
    assert moved.size >= 1
    for i in moved[:4]:
        m = from_batch(b, i, arch, work)
        assert m.levels[1].spatial_permutation                      # the order travels
        ref = reference_counts(arch, work, m)
        for l, lv in enumerate(arch.levels):
            for s, ds in enumerate(work.dataspaces):
                got = (int(ordered.reads[i, l, s]), int(ordered.fills[i, l, s]), int(ordered.updates[i, l, s]))
                assert got == ref.get((lv.name, ds.name), (0, 0, 0)), (i, lv.name, ds.name)


def test_may_link_covers_every_neighbour_pair():
    """``links.may_link`` (the closed-form prefilter) against the children enumerated
    as ``links.choose`` does: every code difference between two mesh neighbours is in the set,
    on random groups (factors, steps, codes, spatial orders, mesh shapes)."""
    from accelerators.links import _neighbours, children_codes, may_link
    rng = np.random.default_rng(0)
    tight = 0
    for _ in range(1500):
        D = int(rng.integers(1, 4))
        fx, fy = int(rng.choice([1, 2, 3, 4, 6, 8])), int(rng.choice([1, 2, 3, 4, 5]))
        sx, sy = rng.choice([1, 1, 2, 3, 4], size=D), rng.choice([1, 1, 2, 3], size=D)
        while sx.prod() > fx:
            sx[rng.integers(D)] = 1
        while sy.prod() > fy:
            sy[rng.integers(D)] = 1
        inner = rng.integers(1, 5, size=D)
        code = rng.integers(-3, 20, size=D) * rng.choice([0, 1, 1, 1], size=D)
        order = rng.permutation(D)
        P = 1 << int(np.ceil(np.log2(int((sx * sy).prod()))))
        codes, valid = children_codes(sx[None], sy[None], inner[None], code, P, order[None])
        truth = {int(codes[0, jj[i]] - codes[0, i])
                 for jj, inside in _neighbours(P, fx, fy) for i in range(P)
                 if valid[0, i] and inside[i] and valid[0, jj[i]]}
        t = np.array(sorted(truth), np.int64)
        k = t.size
        hit, loose = may_link(t, np.repeat(sx[:, None], k, 1), np.repeat(sy[:, None], k, 1),
                              np.repeat(inner[:, None], k, 1), code, fx, fy, np.repeat(order[None], k, 0))
        assert (hit | loose).all(), (sx, sy, inner, code, order, fx, fy, t[~(hit | loose)])
        tight += k > 0 and not loose.any()
    assert tight > 600                  # most groups are decided (the test is not vacuous)
