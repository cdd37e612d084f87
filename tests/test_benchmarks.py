"""Smoke runs of the benchmark scripts: they run, and end with the lines the README quotes."""
import subprocess
import sys

import numpy as np

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow          # (fast subset: pytest -m 'not slow')


@pytest.mark.parametrize("script, last", [
    ("cost_model.py", ["batched_evals_per_s", "batched_evals_per_s_tpu_like", "scalar_evals_per_s", "zigzag_ratio_scalar", "zigzag_ratio"]),
    ("mapper.py", ["resnet18_eyeriss_s", "resnet18_tpu_s", "zigzag_ratio"]),
    ("link_transfers.py", ["link_transfer_share"]),
    ("link_speed.py", ["links_on_evals_per_s_tpu_like", "links_on_off_ratio_tpu_like"]),
    ("candidate_floor.py", ["model_share", "model_evals_per_s", "evals_per_candidate",
                            "floor_candidates_per_min_2_cores"]),
])
def test_benchmark_smoke(script, last):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--smoke"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-len(last):]
    assert [l.split(":")[0] for l in lines] == last
    for l in lines:
        v = float(l.split(": ")[1])
        assert v > 0 or (l.startswith("zigzag") and v != v)     # ZigZag is not run by --smoke


COSEARCH_LAST = ["joint_vs_sequential_p", "joint_vs_random_p", "joint_median_hv_gain_pct",
                 "edp_reduction_vs_eyeriss_median", "edp_reduction_same_dram_median"]


def test_cosearch_benchmark_smoke_chunks_and_resume(tmp_path):
    """--smoke in two chunks (--max-runs) ends as one run does; a torn runs.jsonl line is rerun;
    every run has its rows file; another configuration in the directory is refused."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "cosearch.py"), "--smoke"]
    whole = subprocess.run(cmd + ["--out", str(tmp_path / "whole")], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    lines = whole.stdout.strip().splitlines()[-5:]
    assert [l.split(":")[0] for l in lines] == COSEARCH_LAST
    assert 0 < float(lines[0].split()[1]) <= 1 and 0 < float(lines[1].split()[1]) <= 1
    assert "nan" in lines[3] and "--data" in lines[3]            # no measured accuracy in the smoke run
    assert "# chosen settings: joint population 4, mutation" in whole.stdout
    out = tmp_path / "chunks"
    first = subprocess.run(cmd + ["--out", str(out), "--max-runs", "6"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "# runs: 6 of 15 done" in first.stdout and first.stdout.strip().splitlines()[-3].endswith("continue)")
    runs = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text("\n".join(runs[:5]) + "\n" + runs[5][:40])       # torn last line
    again = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "# runs: 15 of 15 done (10 now)" in again.stdout
    assert again.stdout.splitlines()[-5:] == whole.stdout.splitlines()[-5:]
    assert len((out / "runs.jsonl").read_text().splitlines()) == 15 == len(list((out / "rows").glob("*.jsonl.gz")))
    (out / "config.json").write_text('{"other": 1}')
    refused = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "config.json" in refused.stderr and "Traceback" not in refused.stderr


def test_cosearch_edp_like_for_like_with_a_stand_in_measurement(tmp_path, capsys):
    """The EDP rule on a smoke run's joint rows, with a stand-in for the measured accuracy: the
    chosen design is the lowest-EDP one that qualifies, its area no larger than the baseline's,
    and the one-at-a-time breakdown ends with the design's own ratio."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_cosearch", REPO / "benchmarks" / "cosearch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    a = bench.parse(["--smoke", "--out", str(tmp_path)])
    from codesign.search.problem import Evaluator, accuracy_function
    from codesign.space.joint import load_space
    space = load_space()
    exact = Evaluator(space, accuracy_function({"source": "macs"}), mapper_budget=a.mapper_budget)
    base_g = {"net": space.net.canonical(space.net.max_genome()), "hw": dict(space.baseline)}
    base = exact(base_g)
    only8 = lambda net, bits: 90.0 if int(bits) in (8, 16) else 50.0        # the baseline runs at 16 bits
    (edp, note), (edp_d, _) = bench.edp_like_for_like(a, space, exact, tmp_path, [0, 1], measured=only8)
    per_seed = []
    for sd in (0, 1):
        rows = bench.read_rows(tmp_path, bench.run_name("bench", sd, "joint", bench._chosen(tmp_path, sd)))
        got = bench.pick_design(rows, base, 90.0, only8, exact, a, False)
        if got is not None:
            r, m, top1 = got
            assert r["genome"]["hw"]["bits"] in (8, 16) and m["area_mm2"] <= base["area_mm2"] and top1 == 90.0
            ok = [x for x in rows if x["genome"]["hw"]["bits"] in (8, 16) and x["metrics"]["violation"] <= 0
                  and x["metrics"]["area_mm2"] <= base["area_mm2"]]
            assert r["metrics"]["edp_uj_ms"] == min(x["metrics"]["edp_uj_ms"] for x in ok)
            per_seed.append(base["edp_uj_ms"] / m["edp_uj_ms"])
            a.margin = 1e9                 # the prefilter on the search's accuracy: wide open, then shut
            assert bench.pick_design(rows, base, 90.0, only8, exact, a, True)[0] is r
            a.margin = -1e9
            assert bench.pick_design(rows, base, 90.0, only8, exact, a, True) is None
            a.margin = 3.0
            parts = bench.breakdown(space, exact, base_g, r["genome"])
            assert set(parts) == {"bit-width", "DRAM", "PE array", "buffer sizes", "dataflow", "network",
                                  "all (the design)"}
            assert parts["all (the design)"] == pytest.approx(per_seed[-1])
    assert per_seed                            # (seeded: the smoke runs hold qualifying designs)
    assert edp == pytest.approx(float(np.median(per_seed))) and f"over {len(per_seed)} of 2" in note
    assert edp_d == edp_d
    none = lambda net, bits: 90.0 if int(bits) == 16 and net == base_g["net"] else 0.0
    (edp0, note0), _ = bench.edp_like_for_like(a, space, exact, tmp_path, [0, 1], measured=none)
    assert edp0 != edp0 and "0 of 2" in note0
    # no seed qualifies: each seed's best measured accuracy (0 here: every design but the baseline
    # measures 0) says how far its front is from the baseline
    table = capsys.readouterr().out.split("best_measured_top1: the highest")[-1]
    assert [ln.split()[-1] for ln in table.splitlines()[3:5]] == ["0", "0"]


