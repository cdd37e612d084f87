"""The ``codesign evaluate`` command: Timeloop inputs, our own spec files, JSON output, export
round trip, and one-line errors with exit status 2 for bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codesign.cli import main
from conftest import REPO, TIMELOOP_REF, need_timeloop_reference

KP = "ispass2020_04-model-conv1d+oc-3levelspatial/ref-output/kp"


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def kp_files():
    need_timeloop_reference()
    d = TIMELOOP_REF / "cases" / KP
    return [d / "parsed-processed-input.yaml", d / "timeloop-model.ERT.yaml", d / "timeloop-model.ART.yaml"]


def test_evaluate_timeloop_json(capsys):
    code, out, _ = run(["evaluate", *kp_files(), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["computes"] == 49152 and d["cycles"] == 3072 and d["utilization"] == 1.0
    assert d["energy_pj"] == pytest.approx(720796, rel=1e-5)
    rf = next(lv for lv in d["levels"] if lv["name"] == "RegisterFile")
    assert rf["instances"] == 16
    assert rf["dataspaces"]["Outputs"] == {**rf["dataspaces"]["Outputs"], "reads": 3040, "fills": 992,
                                            "updates": 3072}


def test_later_file_replaces_earlier_top_level_key(tmp_path, capsys):
    files = kp_files()
    other = TIMELOOP_REF / "cases" / "ispass2020_04-model-conv1d+oc-3levelspatial/ref-output/cp"
    mapping = yaml.safe_load((other / "parsed-processed-input.yaml").read_text())["mapping"]
    f = tmp_path / "map.yaml"
    f.write_text(yaml.safe_dump({"mapping": mapping}))
    code, out, _ = run(["evaluate", *files, f, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["energy_pj"] == pytest.approx(639538, rel=1e-5)   # the cp case


def test_export_round_trip(tmp_path, capsys):
    out_file = tmp_path / "exported.yaml"
    code, out, _ = run(["evaluate", *kp_files(), "--json", "--export-timeloop", out_file], capsys)
    first = json.loads(out)
    exported = yaml.safe_load(out_file.read_text())
    assert set(exported) >= {"architecture", "problem", "mapping", "ERT"}
    code, out, _ = run(["evaluate", out_file, "--json"], capsys)
    assert code == 0
    again = json.loads(out)
    for k in ("computes", "cycles", "energy_pj"):
        assert again[k] == pytest.approx(first[k])
    for a, b in zip(first["levels"], again["levels"]):
        assert a["dataspaces"] == {**a["dataspaces"], **b["dataspaces"]}


def test_our_format_with_template_and_search(tmp_path, capsys):
    layer = tmp_path / "layer.yaml"
    layer.write_text("workload: {type: conv2d, name: res2a, K: 64, C: 64, P: 14, Q: 14, R: 3, S: 3}\n"
                     "architecture: eyeriss_like\n")
    code, out, _ = run(["evaluate", layer, "--json", "--budget", "3000"], capsys)
    assert code == 0, out
    d = json.loads(out)
    assert d["computes"] == 64 * 64 * 14 * 14 * 9 and "found by the mapper" in d["note"]
    assert d["cycles"] * d["macs_used"] >= d["computes"]


def test_our_format_with_explicit_mapping(tmp_path, capsys):
    f = tmp_path / "all.yaml"
    f.write_text(yaml.safe_dump({
        "architecture": {"name": "tiny", "pe_array": {"x": 4, "y": 1}, "bits": {"weights": 8, "inputs": 8, "outputs": 8},
                         "levels": [{"name": "DRAM", "kind": "dram", "width_bits": 64},
                                    {"name": "GLB", "kind": "sram", "size_kib": 4, "width_bits": 64},
                                    {"name": "RF", "kind": "regfile", "size_words": 64, "scope": "pe"}]},
        "workload": {"type": "matmul", "M": 8, "N": 4, "K": 16},
        "mapping": {"DRAM": {"temporal": {"M": 2}}, "GLB": {"temporal": {"K": 4}, "spatial_x": {"N": 4}},
                    "RF": {"temporal": {"M": 4, "K": 4}, "permutation": "KM"}}}))
    code, out, err = run(["evaluate", f, "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["computes"] == 8 * 4 * 16 and d["cycles"] == 2 * 4 * 4 * 4
    assert d["note"] == "mapping: as given"


BAD = [
    ("arch: [unclosed", "malformed YAML"),
    ("workload: {type: conv2d, K: 4, C: 4, P: 4, Q: 4, R: 3, S: 3}\narchitecture: nope_like\n", "architecture"),
    ("workload: {type: conv9d, K: 4}\narchitecture: eyeriss_like\n", "workload.type"),
    ("workload: {type: conv2d, K: 0, C: 4, P: 4, Q: 4, R: 3, S: 3}\narchitecture: eyeriss_like\n", "workload.K"),
    ("workload: {type: conv2d, K: 4, C: 4, P: 4, Q: 4, R: 3, S: 3, colour: 2}\narchitecture: eyeriss_like\n",
     "workload.colour"),
    ("workload: {type: matmul, M: 4, N: 4, K: 4}\n"
     "architecture: {name: x, levels: [{name: DRAM, kind: dram}, {name: B, kind: sram, size_kib: -1}]}\n",
     "size_kib"),
    ("workload: {type: matmul, M: 4, N: 4, K: 4}\n"
     "architecture: {name: x, levels: [{name: DRAM, kind: dram}, {name: B, kind: sram, size_kib: 1}]}\n"
     "mapping: {DRAM: {temporal: {M: 2}}, B: {temporal: {N: 4, K: 4}}}\n", "mapping.factors.M"),
    ("workload: {type: matmul, M: 64, N: 64, K: 64}\n"
     "architecture: {name: x, levels: [{name: DRAM, kind: dram}, {name: B, kind: sram, size_words: 16}]}\n"
     "mapping: {B: {temporal: {M: 64, N: 64, K: 64}}}\n", "mapping.B.tile"),
    ("workload: {type: matmul, M: 4, N: 4, K: 4}\n"
     "architecture: {name: x, levels: [{name: DRAM, kind: dram, sizee: 3}]}\n", "sizee"),
    ("workload: {type: matmul, M: 4, N: 4, K: 4}\n"
     "architecture: {name: x, levels: [{name: DRAM, kind: dram}], pe_array: {x: two}}\n", "pe_array.x"),
]


@pytest.mark.parametrize("text, field", BAD)
def test_bad_input_one_line_exit_2(tmp_path, capsys, text, field):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    code, out, err = run(["evaluate", f], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(f) in lines[0] and field in lines[0], err
    assert "Traceback" not in err


def test_bad_timeloop_inputs(tmp_path, capsys):
    files = kp_files()
    for text, field in [("mapping: [{target: Nowhere, type: temporal, factors: C=1}]", "mapping[0].target"),
                        ("mapping: [{target: GlobalBuffer, type: temporal, factors: Z=2}]", "unknown dimension"),
                        ("ERT: {tables: [{name: 'x.MACC[1..16]', actions: [{name: compute, energy: lots}]}]}",
                         "ERT.MACC.compute.energy"),
                        ("problem: {shape: {dimensions: [C], data_spaces: [{name: A, projection: [[[C]]], read_write: true}]}, "
                         "instance: {C: -3}}", "problem.instance.C")]:
        f = tmp_path / "over.yaml"
        f.write_text(text)
        code, out, err = run(["evaluate", *files, f], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and field in err, err
    code, out, err = run(["evaluate", tmp_path / "missing.yaml"], capsys)
    assert code == 2 and "missing.yaml" in err and "no such file" in err


def test_console_script_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "codesign", "evaluate", "/nonexistent.yaml"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_timeloop_backend_matches_model(capsys):
    from accelerators.timeloop_stats import pytimeloop_available
    files = kp_files()
    if not pytimeloop_available():
        code, out, err = run(["evaluate", *files, "--backend", "timeloop"], capsys)
        assert code == 2 and "pytimeloop" in err
        pytest.skip("pytimeloop is not installed (not on PyPI; the optional Timeloop backend is untested here)")
    code, out, _ = run(["evaluate", *files, "--backend", "timeloop", "--json"], capsys)
    theirs = json.loads(out)
    code, out, _ = run(["evaluate", *files, "--json"], capsys)
    ours = json.loads(out)
    assert ours["cycles"] == theirs["cycles"]
    assert ours["energy_pj"] == pytest.approx(theirs["energy_pj"], rel=0.01)


def test_the_command_line_and_the_model_import_without_torch():
    """torch is an optional extra: parsing any command, the accelerator model and the search code
    must not import it (only commands that train or measure networks do, when they run)."""
    code = ("import sys, codesign.cli, codesign.nn.model_card, codesign.search.algorithms, accelerators.model;"
            "codesign.cli.build_parser();"
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
