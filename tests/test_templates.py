"""The shipped templates load, are what their names say, and respond to the parameters a
co-search mutates (PE array, bit-widths, buffer sizes, DRAM type)."""
import numpy as np
import pytest

from accelerators import conv2d, evaluate_batch
from accelerators.errors import SpecError
from accelerators.spec import build_architecture, list_templates, load_architecture, template_path
from accelerators.sampling import random_valid_batch
from accelerators.timeloop import load_yaml

EXPECTED = {"eyeriss_like": (168, "row-stationary"), "simba_like": (256, None), "nvdla_like": (None, "weight-stationary"),
            "tpu_like": (None, "weight-stationary"), "shidiannao_like": (64, "output-stationary")}


def test_all_five_templates_ship():
    assert set(EXPECTED) <= set(list_templates())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_builds_and_maps_a_layer(name):
    arch = load_architecture(name)
    pes, dataflow = EXPECTED[name]
    if pes:
        assert arch.num_pes == pes
    if dataflow:
        assert arch.dataflow == dataflow
    assert 3 <= len(arch.levels) <= 5 and arch.levels[0].kind == "dram"
    assert arch.area_um2() > 0
    assert "Sources" in template_path(name).read_text() or "Source" in template_path(name).read_text()
    layer = conv2d(K=64, C=64, P=14, Q=14, R=3, S=3)
    batch = random_valid_batch(arch, layer, 500, seed=1)
    res = evaluate_batch(arch, layer, batch)
    assert res.valid.all()
    assert np.all(res.cycles * res.macs_used >= layer.macs)


def test_parameters_propagate():
    spec = load_yaml(template_path("eyeriss_like"))
    base = build_architecture(spec)
    big = build_architecture(spec, pe_array=(16, 16))
    assert big.num_pes == 256 and base.num_pes == 168
    assert [lv.instances for lv in big.levels][-1] == 256
    low = build_architecture(spec, bits={"weights": 8, "inputs": 8, "outputs": 16})
    assert low.compute.energy_pj < base.compute.energy_pj
    assert low.levels[-2].bits_of("weights") == 8
    small = build_architecture(spec, sizes_kib={"GlobalBuffer": 32})
    glb = small.level_index("GlobalBuffer")
    assert small.levels[glb].size_words < base.levels[glb].size_words
    assert small.levels[glb].energy.read_pj < base.levels[glb].energy.read_pj
    hbm = build_architecture(spec, dram_type="HBM2")
    assert hbm.levels[0].energy.read_pj < base.levels[0].energy.read_pj
    with pytest.raises(SpecError):
        build_architecture(spec, dram_type="SRAM9")
    with pytest.raises(SpecError):
        build_architecture(spec, dataflow="diagonal-stationary")
