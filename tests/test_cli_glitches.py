"""Small command-line glitches of issue #21 (item 8), one test each: a closed pipe, the bit-width in
``evaluate``'s header, the leakage row of the evaluate table, the last partial generation of
``hypervolume.csv``, the note when ``map`` falls back to the built-in energy table, and the
``evaluate-network --plot`` figure."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("CODESIGN_DEBUG", None)


def _run_into_closed_pipe(argv):
    """Run ``codesign ARGV`` with standard output a pipe whose reader is already gone (what
    ``codesign ... | head`` does once head has its lines)."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "codesign", *argv], stdout=w, stderr=subprocess.PIPE, text=True,
                           env=ENV, cwd=REPO, timeout=300)
    finally:
        os.close(w)
    return p


@pytest.mark.parametrize("argv", [["templates"], ["evaluate", "specs/workloads/resnet18_conv2_x.yaml", "--json",
                                                  "--budget", "200"]])
def test_closed_pipe_is_quiet(argv):
    p = _run_into_closed_pipe(argv)
    assert "Broken pipe" not in p.stderr and "BrokenPipeError" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip() == ""
    assert p.returncode in (0, 141)


# ------------------------------------------------------------------------------ evaluate's table

def _case(name):
    from conftest import TIMELOOP_REF, need_timeloop_reference
    need_timeloop_reference()
    return TIMELOOP_REF / "cases" / name


