"""The fill/drain term of accelerators/systolic.py against SCALE-Sim's weight-stationary formula.

SCALE-Sim 3.0.0 (``systolic_compute_ws``) runs ``ceil(C*R*S / rows) * ceil(K / cols)`` folds, each
``T + 2*rows + cols - 2`` cycles long (T = output pixels): ``rows`` to load the weights,
``rows - 1`` to skew the inputs into the rows, ``cols - 1`` to skew the outputs out of the columns.
The expected values below are that arithmetic done by hand (and two layers' cycle counts that
SCALE-Sim itself printed), never our model's output.
"""
import pytest

from accelerators.mapping import LevelMapping, Mapping
from accelerators.model import Evaluation
from accelerators.spec import build_architecture
from accelerators.systolic import (array_level, array_rows_cols, cycles_with_fill_drain,
                                   fill_drain_cycles, weight_folds)
from accelerators.workload import conv2d


def systolic(x: int, y: int):
    """DRAM -> Buffer -> one weight register per PE, an x-by-y PE array under the Buffer."""
    return build_architecture({
        "name": f"systolic_{x}x{y}", "bits": {"weights": 8, "inputs": 8, "outputs": 32},
        "dataflow": "weight-stationary", "pe_array": {"x": x, "y": y},
        "levels": [{"name": "DRAM", "kind": "dram"},
                   {"name": "Buffer", "kind": "sram", "size_kib": 64},
                   {"name": "WeightRegs", "kind": "regfile", "word_bits": 8, "size_bytes": 2, "scope": "pe",
                    "keeps": ["Weights"]}]})


def mapping(dram_outer_first: list, x: dict, y: dict, pe: dict) -> Mapping:
    """DRAM loops given outermost first; spatial x / y under the Buffer; pe: WeightRegs loops."""
    return Mapping((
        LevelMapping(temporal=dict(dram_outer_first),
                     permutation=tuple(d for d, _ in reversed(dram_outer_first))),
        LevelMapping(spatial_x=x, spatial_y=y),
        LevelMapping(temporal=pe, permutation=tuple(pe))))


def test_4x4_weight_loops_outside_the_pixel_stream():
    arch = systolic(4, 4)
    work = conv2d("l", K=8, C=8, P=2, Q=2, R=1, S=1)
    m = mapping([("K", 2), ("C", 2)], {"C": 4}, {"K": 4}, {"P": 2, "Q": 2})
    assert array_level(arch) == 1 and array_rows_cols(arch, work, m) == (4, 4)
    # SCALE-Sim: Sr = C*R*S = 8 -> ceil(8/4) = 2 row folds, Sc = K = 8 -> 2 column folds: 4 folds
    assert weight_folds(arch, work, m) == 4
    # each fold: 4 (weight load) + 3 (rows skew) + 3 (columns skew) = 2*4 + 4 - 2 = 10 cycles
    assert fill_drain_cycles(arch, work, m) == 4 * 10
    # SCALE-Sim's whole layer: 4 folds * (T=4 + 10) = 56 = our 16 compute cycles (4 folds x 4
    # pixels) + 40
    ev = _evaluation(cycles=16, compute_cycles=16)
    assert cycles_with_fill_drain(ev, arch, work, m) == 56


def test_a_pixel_loop_above_a_weight_loop_reloads_the_weights():
    arch = systolic(4, 4)
    work = conv2d("l", K=8, C=8, P=2, Q=2, R=1, S=1)
    # DRAM: for P in 2 / for K in 2 / for C in 2: each P iteration loads all 4 weight tiles again
    m = mapping([("P", 2), ("K", 2), ("C", 2)], {"C": 4}, {"K": 4}, {"Q": 2})
    assert weight_folds(arch, work, m) == 2 * 2 * 2
    assert fill_drain_cycles(arch, work, m) == 8 * 10


def test_pixel_loops_inside_the_last_weight_loop_do_not_add_folds():
    arch = systolic(4, 4)
    work = conv2d("l", K=8, C=8, P=2, Q=2, R=1, S=1)
    # DRAM: for K in 2 / for C in 2 / for P in 2: the weights stay while P runs
    m = mapping([("K", 2), ("C", 2), ("P", 2)], {"C": 4}, {"K": 4}, {"Q": 2})
    assert weight_folds(arch, work, m) == 4
    assert fill_drain_cycles(arch, work, m) == 4 * 10