def test_cosearch_floor_runs_search_under_the_baseline_constraints(tmp_path, capsys):
    """--floor: per EDP seed a joint run whose space adds min_accuracy = the baseline's search
    accuracy - 0.5 and area_mm2 = the baseline's area; the EDP rule on its rows; the floor line
    comes before the five last lines, which keep their order."""
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location("bench_cosearch", REPO / "benchmarks" / "cosearch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--floor", "--floor-initial", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-5:][0].startswith("joint_vs_sequential_p")
    from codesign.search.problem import Evaluator, accuracy_function
    from codesign.space.joint import load_space
    a = bench.parse(["--smoke", "--floor", "--out", str(tmp_path)])
    space = load_space()
    exact = Evaluator(space, accuracy_function({"source": "macs"}), mapper_budget=a.mapper_budget)
    base_g = {"net": space.net.canonical(space.net.max_genome()), "hw": dict(space.baseline)}
    base = exact(base_g)
    floor = json.loads((tmp_path / "floor.json").read_text())
    assert floor == {"min_accuracy": pytest.approx(base["top1_pct"] - 0.5), "area_mm2": pytest.approx(base["area_mm2"])}
    fspace, _ = bench.floor_constraints(space, exact)
    assert dict(fspace.constraints)["min_accuracy"] == floor["min_accuracy"]
    for sd in (0, 1):
        rows = bench.read_rows(tmp_path, bench.run_name("floor", sd, "joint", bench._chosen(tmp_path, sd)))
        assert len(rows) == a.budget
        for r in rows:             # feasible in the floor run <=> meets the floor, the area and the space's limits
            m = r["metrics"]
            meets = (m["top1_pct"] >= floor["min_accuracy"] and m["area_mm2"] <= floor["area_mm2"] + 1e-12
                     and exact.violation(m) <= 0)
            assert (m["violation"] <= 0) == meets
    for sd in (0, 1):              # --floor-initial: the same floor, the baseline design first
        rows = bench.read_rows(tmp_path, bench.run_name("floorinit", sd, "joint", bench._chosen(tmp_path, sd)))
        assert rows[0]["genome"] == base_g and rows[0]["gen"] == 0 and len(rows) == a.budget
    assert out.count("edp_reduction_floor") == 0     # (no --data: the EDP step, floor lines too, is skipped)
    only16 = lambda net, bits: 90.0 if int(bits) == 16 else 50.0
    bench.edp_like_for_like(a, space, exact, tmp_path, [0, 1], measured=only16,
                            floor_runs={"floor": {sd: bench.run_name("floor", sd, "joint", bench._chosen(tmp_path, sd))
                                                  for sd in (0, 1)}})
    text = capsys.readouterr().out
    line = [l for l in text.splitlines() if l.startswith("edp_reduction_floor_median:")]
    assert len(line) == 1 and "of 2 seeds" in line[0]
    # the floor designs' reduction by the rule, recomputed here
    want = []
    for sd in (0, 1):
        rows = bench.read_rows(tmp_path, bench.run_name("floor", sd, "joint", bench._chosen(tmp_path, sd)))
        got = bench.pick_design(rows, base, 90.0, only16, exact, a, False)
        if got is not None:
            want.append(base["edp_uj_ms"] / got[1]["edp_uj_ms"])
    if want:
        assert float(line[0].split()[1]) == pytest.approx(float(np.median(want)), rel=1e-2)
    else:
        assert line[0].split()[1] == "nan"