def test_header_bits_are_the_timeloop_datawidth(capsys):
    """ispass2020_00's Buffer has datawidth 8: the header said 'bits 16' (the default of our own
    specs, which a Timeloop architecture does not use)."""
    from codesign.cli import main
    f = _case("ispass2020_00-model-conv1d-1level") / "ref-output" / "parsed-processed-input.yaml"
    assert main(["evaluate", str(f)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert "datawidth 8 bits" in head and "16" not in head, head
    assert "(8-bit words)" in out.splitlines()[1]


def test_header_bits_of_our_own_spec(capsys):
    from codesign.cli import main
    code = main(["evaluate", str(REPO / "specs" / "workloads" / "resnet18_conv2_x.yaml"), "--budget", "200"])
    assert code == 0, capsys.readouterr().err
    assert "bits weights 16, inputs 16, outputs 16" in capsys.readouterr().out.splitlines()[0]


def test_leakage_row_is_labelled_under_its_own_level():
    """A level that keeps no data space (here the dummy inter_PE_spatial) but leaks: its leakage row
    carries its name, not a blank head under the level above."""
    import io
    from dataclasses import replace

    from accelerators.inputs import load_files
    from accelerators.model import evaluate
    from codesign.cli.accelerator import _print_table
    d = _case("ispass2020_04-model-conv1d+oc-3levelspatial") / "ref-output" / "kp"
    arch, work, mapping, _ = load_files([str(d / "parsed-processed-input.yaml"), str(d / "timeloop-model.ERT.yaml")])
    ev = evaluate(arch, work, mapping)
    i = next(j for j, lv in enumerate(ev.levels) if not lv.dataspaces)
    name = ev.levels[i].name
    ev.levels[i] = replace(ev.levels[i], leak_pj=5.0)
    buf = io.StringIO()
    _print_table(arch, work, mapping, ev, "mapping: as given", out=buf)
    lines = buf.getvalue().splitlines()
    lines = lines[next(n for n, l in enumerate(lines) if l.startswith("level ")):]     # the table
    row = next(l for l in lines if l.startswith(name))
    assert "leakage" in row and row.rstrip().endswith("5.00"), row
    # every other level's leakage row sits right under its own data spaces, labelled
    for j, lv in enumerate(ev.levels):
        if lv.leak_pj and lv.dataspaces:
            k = next(n for n, l in enumerate(lines) if l.startswith(lv.name))
            assert "leakage" in lines[k + len(lv.dataspaces)], lines[k:k + 4]
    assert not any(l.strip().startswith("leak ") for l in lines)


def test_map_says_when_it_uses_the_builtin_energy_table(capsys):
    from codesign.cli import main
    d = _case("ispass2020_04-model-conv1d+oc-3levelspatial") / "ref-output" / "kp"
    assert main(["map", str(d / "parsed-processed-input.yaml"), "--budget", "200", "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ERT" in err[0] and "built-in" in err[0] and "default.yaml" in err[0], err
    assert main(["map", str(d / "parsed-processed-input.yaml"), str(d / "timeloop-model.ERT.yaml"), "--budget",
                 "200", "--json"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["map", str(REPO / "specs" / "workloads" / "resnet18_conv2_x.yaml"), "--budget", "200",
                 "--json"]) == 0                 # our own spec: the table is its definition, no note
    assert capsys.readouterr().err == ""


def test_map_names_the_components_a_partial_ert_leaves_to_the_builtin_table(tmp_path, capsys):
    import yaml

    from codesign.cli import main
    d = _case("ispass2020_04-model-conv1d+oc-3levelspatial") / "ref-output" / "kp"
    ert = yaml.safe_load((d / "timeloop-model.ERT.yaml").read_text())
    tables = ert["ERT"]["tables"]
    dropped = next(t for t in tables if ".RegisterFile[" in t["name"])
    ert["ERT"]["tables"] = [t for t in tables if t is not dropped]
    (tmp_path / "ert.yaml").write_text(yaml.safe_dump(ert))
    assert main(["map", str(d / "parsed-processed-input.yaml"), str(tmp_path / "ert.yaml"), "--budget", "200",
                 "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RegisterFile" in err[0] and "built-in" in err[0], err


# ------------------------------------------------------------------------------ hypervolume.csv

def test_last_partial_generation_is_marked(tmp_path):
    import pandas as pd

    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space, name = read_space()
    cfg = search_config(evaluator_config(space, name, "macs", mapper_budget=150), budget=9, population=4, seed=0)
    start_search(tmp_path / "run", cfg)
    t = pd.read_csv(tmp_path / "run" / "hypervolume.csv")
    assert list(t.columns) == ["generation", "evaluations", "candidates", "hypervolume", "partial"]
    assert list(t["candidates"]) == [4, 4, 1] and list(t["evaluations"]) == [4, 8, 9]
    assert list(t["partial"]) == [False, False, True]


# ------------------------------------------------------------------------------ evaluate-network --plot

@pytest.mark.parametrize("layers", [3, 64, 400])
def test_network_figure_is_readable_and_in_microseconds(layers):
    """The figure was 0.45 inch per layer wide (3,456 px for MobileNetV3) with 8-point labels at a
    slant and latency in cycles; now a fixed width, one row per layer, latency in us at the clock."""
    import matplotlib.pyplot as plt

    from accelerators.network import FIGURE_DPI, NetworkResult, network_figure
    from accelerators.spec import load_architecture
    arch = load_architecture("simba_like")
    rows = [{"layer": f"block{i}.conv", "cycles": 1000 * (i % 7 + 1), "mac_energy_pj": 1e5,
             **{f"energy_{lv.name}_pj": 2e5 for lv in arch.levels}} for i in range(layers)]
    res = NetworkResult(arch, rows, {"energy_pj": sum(6e5 for _ in rows), "cycles": sum(r["cycles"] for r in rows)})
    fig = network_figure(res)
    try:
        w, h = fig.get_size_inches() * FIGURE_DPI
        assert w <= 1400 and h <= 25 * FIGURE_DPI
        lat_ax = fig.axes[1]
        assert "us" in lat_ax.get_xlabel() and f"{arch.clock_ghz:g} GHz" in lat_ax.get_xlabel()
        assert max(lat_ax.patches[j].get_width() for j in range(layers)) == pytest.approx(
            max(r["cycles"] for r in rows) / (arch.clock_ghz * 1e3))
        fonts = [t.get_fontsize() for t in fig.axes[0].get_yticklabels()] + [fig.axes[0].xaxis.label.get_fontsize()]
        assert min(fonts) >= 7
        assert len(fig.axes[0].get_yticklabels()) == layers        # every layer named
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------ exit statuses
def test_bad_input_exits_2_an_internal_error_exits_1(capsys, monkeypatch):
    """A recognised input error (SpecError) is bad input, exit 2; an exception no check
    recognised is an internal error, exit 1; both one line, no traceback; CODESIGN_DEBUG=1
    raises instead."""
    import argparse

    from accelerators.errors import SpecError
    from codesign.cli.runner import run

    def parser(exc):
        p = argparse.ArgumentParser(prog="codesign")
        p.set_defaults(func=lambda args: (_ for _ in ()).throw(exc))
        return p
    monkeypatch.delenv("CODESIGN_DEBUG", raising=False)
    assert run(parser(SpecError("--budget", "must be >= 1", "x.yaml")), []) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--budget" in err and len(err.splitlines()) == 1
    assert run(parser(ZeroDivisionError("division by zero")), []) == 1
    err = capsys.readouterr().err.strip()
    assert "internal error" in err and "ZeroDivisionError" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err
    monkeypatch.setenv("CODESIGN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run(parser(ZeroDivisionError("division by zero")), [])
