"""Built-in energy/area tables: calibration against Timeloop+Accelergy reference outputs and
Horowitz (ISSCC 2014), monotonicity, technology scaling, errors, and the shipped templates.

Reference figures are hard-coded from Accelergy-Project/timeloop-accelergy-exercises (commit
2d55108), files ``*.ERT_summary.yaml`` / ``*.ART_summary.yaml`` of the cases named below.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from accelerators.arch import ActionEnergy
from accelerators.energy import (STORAGE_KINDS, dram_pj_per_bit, load_tables, mac_area_um2,
                                 mac_energy_pj, scale_area, scale_energy, storage_area_um2,
                                 storage_energy)
from accelerators.errors import SpecError

SRAM_TOL = 0.35     # stated tolerance of the SRAM model against the CACTI points
WS = "example_designs_simple_weight_stationary/ref_outputs/default_problem (45 nm)"
ISP4 = "ispass2020_04-model-conv1d+oc-3levelspatial/ref-output/cp (40 nm)"

# (case, kind, size_words, word_bits, width_bits, node_nm, read, write, leak)
STORAGE_REFS = [
    (WS, "sram", 16384, 64, 64, 45, 32.377775, 26.156875, 0.005353),     # shared_glb 128 KiB
    (WS, "sram", 192, 16, 16, 45, 0.680237, 1.582678, 0.001165),         # pe_spad
    (ISP4, "sram", 32768, 64, 64, 40, 43.353054, 30.878292, 0.007972),   # GlobalBuffer 256 KiB
    (ISP4, "regfile", 64, 8, 8, 40, 0.42564, 0.42564, 0.000861),         # RegisterFile
    (WS, "regfile", 1, 16, 16, 45, 0.144, None, None),                   # weight_reg (write is 0 there)
]
# (case, kind, size_words, word_bits, width_bits, node_nm, area_um2)
AREA_REFS = [
    (WS, "sram", 16384, 64, 64, 45, 429745.625),
    (WS, "sram", 192, 16, 16, 45, 1419.815),
    (ISP4, "sram", 32768, 64, 64, 40, 707084.0),
    (WS, "regfile", 1, 16, 16, 45, 95.68),   # the unscaled 40 nm Aladdin value: ours is +31% at 45 nm
]


def rel_err(got, ref):
    return abs(got / ref - 1)


@pytest.mark.parametrize("case,kind,size,word,width,node,read,write,leak", STORAGE_REFS)
def test_storage_energy_matches_reference_erts(case, kind, size, word, width, node, read, write, leak):
    e = storage_energy(kind, size, word, width, node)
    assert rel_err(e.read_pj, read) <= SRAM_TOL, (case, e)
    if write is not None:
        assert rel_err(e.write_pj, write) <= SRAM_TOL, (case, e)
        assert e.update_pj == e.write_pj
    if leak is not None:
        assert rel_err(e.leak_pj, leak) <= SRAM_TOL, (case, e)


@pytest.mark.parametrize("case,kind,size,word,width,node,area", AREA_REFS)
def test_storage_area_matches_reference_arts(case, kind, size, word, width, node, area):
    assert rel_err(storage_area_um2(kind, size, word, width, node), area) <= SRAM_TOL, case


@pytest.mark.parametrize("size_kib,pj", [(8, 10.0), (32, 20.0), (1024, 100.0)])
def test_sram_matches_horowitz_cache_points(size_kib, pj):
    # Horowitz ISSCC 2014, 45 nm: 64-bit access of an 8 KB / 32 KB / 1 MB cache
    e = storage_energy("sram", size_kib * 1024 * 8 // 64, 64, 64, 45)
    assert rel_err(e.read_pj, pj) <= 0.15


def test_dram_is_exact():
    # Accelergy CACTI plug-in, CactiDRAM.type2energy
    assert dram_pj_per_bit("LPDDR4") == 8.0
    assert dram_pj_per_bit("HBM2") == 3.9
    assert dram_pj_per_bit("GDDR5") == 14.0
    assert dram_pj_per_bit("DDR3") == 70.0
    assert dram_pj_per_bit("lpddr4") == 8.0
    e = storage_energy("dram", None, 16, 64, 45)            # WS DRAM: 512 pJ per 64-bit access
    assert (e.read_pj, e.write_pj, e.update_pj, e.leak_pj) == (512.0, 512.0, 512.0, 0.0)
    assert storage_energy("dram", None, 8, 256, 40).read_pj == 2048.0   # ISP4 MainMemory
    assert storage_energy("dram", None, 8, 64, 7, dram_type="HBM2").read_pj == pytest.approx(64 * 3.9)
    assert storage_area_um2("dram", None, 16, 64, 45) == 0.0


def test_mac_reproduces_horowitz():
    # 45 nm: 8b mult 0.2, 32b mult 3.1, 8b add 0.03, 32b add 0.1 pJ
    assert mac_energy_pj(8, 8, 45) == pytest.approx(0.23)
    assert mac_energy_pj(32, 32, 45) == pytest.approx(3.2)
    assert mac_energy_pj(8, 32, 45) - mac_energy_pj(8, 8, 45) == pytest.approx(0.07)   # adder linear
    assert mac_area_um2(8, 8, 45) == pytest.approx(282 + 36)
    assert mac_area_um2(32, 32, 45) == pytest.approx(3495 + 137)


def test_multiplier_grows_about_quadratically():
    a = 16
    for b in (4, 8, 16):
        step1 = mac_energy_pj(2 * b, a, 45) - mac_energy_pj(b, a, 45)       # mult(2b) - mult(b)
        step2 = mac_energy_pj(4 * b, a, 45) - mac_energy_pj(2 * b, a, 45)   # mult(4b) - mult(2b)
        assert 3.5 < step2 / step1 < 4.5                                    # = mult(2b)/mult(b)


def test_wider_mac_costs_more():
    for node in (65, 45, 16):
        es = [mac_energy_pj(b, 2 * b, node) for b in (2, 4, 8, 12, 16, 24, 32)]
        assert es == sorted(es) and len(set(es)) == len(es)
        areas = [mac_area_um2(b, 2 * b, node) for b in (2, 4, 8, 16, 32)]
        assert areas == sorted(areas)
        assert mac_energy_pj(8, 24, node) > mac_energy_pj(8, 16, node)


def test_bigger_storage_costs_more_per_access():
    sizes_bytes = [64, 256, 1024, 8192, 65536, 1 << 20, 4 << 20]
    for width in (16, 64, 256):
        sram = [storage_energy("sram", s * 8 // 16, 16, width, 45) for s in sizes_bytes]
        for attr in ("read_pj", "write_pj", "leak_pj"):
            vals = [getattr(e, attr) for e in sram]
            assert vals == sorted(vals) and len(set(vals)) == len(vals), (attr, vals)
        areas = [storage_area_um2("sram", s * 8 // 16, 16, width, 45) for s in sizes_bytes]
        assert areas == sorted(areas)
    rf = [storage_energy("regfile", d, 16, 16, 45).read_pj for d in (1, 2, 12, 24, 64, 224)]
    assert rf == sorted(rf) and len(set(rf)) == len(rf)
    # wider access of the same array costs proportionally more
    assert storage_energy("sram", 4096, 16, 64, 45).read_pj == pytest.approx(
        4 * storage_energy("sram", 4096, 16, 16, 45).read_pj)
    # large SRAM: write ~ 0.7-0.8 x read
    big = storage_energy("sram", 65536, 16, 64, 45)
    assert 0.6 < big.write_pj / big.read_pj < 0.9


def test_dummy_is_free():
    assert storage_energy("dummy", None, 16, 16, 45) == ActionEnergy()
    assert storage_area_um2("dummy", None, 16, 16, 45) == 0.0


def test_technology_scaling():
    for node in (130, 65, 45, 40, 28, 16, 7):
        assert scale_energy(scale_energy(3.7, 45, node), node, 45) == pytest.approx(3.7)
        assert scale_area(scale_area(1234.0, node, 16), 16, node) == pytest.approx(1234.0)
    assert scale_energy(1.0, 45, 45) == 1.0
    nodes = [130, 90, 65, 45, 40, 32, 28, 20, 16, 14, 10, 7]
    es = [scale_energy(1.0, 45, n) for n in nodes]
    areas = [scale_area(1.0, 45, n) for n in nodes]
    assert es == sorted(es, reverse=True) and areas == sorted(areas, reverse=True)
    assert 1.3 < scale_energy(1.0, 45, 65) < 2.2        # Stillmaker & Baas: 1.65
    assert 0.7 < scale_energy(1.0, 45, 40) < 0.95
    # everything node-dependent follows the table
    assert mac_energy_pj(8, 16, 16) == pytest.approx(scale_energy(mac_energy_pj(8, 16, 45), 45, 16))
    assert storage_area_um2("sram", 4096, 16, 64, 65) == pytest.approx(
        scale_area(storage_area_um2("sram", 4096, 16, 64, 45), 45, 65))
    with pytest.raises(SpecError) as err:
        scale_energy(1.0, 45, 3)
    assert err.value.field == "technology_nm"


def test_bad_inputs_raise_spec_error():
    with pytest.raises(SpecError) as err:
        storage_energy("edram", 1024, 16, 16, 45)
    assert err.value.field == "kind"
    assert all(k in err.value.message for k in STORAGE_KINDS)
    with pytest.raises(SpecError) as err:
        storage_area_um2("flash", 1024, 16, 16, 45)
    assert err.value.field == "kind"
    with pytest.raises(SpecError) as err:
        storage_energy("dram", None, 16, 64, 45, dram_type="DDR9")
    assert err.value.field == "dram_type"
    assert "LPDDR4" in err.value.message and "HBM2" in err.value.message
    with pytest.raises(SpecError) as err:
        dram_pj_per_bit("SDRAM")
    assert err.value.field == "dram_type"
    with pytest.raises(SpecError) as err:
        storage_energy("sram", None, 16, 64, 45)
    assert err.value.field == "size_words"
    with pytest.raises(SpecError) as err:
        mac_energy_pj(0, 16, 45)
    assert err.value.field == "multiplier_bits"


def test_tables_load_once_and_explicit_tables_are_used(tmp_path):
    assert load_tables() is load_tables()
    t = copy.deepcopy(load_tables())
    t["dram"]["pj_per_bit"] = {"LPDDR4": 1.0}
    assert storage_energy("dram", None, 16, 64, 45, tables=t).read_pj == 64.0
    assert dram_pj_per_bit("LPDDR4") == 8.0          # the cached built-in tables are untouched
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(t))
    assert dram_pj_per_bit("LPDDR4", tables=load_tables(str(p))) == 1.0


# ----------------------------------------------------------------------------- templates

TEMPLATES = sorted((Path(__file__).resolve().parents[1] / "specs" / "accelerators").glob("*.yaml"))
EXPECTED = {"eyeriss_like", "simba_like", "nvdla_like", "tpu_like", "shidiannao_like"}


def test_all_templates_present():
    assert EXPECTED <= {p.stem for p in TEMPLATES}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_levels_resolve_through_the_tables(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["name"] == path.stem
    node, bits = spec["technology_nm"], spec["bits"]
    assert spec["levels"][0]["kind"] == "dram"
    on_chip = 0.0
    for lv in spec["levels"]:
        word = lv.get("word_bits", max(bits.values()))
        if "size_kib" in lv:
            size = int(lv["size_kib"] * 1024 * 8 // word)
        elif "size_bytes" in lv:
            size = int(lv["size_bytes"] * 8 // word)
        else:
            size = lv.get("size_words")
        e = storage_energy(lv["kind"], size, word, lv["width_bits"], node,
                           dram_type=lv.get("dram_type", "LPDDR4"))
        assert e.read_pj > 0 and e.write_pj > 0
        assert set(lv.get("keeps", ["Weights", "Inputs", "Outputs"])) <= {"Weights", "Inputs", "Outputs"}
        n = spec["pe_array"]["x"] * spec["pe_array"]["y"] if lv.get("scope") == "pe" else 1
        on_chip += n * storage_area_um2(lv["kind"], size, word, lv["width_bits"], node)
    assert mac_energy_pj(max(bits["weights"], bits["inputs"]), bits["outputs"], node) > 0
    assert on_chip > 0
