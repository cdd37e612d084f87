"""Design-space sweeps: grid / random expansion (counts, determinism), resumption after a point
limit or a SIGKILL ends with exactly the uninterrupted run's rows, bad input fails with one line
naming the file and the field (the store kept), failed mappings are stored, and a Dask run that
loses a worker mid-run gives the serial results."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelerators.errors import MappingError, SpecError
from codesign.rundir import sweep as sw
from codesign.space import sweep as sweep_file
from codesign.cli.sweep import main
from codesign.rundir.store import RunStore
from codesign.space.hardware import point_architecture

ROOT = Path(__file__).resolve().parents[1]
TINY_LAYERS = """layers:
  - {type: conv2d, name: c1, C: 8, K: 16, P: 8, Q: 8, R: 3, S: 3}
  - {type: depthwise_conv2d, name: dw, C: 16, P: 8, Q: 8, R: 3, S: 3}
  - {type: fully_connected, name: fc, in_features: 64, out_features: 10}
"""
# 2 networks x 2 x 2 x 2 hardware points; the second network is found from the repository root
FAST = """description: test sweep
networks:
  tiny: {layers: tiny_layers.yaml}
  conv: {layers: specs/workloads/resnet18_conv2_x.yaml}
hardware:
  template: eyeriss_like
  pe_x: [4, 8]
  pe_y: 4
  bits: {choices: [8, 16]}
  sizes_kib: {GlobalBuffer: {min: 32, max: 64, step: 32}}
mapper: {budget: 100}
"""
# ~0.5 s a point (37 layers, 31 shapes): slow enough to kill something mid-run
SLOW = """networks:
  ofa_min: {genome: min}
hardware:
  template: eyeriss_like
  pe_x: [4, 6, 8]
  bits: [8, 16]