def test_non_square_array_rows_are_the_reduction_axis():
    arch = systolic(2, 3)
    # reduction on meshX: rows = 2, cols = 3 -> 2*2 + 3 - 2 = 5 cycles per fold
    work = conv2d("l", K=3, C=4, P=1, Q=1, R=1, S=1)
    m = mapping([("C", 2)], {"C": 2}, {"K": 3}, {})
    assert array_rows_cols(arch, work, m) == (2, 3)
    assert fill_drain_cycles(arch, work, m) == 2 * 5            # ceil(4/2) * ceil(3/3) = 2 folds
    # reduction on meshY instead: rows = 3, cols = 2 -> 2*3 + 2 - 2 = 6 cycles per fold
    work = conv2d("l", K=2, C=6, P=1, Q=1, R=1, S=1)
    m = mapping([("C", 2)], {"K": 2}, {"C": 3}, {})
    assert array_rows_cols(arch, work, m) == (3, 2)
    assert fill_drain_cycles(arch, work, m) == 2 * 6            # ceil(6/3) * ceil(2/2) = 2 folds


def test_single_mac():
    arch = systolic(1, 1)
    work = conv2d("l", K=2, C=2, P=3, Q=1, R=1, S=1)
    m = mapping([("K", 2), ("C", 2)], {}, {}, {"P": 3})
    # 1x1 array: 2*1 + 1 - 2 = 1 cycle per fold (the weight load), 2 * 2 folds
    assert fill_drain_cycles(arch, work, m) == 4


@pytest.mark.parametrize("ifmap, filt, C, K, dram, x, y, scalesim_cycles", [
    # IFMAP 10x10, 3x3 filter, 8 channels, 40 filters: P = Q = 8, T = 64; Sr = 72 -> 3 row folds,
    # Sc = 40 -> 2 column folds. C*R = 24 rows and 20 columns give the same folds (S 3, K 2).
    (10, 3, 8, 40, [("K", 2), ("S", 3)], {"C": 8, "R": 3}, {"K": 20}, 947),
    # AlexNet conv2 with its padding: IFMAP 31x31, 5x5, 96 -> 256: T = 729, Sr = 2400 -> 75 row
    # folds, Sc = 256 -> 8 column folds, 600 folds.
    (31, 5, 96, 256, [("K", 8), ("C", 3), ("R", 5), ("S", 5)], {"C": 32}, {"K": 32}, 493_799),
])
def test_matches_cycles_scalesim_printed(ifmap, filt, C, K, dram, x, y, scalesim_cycles):
    """SCALE-Sim 3.0.0, 32x32, ws, its default config (CALC, no stalls) printed these "Total
    Cycles": folds * (T + 2*32 + 32 - 2) - 1 (it reports the last cycle's 0-based index)."""
    P = ifmap - filt + 1
    arch = systolic(32, 32)
    work = conv2d("l", K=K, C=C, P=P, Q=P, R=filt, S=filt)
    m = mapping(dram, x, y, {"P": P, "Q": P})
    folds = -(-filt * filt * C // 32) * -(-K // 32)
    assert weight_folds(arch, work, m) == folds
    assert fill_drain_cycles(arch, work, m) == folds * 94
    compute = folds * P * P                    # every fold streams the T = P*Q pixels
    ev = _evaluation(cycles=compute, compute_cycles=compute)
    assert cycles_with_fill_drain(ev, arch, work, m) == scalesim_cycles + 1


def test_bandwidth_bound_cycles_absorb_the_fill_and_drain():
    arch = systolic(4, 4)
    work = conv2d("l", K=8, C=8, P=2, Q=2, R=1, S=1)
    m = mapping([("K", 2), ("C", 2)], {"C": 4}, {"K": 4}, {"P": 2, "Q": 2})   # 40 fill/drain
    assert cycles_with_fill_drain(_evaluation(cycles=100, compute_cycles=16), arch, work, m) == 100
    assert cycles_with_fill_drain(_evaluation(cycles=50, compute_cycles=16), arch, work, m) == 56


def _evaluation(cycles: int, compute_cycles: int) -> Evaluation:
    return Evaluation(computes=0, cycles=cycles, compute_cycles=compute_cycles, utilization=0.0,
                      energy_pj=0.0, mac_energy_pj=0.0, area_um2=0.0, levels=[], macs_used=0)
