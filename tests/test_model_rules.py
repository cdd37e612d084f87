"""Hand-computed cases, one per rule of Timeloop's arithmetic the model implements."""
import numpy as np
import pytest

from accelerators import (ActionEnergy, Architecture, Compute, Level, LevelMapping, Mapping,
                          MappingError, conv2d, evaluate, matmul)
from accelerators.workload import DataSpace, Workload


def conv1d(K=1, C=1, P=16, R=3):
    """Timeloop's conv1d(+oc/+ic) problem: Outputs[K,P] += Weights[C,K,R] * Inputs[C,P+R]."""
    spaces = (DataSpace("Weights", (((1, "C"),), ((1, "K"),), ((1, "R"),)), False, "weights"),
              DataSpace("Inputs", (((1, "C"),), ((1, "R"), (1, "P"))), False, "inputs"),
              DataSpace("Outputs", (((1, "K"),), ((1, "P"),)), True, "outputs"))
    return Workload("conv1d", ("C", "K", "R", "P"), dict(C=C, K=K, R=R, P=P), spaces)


def arch(levels, pes=1, mac_pj=1.0, mesh=None):
    mx, my = mesh or (pes, 1)
    return Architecture("t", tuple(levels), Compute("MAC", instances=pes, mesh_x=mx, mesh_y=my,
                                                    energy_pj=mac_pj))


E1 = ActionEnergy(1.0, 1.0, 1.0)
DRAM = Level("DRAM", kind="dram", word_bits=8, energy=ActionEnergy(10.0, 10.0, 10.0))
BUF = Level("Buffer", word_bits=8, size_words=1024, energy=E1)


def lm(temporal=None, perm="", sx=None, sy=None, keep=None):
    return LevelMapping(temporal=temporal or {}, permutation=tuple(perm), spatial_x=sx or {},
                        spatial_y=sy or {}, keep=None if keep is None else frozenset(keep))


def counts(ev, level, space):
    c = ev.levels[[lv.name for lv in ev.levels].index(level)].dataspaces[space]
    return c["reads"], c["fills"], c["updates"]


def test_stationary_tile_reused_across_irrelevant_loop():
    # DRAM: for R in 3 ; Buffer: for P in 16. Weights tile (1 word) changes with R only:
    # 3 fills. Outputs tile (16) never changes across R: filled once = its first writes -> 0 fills.
    a = arch([DRAM, BUF])
    m = Mapping((lm({"R": 3}, "R"), lm({"P": 16}, "P")))
    ev = evaluate(a, conv1d(), m)
    assert counts(ev, "Buffer", "Weights") == (48, 3, 0)
    assert counts(ev, "Buffer", "Outputs") == (48 - 16, 0, 48)
    assert counts(ev, "DRAM", "Outputs") == (0, 0, 16)


def test_sliding_window_fills_only_the_halo():
    # DRAM: for P in 16 ; Buffer: for R in 3. The input window [p, p+3) slides by one each step:
    # 3 words first, then 1 new word per step -> 3 + 15 = 18 fills (not 48).
    a = arch([DRAM, BUF])
    m = Mapping((lm({"P": 16}, "P"), lm({"R": 3}, "R")))
    ev = evaluate(a, conv1d(), m)
    assert counts(ev, "Buffer", "Inputs") == (48, 18, 0)
    assert counts(ev, "DRAM", "Inputs") == (18, 0, 0)
    assert counts(ev, "Buffer", "Weights")[1] == 3     # weights stationary across P


def test_stride_change_discards_the_window():
    # Above the Buffer: for C in 2 / for K in 2 / for R in 3 (R innermost). Inputs [c, r..r+15]:
    # per (c, k): 16 + 1 + 1 = 18. When K advances, R jumps back by 2: the stride changes, so
    # Timeloop refetches the whole 16-word window (it does not keep the 14 overlapping words).
    a = arch([DRAM, BUF])
    m = Mapping((lm({"C": 2, "K": 2, "R": 3}, "RKC"), lm({"P": 16}, "P")))
    ev = evaluate(a, conv1d(K=2, C=2), m)
    assert counts(ev, "Buffer", "Inputs")[1] == 2 * 2 * 18


def test_multicast_and_spatial_reduction():
    # DRAM -> GLB[x4] via spatial K=4 (inputs shared: multicast) then spatial C=... reduction.
    glb = Level("GLB", word_bits=8, size_words=4096, instances=4, mesh_x=4, energy=E1)
    a = arch([DRAM, glb], pes=4)
    w = conv1d(K=4, C=2, P=8, R=3)
    mk = Mapping((lm(sx={"K": 4}), lm({"C": 2, "R": 3, "P": 8}, "PRC")))
    ev = evaluate(a, w, mk)
    # every GLB fills its 2x10 inputs; DRAM sends them once (multicast to 4)
    assert counts(ev, "GLB", "Inputs")[1] == 20
    assert counts(ev, "DRAM", "Inputs")[0] == 20
    assert counts(ev, "DRAM", "Weights")[0] == 4 * 6
    # outputs: distinct per GLB, 4 x 8 updates arrive at DRAM
    assert counts(ev, "DRAM", "Outputs") == (0, 0, 32)
    w2 = conv1d(K=1, C=4, P=8, R=3)
    mc = Mapping((lm(sx={"C": 4}), lm({"R": 3, "P": 8}, "PR")))
    ev2 = evaluate(a, w2, mc)
    # the 4 GLBs hold the same 8 partial sums: reduced on the way up, DRAM sees 8 updates
    assert counts(ev2, "DRAM", "Outputs") == (0, 0, 8)
    assert counts(ev2, "GLB", "Outputs") == (24 - 8, 0, 24)