mapper: {budget: 100, objective: edp}
"""


def _write(d: Path, text: str, name="sweep.yaml") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny_layers.yaml").write_text(TINY_LAYERS)
    (d / name).write_text(text)
    return d / name


def _rows(d: Path):
    with RunStore(d / "store.sqlite") as s:
        return [(r["id"], r["key"], r["status"], json.dumps(r["metrics"], sort_keys=True)) for r in s.rows()]


def _stored(d: Path) -> int:
    try:
        with sqlite3.connect(d / "store.sqlite", timeout=5) as db:
            return db.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def _csv_without_seconds(d: Path):
    import pandas as pd
    return pd.read_csv(d / "results.csv").drop(columns="seconds")


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """(sweep file, directory of its uninterrupted serial run)."""
    base = tmp_path_factory.mktemp("fast")
    f = _write(base / "spec", FAST)
    res = sw.run_sweep(sweep_file.load_sweep(f), base / "ref")
    assert res.complete and res.evaluated == 16 and res.failed == 0
    return f, base / "ref"


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    base = tmp_path_factory.mktemp("slow")
    f = _write(base / "spec", SLOW)
    assert sw.run_sweep(sweep_file.load_sweep(f), base / "ref").complete
    return f, base / "ref"


# ----------------------------------------------------------------------------- expansion

def test_grid_points_columns_and_order(fast):
    f, ref = fast
    cfg = sweep_file.load_sweep(f)
    assert len(cfg["points"]) == 2 * 2 * 2 * 2
    assert cfg["hw_params"] == ["pe_x", "pe_y", "bits", "sizes_kib.GlobalBuffer"]
    assert cfg["points"][0] == {"network": "tiny", "hw": {"pe_x": 4, "pe_y": 4, "bits": 8,
                                                          "sizes_kib": {"GlobalBuffer": 32}}}
    assert [p["network"] for p in cfg["points"]] == ["tiny"] * 8 + ["conv"] * 8
    assert len({json.dumps(p, sort_keys=True) for p in cfg["points"]}) == 16
    cols = list(__import__("pandas").read_csv(ref / "results.csv").columns)
    assert cols == ["id", "network", "hw_pe_x", "hw_pe_y", "hw_bits", "hw_size_GlobalBuffer_kib", "latency_ms",
                    "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib", "macs", "utilization", "status", "seconds"]
    layers = __import__("pandas").read_csv(ref / "layers.csv")
    assert len(layers) == 8 * 3 + 8 * 1
    # a self-contained config: rebuilt layers equal the files' layers
    from accelerators.network import load_layers
    assert [sweep_file.layer_from_json(l) for l in cfg["networks"]["tiny"]["layers"]] == load_layers(f.parent / "tiny_layers.yaml")


def test_random_points_are_distinct_deterministic_grid_points():
    axes = [("pe_x", (4, 8, 12)), ("bits", (4, 8, 16, 32)), ("sizes_kib.GlobalBuffer", (16, 32, 64, 128, 256))]
    grid = sweep_file.expand_points(axes)
    assert len(grid) == 60
    a, b = sweep_file.expand_points(axes, "random", n=20, seed=1), sweep_file.expand_points(axes, "random", n=20, seed=1)
    assert a == b and len({json.dumps(p, sort_keys=True) for p in a}) == 20
    assert all(p in grid for p in a)
    assert sweep_file.expand_points(axes, "random", n=20, seed=2) != a
    assert sweep_file.expand_points(axes, "random", n=60, seed=3) == grid
    with pytest.raises(SpecError) as e:
        sweep_file.expand_points(axes, "random", n=61)
    assert e.value.field == "n"


def test_random_mode_from_yaml(tmp_path):
    f = _write(tmp_path, FAST.replace("description: test sweep", "mode: random\nn: 3\nseed: 7"))
    cfg = sweep_file.load_sweep(f)
    assert len(cfg["points"]) == 3 * 2 and cfg == sweep_file.load_sweep(f)


def test_point_architecture_is_the_cosearch_architecture():
    from accelerators.spec import load_architecture
    from codesign.space.joint import load_space
    space = load_space()
    text = (ROOT / "specs" / "accelerators" / "eyeriss_like.yaml").read_text()
    hw = dict(space.baseline, bits=8, pe_x=6)
    assert point_architecture(text, json.dumps(hw)) == space.hw.architecture(hw)
    assert point_architecture(text, "{}") == load_architecture("eyeriss_like")      # nothing given: the template
    assert point_architecture(text, '{"pe_y": 4}').compute.instances == 14 * 4


# ----------------------------------------------------------------------------- resumption

def test_point_limit_then_resume_equals_uninterrupted(fast, tmp_path):
    f, ref = fast
    d = tmp_path / "run"
    part = sw.run_sweep(sweep_file.load_sweep(f), d, limit=5)
    assert (part.evaluated, len(part.rows), part.complete) == (5, 5, False)
    assert len(_csv_without_seconds(d)) == 5
    rest = sw.resume_sweep(d)
    assert rest.evaluated == 11 and rest.complete
    assert _rows(d) == _rows(ref)
    assert _csv_without_seconds(d).equals(_csv_without_seconds(ref))
    assert sw.run_sweep(sweep_file.load_sweep(f), d).evaluated == 0                  # same --out: nothing again


def test_sigkill_then_resume_equals_uninterrupted(slow, tmp_path):
    f, ref = slow
    d = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "codesign.cli.sweep", str(f), "--out", str(d), "--quiet"], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while _stored(d) < 2 and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert 2 <= _stored(d) < 6, p.stderr.read()
    assert main(["--resume", str(d), "--quiet"]) == 0
    assert _rows(d) == _rows(ref)
    assert [r[0] for r in _rows(d)] == list(range(6))


def test_other_config_in_same_out_is_refused_and_store_kept(fast, tmp_path, capsys):
    f, ref = fast
    d = tmp_path / "run"
    assert main([str(f), "--out", str(d), "--quiet", "--limit", "3", "--workers", "2"]) == 0
    before = _rows(d)
    assert before == _rows(ref)[:3]                               # a process pool gives the serial results
    other = _write(tmp_path / "spec", FAST.replace("budget: 100", "budget: 120"))
    capsys.readouterr()
    assert main([str(other), "--out", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and str(d) in err[0]
    assert _rows(d) == before


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("edit, field", [
    (("", None), "sweep"),                                                         # no such file
    (("pe_y: 4", "pe_y: [4"), "line"),                                             # malformed YAML
    (("description:", "colour: red\ndescription:"), "colour"),                     # unknown key
    (("pe_y: 4", "pe_z: 4"), "hardware.pe_z"),                                     # unknown parameter
    (("pe_x: [4, 8]", "pe_x: [0, 8]"), "hardware.pe_x"),                           # out of range
    (("{choices: [8, 16]}", "[8, 64]"), "hardware.bits"),
    (("pe_y: 4", "pe_y: 4\n  dataflow: diagonal"), "hardware.dataflow"),
    (("pe_y: 4", "pe_y: 4\n  dram_type: SDRAM9"), "hardware.dram_type"),
    (("GlobalBuffer:", "L3:"), "hardware.sizes_kib.L3"),                           # no such level
    (("{min: 32, max: 64, step: 32}", "[32, -1]"), "hardware.sizes_kib.GlobalBuffer"),
    (("template: eyeriss_like", "template: no_such_template"), "hardware.template"),
    (("tiny_layers.yaml", "missing_layers.yaml"), "networks.tiny.layers"),
    (("{layers: tiny_layers.yaml}", "{genome: {ks: [3], e: [3], d: [2], r: 24}}"), "networks.tiny.genome.ks"),
    (("description: test sweep", "mode: random"), "n"),
    (("budget: 100", "budget: 0"), "mapper.budget"),
    (("budget: 100", "budget: 100, objective: speed"), "mapper.objective"),
])
def test_bad_sweep_files_name_file_and_field(tmp_path, capsys, edit, field):
    f = _write(tmp_path, FAST.replace(*edit) if edit[1] is not None else FAST)
    if edit[1] is None:
        f = tmp_path / "missing.yaml"
    with pytest.raises(SpecError) as e:
        sweep_file.load_sweep(f)
    assert e.value.file == str(f) and e.value.field.startswith(field), e.value.one_line()
    assert main([str(f), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0] and field in err[0]
    assert not (tmp_path / "out").exists()


def test_bad_layer_file_is_named(tmp_path):
    f = _write(tmp_path, FAST)
    (tmp_path / "tiny_layers.yaml").write_text(TINY_LAYERS.replace("K: 16", "K: -16"))
    with pytest.raises(SpecError) as e:
        sweep_file.load_sweep(f)
    assert e.value.file == str(tmp_path / "tiny_layers.yaml") and e.value.field == "layers[0].K"


@pytest.mark.parametrize("bad", ["corrupt_store", "bad_config", "no_config"])
def test_bad_run_directories_exit_2_and_keep_files(fast, tmp_path, capsys, bad):
    f, ref = fast
    d = tmp_path / "run"
    d.mkdir()
    garbage = b"this is not sqlite" * 100
    if bad == "corrupt_store":
        (d / "config.json").write_text((ref / "config.json").read_text())
        (d / "store.sqlite").write_bytes(garbage)
    elif bad == "bad_config":
        (d / "config.json").write_text("{not json")
    for argv in (["--resume", str(d)], [str(f), "--out", str(d)])[:1 if bad == "no_config" else 2]:
        capsys.readouterr()
        assert main(argv + ["--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(d) in err[0], err
        assert {"corrupt_store": "store", "bad_config": "config", "no_config": "no config.json"}[bad] in err[0]
    if bad == "corrupt_store":
        assert (d / "store.sqlite").read_bytes() == garbage


# ----------------------------------------------------------------------------- failures and Dask

def test_points_without_a_mapping_are_stored_as_failed(fast, tmp_path, monkeypatch):
    f, ref = fast
    real = sw.evaluate_network

    def no_mapping_on_16_pes(layers, arch, *a, **kw):
        if arch.compute.instances == 16:
            raise MappingError("mapping", "no valid mapping of c1 on eyeriss_like found in 100 evaluations")
        return real(layers, arch, *a, **kw)

    monkeypatch.setattr(sw, "evaluate_network", no_mapping_on_16_pes)
    res = sw.run_sweep(sweep_file.load_sweep(f), tmp_path / "run")
    assert res.complete and res.failed == 8
    failed = [r for r in res.rows if r["status"] == "failed"]
    assert all(r["genome"]["hw"]["pe_x"] == 4 and r["metrics"] is None and "no valid mapping" in r["error"]
               for r in failed)
    table = _csv_without_seconds(tmp_path / "run")
    assert len(table) == 16 and (table.status == "failed").sum() == 8
    assert table[table.status == "failed"].latency_ms.isna().all()
    ok = [r for r in _rows(tmp_path / "run") if r[2] == "ok"]
    assert ok == [r for r in _rows(ref) if r[0] in {x[0] for x in ok}]


def test_dask_with_a_worker_killed_mid_run_gives_the_serial_results(slow, tmp_path):
    from dask.distributed import Client, LocalCluster
    f, ref = slow
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_a_busy_worker(i, out):
            if killed:
                return
            busy = [a for a, keys in client.processing().items() if keys and a in pids]
            victim = busy[0] if busy else next(iter(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append((victim, bool(busy)))

        res = sw.run_sweep(sweep_file.load_sweep(f), tmp_path / "dask", scheduler=client, on_result=kill_a_busy_worker)
    assert killed and res.complete and res.evaluated == 6
    assert _rows(tmp_path / "dask") == _rows(ref)
    assert all(r["worker"].startswith("tcp://") for r in res.rows)