def test_scalesim_peer_without_its_venv_says_how_to_make_it(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scalesim_peer.py"),
                        "--scalesim-python", str(tmp_path / "no-venv" / "bin" / "python")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "python3 -m venv" in lines[0] and "pip install scalesim" in lines[0]


def test_scalesim_peer_with_a_python_lacking_scalesim_exits_2():
    import importlib.util
    if importlib.util.find_spec("scalesim") is not None:
        pytest.skip("scalesim is importable here: the peer would run")
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scalesim_peer.py"),
                        "--scalesim-python", sys.executable, "--layers", "resnet18_conv4_x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot import SCALE-Sim" in lines[0] and "pip install scalesim" in lines[0]


def test_proxies_benchmark_smoke(tmp_path):
    """benchmarks/proxies.py --smoke: a few small genomes, synthetic data; ends with the README's
    lines, writes the table, the per-genome scores and a plot per proxy."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "proxies.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-3:]
    assert [l.split(":")[0] for l in lines] == ["best_proxy", "ensemble_spearman", "macs_spearman"]
    assert -1 <= float(lines[0].split()[-1]) <= 1
    assert (tmp_path / "table.md").is_file() and len((tmp_path / "scores.jsonl").read_text().splitlines()) == 10
    assert (tmp_path / "plots" / "macs.png").is_file()


def test_darts_benchmark_smoke(tmp_path):
    """benchmarks/darts.py --smoke: the DARTS sweep, NSGA-II and random search at the same seconds,
    the re-measured fronts and their hypervolumes, the --hw-space co-search; its last lines."""
    import json
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "darts.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()[-4:]
    assert [l.split(":")[0] for l in lines] == ["darts_vs_random_hv_ratio", "darts_front_points",
                                                "darts_vs_evolution_hv_ratio", "hw_space_edp_vs_baseline"]
    float(lines[0].split(": ")[1]), float(lines[2].split(": ")[1])
    assert float(lines[3].split(": ")[1]) > 0
    assert "ms," in lines[1]
    res = json.loads((tmp_path / "compare.json").read_text())
    assert set(res["methods"]) == {"darts", "nsga2", "random"}
    for m in res["methods"].values():
        assert m["measured"] and all("top1_measured_pct" in d for d in m["measured"])
    assert res["methods"]["nsga2"]["candidates"] > 0 and (tmp_path / "compare.png").is_file()
    assert res["hw_space"]["within_onchip_limit"] is not None
