"""The mapper: quality against exhaustive search, Timeloop's own mapper result, constraints,
no-valid-mapping errors, determinism."""
from pathlib import Path

import numpy as np
import pytest

from accelerators import conv2d, evaluate, matmul
from accelerators.constraints import Constraints, LevelConstraint, dataflow_constraints, from_timeloop
from accelerators.errors import MappingError
from accelerators.mapper import map_layer, parse_objective
from accelerators.mapspace import MapSpace
from accelerators.network import load_layers
from accelerators.spec import build_architecture, load_architecture
from conftest import REPO, TIMELOOP_REF, need_timeloop_reference

DATA = Path(__file__).parent / "data"


def fixed_order(arch, work):
    """Timeloop-style constraints that fix every level's loop order (so the factor splits of real
    layer shapes can be enumerated) on top of the template's dataflow."""
    order = Constraints(tuple((lv.name, LevelConstraint(permutation=tuple(reversed(work.dims))))
                              for lv in arch.levels), "fixed-order")
    return dataflow_constraints(arch, work).merge(order)


def enumerable_pairs(lo=3000, hi=30000, want=24):
    layers = (load_layers(REPO / "specs/workloads/resnet18.yaml")
              + load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml"))
    distinct = {}
    for l in layers:
        distinct.setdefault(l.work.key(), l)
    pairs = []
    for t in ("tiny_ws", "tiny_os", "tiny_2level"):
        arch = load_architecture(DATA / f"{t}.yaml")
        for layer in distinct.values():
            c = fixed_order(arch, layer.work)
            size = MapSpace(arch, layer.work, c).size(limit=hi)
            if lo <= size <= hi:
                pairs.append((arch, layer, c, size))
    # spread the pairs over the three templates
    pairs.sort(key=lambda p: (p[3] % 7, p[0].name))
    return pairs[:want]


@pytest.mark.slow
def test_mapper_within_5_percent_of_exhaustive_optimum():
    pairs = enumerable_pairs()
    assert len(pairs) >= 20
    assert len({p[0].name for p in pairs}) >= 2
    names = {p[1].name for p in pairs}
    assert any(n.startswith(("conv1", "layer")) for n in names)             # ResNet-18 shapes
    assert any(n.startswith(("b", "stem", "last")) for n in names)          # MobileNetV3 shapes
    gaps = []
    for arch, layer, c, size in pairs:
        exact = map_layer(arch, layer.work, c, budget=size + 1)
        assert exact.exhaustive and exact.evaluated == size
        heur = map_layer(arch, layer.work, c, budget=max(1000, size // 3), exhaustive_limit=0, seed=3)
        assert not heur.exhaustive and heur.evaluated <= max(1000, size // 3)
        assert heur.edp >= exact.edp * (1 - 1e-9)         # exhaustive really is the optimum
        gaps.append(heur.edp / exact.edp - 1)
    assert max(gaps) <= 0.05, [f"{p[0].name}/{p[1].name}: {g:.3f}" for p, g in zip(pairs, gaps)]


def test_beats_timeloop_mapper_on_its_public_case():
    ref = need_timeloop_reference()
    from accelerators.timeloop import load_inputs, merge_files
    d = ref / "cases/example_designs_simple_weight_stationary/ref_outputs/default_problem"
    files = [str(d / "parsed-processed-input.yaml"), str(d / "timeloop-mapper.ERT.yaml"),
             str(d / "timeloop-mapper.ART.yaml")]
    arch, work, _ = load_inputs(files)
    _, _, timeloop_mapping = load_inputs(files + [str(d / "timeloop-mapper.map.yaml")])
    theirs = evaluate(arch, work, timeloop_mapping)
    merged, _ = merge_files(files)
    cons = from_timeloop(merged["architecture_constraints"], arch, work)
    ours = map_layer(arch, work, cons, budget=30_000, seed=0)
    assert ours.edp <= theirs.edp
    # and it honours the constraints: weight_reg iterates no weight dimension, pe_spad keeps only weights
    lm = ours.mapping.levels[arch.level_index("weight_reg")]
    assert all(lm.t(d) == 1 for d in ("R", "S", "M", "C"))
    assert ours.mapping.levels[arch.level_index("pe_spad")].keep == frozenset({"Weights"})


def test_dataflow_constraints_are_honoured():
    arch = load_architecture("nvdla_like")
    work = conv2d(K=64, C=64, P=14, Q=14, R=3, S=3)
    res = map_layer(arch, work, dataflow_constraints(arch, work), budget=5000, seed=1)
    pe = res.mapping.levels[arch.level_index("WeightRegs")]
    assert all(pe.t(d) == 1 for d in ("K", "C", "R", "S"))        # weights stay in the PE
    glb = res.mapping.levels[arch.level_index("ConvBuffer")]
    assert set(d for d, f in glb.spatial_x.items() if f > 1) <= {"C", "R", "S"}
    assert set(d for d, f in glb.spatial_y.items() if f > 1) <= {"K"}


def test_permutation_constraint_is_the_innermost_order():
    arch = load_architecture(DATA / "tiny_2level.yaml")
    work = matmul(M=8, N=8, K=8)
    c = Constraints((("Buffer", LevelConstraint(permutation=("K", "N"))),))
    res = map_layer(arch, work, c, budget=2000, seed=0)
    assert res.mapping.levels[1].permutation[:2] == ("K", "N")


def test_no_valid_mapping_says_why():
    arch = load_architecture(DATA / "tiny_2level.yaml")
    work = matmul(M=8, N=8, K=8)
    with pytest.raises(MappingError) as e:
        map_layer(arch, work, Constraints((("Buffer", LevelConstraint(temporal_factors=(("K", 3),))),)))
    assert "does not divide" in e.value.message
    spec = {"name": "nospace", "levels": [{"name": "DRAM", "kind": "dram"},
                                          {"name": "Reg", "kind": "regfile", "size_words": 2}]}
    must_keep = Constraints((("Reg", LevelConstraint(keep=frozenset({"Weights", "Inputs", "Outputs"}))),))
    with pytest.raises(MappingError) as e:
        map_layer(build_architecture(spec), work, must_keep, budget=500)
    assert "smallest tiles" in e.value.message and "Reg" in e.value.message


def test_deterministic_for_a_seed():
    arch = load_architecture("eyeriss_like")
    work = conv2d(K=32, C=16, P=14, Q=14, R=3, S=3)
    c = dataflow_constraints(arch, work)
    a = map_layer(arch, work, c, budget=6000, seed=7)
    b = map_layer(arch, work, c, budget=6000, seed=7)
    assert a.mapping == b.mapping and a.edp == b.edp and a.evaluated == b.evaluated


def test_objectives():
    arch = load_architecture("simba_like")
    work = conv2d(K=32, C=32, P=14, Q=14, R=3, S=3)
    c = dataflow_constraints(arch, work)
    e = map_layer(arch, work, c, objective="energy", budget=20000)
    l = map_layer(arch, work, c, objective="latency", budget=20000)
    # each objective wins (up to search noise) on its own metric
    assert e.evaluation.energy_pj <= l.evaluation.energy_pj * 1.02
    assert l.evaluation.cycles <= e.evaluation.cycles
    assert parse_objective("energy=1,latency=2") == (1.0, 2.0)
    with pytest.raises(MappingError):
        parse_objective("area")


def test_timeloop_export_round_trip_with_xy_split_and_mixed_bits(tmp_path):
    """A mapping that splits one dimension across X and Y of a level is written with a dummy level
    taking the Y fan-out; per-data-space bits travel in the ``codesign`` block; the clock survives."""
    from accelerators.mapping import LevelMapping, Mapping
    from accelerators.model import evaluate
    from accelerators.spec import load_architecture
    from accelerators.timeloop import load_inputs, needs_split, to_timeloop_yaml
    from accelerators.workload import conv2d
    arch = load_architecture("eyeriss_like", pe_array=(12, 14), bits={"weights": 8, "inputs": 8, "outputs": 16})
    work = conv2d("l", K=16, C=48, P=14, Q=14, R=3, S=3, bits={"Weights": 8, "Inputs": 8, "Outputs": 16})
    res = map_layer(arch, work, budget=3000, seed=0)
    lv = [dict(temporal=dict(l.temporal), permutation=l.permutation, spatial_x=dict(l.spatial_x),
               spatial_y=dict(l.spatial_y), keep=l.keep) for l in res.mapping.levels]
    g = next(i for i, l in enumerate(arch.levels) if arch.fanout(i) == (12, 14))
    # force C split across X (12) and Y (2 of 14): C = 48 = 12 * 2 * 2 (temporal at DRAM)
    for l in lv:
        l["temporal"]["C"] = 1
        l["spatial_x"].pop("C", None), l["spatial_y"].pop("C", None)
    lv[0]["temporal"]["C"] = 2
    lv[g]["spatial_x"] = {"C": 12}
    lv[g]["spatial_y"] = {"C": 2}
    for d in ("K", "P", "Q", "R", "S"):
        for l in lv:
            l["spatial_x"].pop(d, None), l["spatial_y"].pop(d, None)
        lv[0]["temporal"][d] = 1
        for l in lv[1:]:
            l["temporal"][d] = 1
        lv[0]["temporal"][d] = work.bounds[d]
    mapping = Mapping(tuple(LevelMapping(temporal=l["temporal"], permutation=tuple(l["permutation"]),
                                         spatial_x=l["spatial_x"], spatial_y=l["spatial_y"], keep=l["keep"]) for l in lv))
    ours = evaluate(arch, work, mapping)
    assert needs_split(mapping)
    f = tmp_path / "all.yaml"
    f.write_text(to_timeloop_yaml(arch, work, mapping))
    arch2, work2, mapping2 = load_inputs([str(f)])
    assert len(arch2.levels) == len(arch.levels) + 1 and arch2.clock_ghz == pytest.approx(arch.clock_ghz)
    assert work2.bits == work.bits
    back = evaluate(arch2, work2, mapping2)
    assert back.cycles == ours.cycles
    assert back.energy_pj == pytest.approx(ours.energy_pj, rel=1e-9)


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like"])
def test_lockstep_mapping_of_many_layers_equals_each_alone(template):
    """map_layers runs every layer's search in lockstep (one model call per group of layers of
    one structure): the same mappings and figures as map_layer on each layer, seeds included;
    small spaces (exhaustive) and large ones (evolution) side by side."""
    from accelerators.mapper import map_layers
    arch = load_architecture(template)
    works = [conv2d("a", K=64, C=64, P=56, Q=56, R=3, S=3), conv2d("b", K=128, C=64, P=28, Q=28, R=1, S=1),
             conv2d("s2", K=128, C=64, P=28, Q=28, R=3, S=3, stride=2), conv2d("c", K=8, C=4, P=2, Q=2, R=1, S=1),
             conv2d("tiny", K=2, C=1, P=1, Q=1, R=1, S=1), matmul("fc", M=1, N=10, K=512)]
    cons = [dataflow_constraints(arch, w) for w in works]
    seeds = [3, 1, 4, 1, 5, 9]
    many = map_layers(arch, works, cons, budget=1500, seeds=seeds)
    assert any(r.exhaustive for r in many) and not all(r.exhaustive for r in many)
    for w, c, sd, r in zip(works, cons, seeds, many):
        alone = map_layer(arch, w, c, budget=1500, seed=sd)
        assert r.mapping == alone.mapping
        assert (r.evaluated, r.valid) == (alone.evaluated, alone.valid)
        assert r.evaluation.to_dict() == alone.evaluation.to_dict()