def test_diagonal_sliding_windows_are_multicast_once():
    # Spatial P=4 and R=3 (stride 1): PE (p, r) needs input p + r; only 4 + 3 - 1 = 6 distinct.
    glb = Level("GLB", word_bits=8, size_words=4096, energy=E1)
    pe = Level("RF", word_bits=8, size_words=64, instances=12, mesh_x=4, mesh_y=3, energy=E1)
    a = arch([DRAM, glb, pe], pes=12, mesh=(4, 3))
    w = conv1d(K=1, C=1, P=4, R=3)
    m = Mapping((lm(), lm(sx={"P": 4}, sy={"R": 3}), lm()))
    ev = evaluate(a, w, m)
    assert counts(ev, "RF", "Inputs") == (1, 1, 0)
    assert counts(ev, "GLB", "Inputs")[0] == 6
    assert counts(ev, "GLB", "Weights")[0] == 3
    assert counts(ev, "GLB", "Outputs")[2] == 4        # reduced over R


def test_partial_sum_reads_exclude_first_writes():
    a = arch([DRAM, BUF])
    m = Mapping((lm(), lm({"C": 2, "K": 2, "R": 3, "P": 16}, "RPCK")))
    ev = evaluate(a, conv1d(K=2, C=2), m)
    updates = 2 * 2 * 3 * 16
    assert counts(ev, "Buffer", "Outputs") == (updates - 32, 0, updates)


def test_vector_granular_energy_rounds_up_per_level():
    # 18 input words through a 4-word-wide DRAM: ceil(18 / 4) = 5 vector reads.
    dram = Level("DRAM", kind="dram", word_bits=8, width_bits=32, energy=ActionEnergy(100.0, 0, 0))
    a = arch([dram, BUF])
    m = Mapping((lm({"P": 16}, "P"), lm({"R": 3}, "R")))
    ev = evaluate(a, conv1d(), m)
    assert ev.levels[0].dataspaces["Inputs"]["energy_pj"] == pytest.approx(5 * 100.0)
    assert ev.levels[0].dataspaces["Weights"]["energy_pj"] == pytest.approx(1 * 100.0)   # ceil(3/4)


def test_leakage_is_per_used_instance_cycle():
    glb = Level("GLB", word_bits=8, size_words=4096, instances=4, mesh_x=4,
                energy=ActionEnergy(0, 0, 0, leak_pj=0.5))
    a = arch([DRAM, glb], pes=4)
    m = Mapping((lm(sx={"K": 2}), lm({"C": 2, "K": 2, "R": 3, "P": 16}, "PRCK")))
    ev = evaluate(a, conv1d(K=4, C=2), m)
    assert ev.cycles == 2 * 2 * 3 * 16
    assert ev.levels[1].instances_used == 2
    assert ev.levels[1].leak_pj == pytest.approx(0.5 * ev.cycles * 2)


def test_cycles_bandwidth_bound_and_utilization():
    slow = Level("DRAM", kind="dram", word_bits=8, read_bw=0.25, energy=ActionEnergy(10, 10, 10))
    a = arch([slow, BUF])
    m = Mapping((lm(), lm({"R": 3, "P": 16}, "RP")))
    ev = evaluate(a, conv1d(), m)
    # DRAM reads 3 weights + 18 inputs = 21 words at 0.25 words/cycle = 84 cycles > 48 computes
    assert ev.compute_cycles == 48
    assert ev.cycles == 84
    assert ev.utilization == pytest.approx(48 / 84)


def test_mac_energy_and_total():
    a = arch([DRAM, BUF], mac_pj=2.0)
    m = Mapping((lm(), lm({"R": 3, "P": 16}, "RP")))
    ev = evaluate(a, conv1d(), m)
    assert ev.mac_energy_pj == pytest.approx(96.0)
    assert ev.energy_pj == pytest.approx(ev.mac_energy_pj + sum(lv.energy_pj for lv in ev.levels))


@pytest.mark.parametrize("mapping, field, text", [
    (Mapping((lm({"R": 3}), lm({"P": 8}))), "mapping.factors.P", "multiply to 8"),
    (Mapping((lm(), lm({"R": 3, "P": 16}, sx={"K": 1}))), None, None),
    (Mapping((lm(sx={"P": 16}), lm({"R": 3}))), "mapping.DRAM.spatial", "exceeds"),
])
def test_validation_reasons(mapping, field, text):
    a = arch([DRAM, BUF])
    if field is None:
        evaluate(a, conv1d(), mapping)
        return
    with pytest.raises(MappingError) as e:
        evaluate(a, conv1d(), mapping)
    assert e.value.field == field and text in e.value.message


def test_tile_that_does_not_fit_is_rejected():
    small = Level("Buffer", word_bits=8, size_words=8, energy=E1)
    a = arch([DRAM, small])
    with pytest.raises(MappingError) as e:
        evaluate(a, conv1d(), Mapping((lm(), lm({"R": 3, "P": 16}, "RP"))))
    assert e.value.field == "mapping.Buffer.tile" and "exceeds the capacity" in e.value.message


def test_workload_shapes():
    c = conv2d(N=1, K=8, C=4, P=7, Q=7, R=3, S=3, stride=2)
    assert c.size("Inputs") == 4 * 15 * 15 and c.macs == 8 * 4 * 49 * 9
    g = conv2d(K=2, C=2, P=4, Q=4, R=3, S=3, groups=4)
    assert g.size("Weights") == 4 * 2 * 2 * 9 and g.size("Outputs") == 4 * 2 * 16
    mm = matmul(M=3, N=5, K=7)
    assert mm.macs == 105 and mm.size("Inputs") == 21
    d = conv2d(K=1, C=1, P=4, Q=4, R=3, S=3, dilation=2)
    assert d.size("Inputs") == ((4 - 1) + 2 * (3 - 1) + 1) ** 2
