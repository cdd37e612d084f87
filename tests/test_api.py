"""The Python API (``codesign.api``, issue #21): the same run directory and front as ``codesign
search`` with the same settings, designs with their mappings and per-layer breakdown, loading a
run back, every registered algorithm, bad input refused early, no torch at import."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO

import codesign
from accelerators.errors import SpecError
from codesign.api import (ALGORITHM_CLASSES, CoSearchProblem, HardwareOnly, NSGA2, Random, Result, Scalar,
                          Sequential, Space, load_result, load_space, minimize)

SMALL = dict(mapper_budget=150)            # a small mapper budget: seconds per search


@pytest.fixture(scope="module")
def problem():
    return CoSearchProblem(load_space(), **SMALL)


@pytest.fixture(scope="module")
def stored(problem, tmp_path_factory):
    d = tmp_path_factory.mktemp("api") / "run"
    return minimize(problem, NSGA2(pop=4), budget=12, seed=1, store=d)


def test_names_are_reexported_lazily_without_torch():
    code = ("import sys, codesign\nassert 'codesign.api' not in sys.modules\n"
            "from codesign import load_space, CoSearchProblem, NSGA2, minimize, load_result\n"
            "p = CoSearchProblem(load_space(), accuracy='macs', mapper_budget=50)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert codesign.minimize is minimize and "minimize" in dir(codesign)
    with pytest.raises(AttributeError):
        codesign.no_such_name


def test_store_is_the_cli_run_directory(stored, tmp_path):
    cli = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "codesign.cli", "search", "--budget", "12", "--population", "4",
                    "--mapper-budget", "150", "--seed", "1", "--out", str(cli), "--no-plot", "--no-report", "--quiet"],
                   check=True, cwd=REPO)
    api = stored.directory
    for f in ("front.csv", "all.csv", "hypervolume.csv"):
        assert (api / f).read_bytes() == (cli / f).read_bytes(), f
    assert json.loads((api / "config.json").read_text()) == json.loads((cli / "config.json").read_text())
    pd.testing.assert_frame_equal(stored.front, pd.read_csv(cli / "front.csv"), check_exact=False, rtol=1e-12)
    assert list(stored.all.columns) == list(pd.read_csv(cli / "all.csv").columns)
    assert stored.hypervolume == pytest.approx(pd.read_csv(cli / "hypervolume.csv")["hypervolume"].iloc[-1])


def test_in_memory_run_equals_the_stored_one_and_rerun_takes_the_store(problem, stored):
    mem = minimize(problem, NSGA2(pop=4), budget=12, seed=1)
    assert mem.directory is None
    pd.testing.assert_frame_equal(mem.front, stored.front)
    assert mem.hypervolume == stored.hypervolume
    again = minimize(problem, NSGA2(pop=4), budget=12, seed=1, store=stored.directory)
    assert again.search.evaluated == 0
    pd.testing.assert_frame_equal(again.front, stored.front)
    with pytest.raises(SpecError, match="different configuration"):
        minimize(problem, NSGA2(pop=4), budget=12, seed=2, store=stored.directory)


def test_a_larger_budget_on_the_same_store_extends_the_run(problem, stored, tmp_path):
    minimize(problem, NSGA2(pop=4), budget=8, seed=1, store=tmp_path / "run")
    ext = minimize(problem, NSGA2(pop=4), budget=12, seed=1, store=tmp_path / "run")
    assert ext.search.evaluated == 4
    pd.testing.assert_frame_equal(ext.front, stored.front)


def test_load_result(stored):
    back = load_result(stored.directory)
    assert isinstance(back, Result) and back.directory == stored.directory
    pd.testing.assert_frame_equal(back.front, stored.front)
    assert back.hypervolume == pytest.approx(stored.hypervolume)
    assert list(back.history.columns) == ["generation", "evaluations", "hypervolume"]
    assert back.problem.config == stored.config["evaluator"]
    d = back.design(id=int(back.front["id"].iloc[-1]))
    assert d.genome == json.loads(back.front["genome_json"].iloc[-1])
    with pytest.raises(SpecError, match="not a run directory|no such directory"):
        load_result(stored.directory / "nothing")


def test_design(stored):
    d = stored.design(0)
    row = stored.front.iloc[0]
    assert d.id == row["id"] and d.metrics["latency_ms"] == pytest.approx(row["latency_ms"])
    assert d.hardware == d.genome["hw"] and d.network == d.genome["net"]
    json.dumps(d.to_dict())                                  # plain dicts
    names = [layer.name for layer in d.layers()]
    assert names[0] == "stem" and names[-1] == "classifier"
    assert d.mapping(0) == d.mapping("stem") and d.mapping(-1) == d.mapping("classifier")
    arch = d.architecture()
    assert "Compute" in d.mapping("head").loop_nest(arch)
    b = d.breakdown()
    assert list(b["layer"]) == names
    for col in ("latency_ms", "energy_uj", "cycles", "macs", "utilization", "energy_DRAM_uj"):
        assert col in b.columns
    # the breakdown adds up to the design's stored metrics (same mapper, budget, seed)
    assert b["latency_ms"].sum() == pytest.approx(d.metrics["latency_ms"], rel=1e-9)
    assert b["energy_uj"].sum() == pytest.approx(d.metrics["energy_uj"], rel=1e-9)
    assert b["macs"].sum() == d.metrics["macs"]
    assert stored.design(-1).id == stored.front["id"].iloc[-1]
    assert [x.id for x in stored.designs()] == list(stored.front["id"])
    with pytest.raises(IndexError):
        stored.design(len(stored.front))
    with pytest.raises(KeyError, match="no layer"):
        d.mapping("no-such-layer")
    with pytest.raises(IndexError):
        d.mapping(10_000)
    with pytest.raises(SpecError, match="no design with id"):
        stored.design(id=10_000)
    with pytest.raises(TypeError):
        stored.design()


def test_design_subnet(stored):
    torch = pytest.importorskip("torch")
    d = stored.design(0)
    r = d.network["r"]
    with torch.no_grad():
        out = d.subnet()(torch.zeros(2, 3, r, r))
    assert tuple(out.shape) == (2, 10)


def test_design_subnet_without_torch(stored, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)          # import torch raises ImportError
    with pytest.raises(ImportError, match="needs PyTorch"):
        stored.design(0).subnet()


def test_every_registered_algorithm_has_a_class_and_runs(problem):
    from codesign.search.algorithms import ALGORITHMS
    assert set(ALGORITHM_CLASSES) == set(ALGORITHMS)
    fast = CoSearchProblem(accuracy="macs", cost="predicted", mapper_budget=150)
    for alg in (Random(pop=4), Sequential(pop=4), HardwareOnly(pop=4, net="min"), Scalar(pop=4, scalarize="acc-lat:alpha=2"),
                NSGA2(pop=4)):
        res = minimize(fast, alg, budget=8, seed=0)
        assert res.config["algorithm"] == alg.name and len(res.search.rows) == 8, alg
        assert len(res.front) >= 1
    assert len(minimize(fast, Scalar(pop=4), budget=8).front) == 1      # the best design alone
    hw = minimize(fast, HardwareOnly(pop=4, net="min"), budget=8)
    assert len({json.dumps(r["genome"]["net"], sort_keys=True) for r in hw.search.rows}) == 1
    assert minimize(fast, "random", budget=4).config["population"] == 24


def test_problem_options():
    p = CoSearchProblem(accuracy="macs", cost="predicted", objectives=("accuracy", "edp"), bits=(4, 8), **SMALL)
    assert p.objectives == ("accuracy", "edp") and p.space.bits == (4, 8)
    assert p.config["cost_predictor"] and p.config["accuracy"]["source"] == "macs"
    assert p.space.baseline["bits"] == 8                      # the baseline's 16 bits are out of the space
    res = minimize(p, NSGA2(pop=4), budget=8)
    assert set(res.all["hw_bits"]) <= {4, 8} and "edp_uj_ms" in res.front.columns
    assert res.config["objectives"] == ["accuracy", "edp"]
    g = p.sample(3)
    assert set(g) == {"net", "hw"} and p.evaluate(g)["violation"] >= 0
    assert CoSearchProblem(bits=8, **SMALL).space.bits == (8,)
    assert CoSearchProblem("default", **SMALL).space.name == "default"


@pytest.mark.parametrize("kw, field", [
    (dict(cost="mapped"), "cost"), (dict(objectives=("accuracy", "speed")), "objectives"),
    (dict(bits=(3,)), "bits"), (dict(mapper_budget=0), "mapper_budget"), (dict(accuracy="oracle"), "accuracy"),
    (dict(accuracy="measured"), "data"), (dict(cost_predictor="x.npz"), "cost_predictor"),
    (dict(space="no_such_space"), "space")])
def test_bad_problem_is_refused(kw, field):
    with pytest.raises(SpecError) as e:
        CoSearchProblem(**kw)
    assert e.value.field == field


def test_bad_minimize_is_refused(problem):
    with pytest.raises(SpecError, match="^budget: "):
        minimize(problem, NSGA2(pop=4), budget=0)
    with pytest.raises(SpecError, match="^pop: "):
        minimize(problem, NSGA2(pop=1), budget=4)
    with pytest.raises(SpecError, match="^screen: "):
        minimize(problem, NSGA2(pop=4, screen=1), budget=4)
    with pytest.raises(SpecError, match="mutation"):
        minimize(problem, NSGA2(mutation=2.0), budget=4)
    with pytest.raises(SpecError, match="unknown algorithm"):
        minimize(problem, "nsga3", budget=4)
    with pytest.raises(TypeError):
        minimize("problem", NSGA2(), budget=4)


def test_space(tmp_path):
    s = load_space()
    assert s == load_space("default") and s.name == "default" and s.objectives
    assert s.sample(0) == s.sample(0) and s.sample(0) != s.sample(1)
    f = tmp_path / "mine.yaml"
    f.write_text((REPO / "specs" / "spaces" / "default.yaml").read_text().replace("area_mm2: 4.0", "area_mm2: 3.0"))
    mine = load_space(f)
    assert mine.name == "mine" and mine.constraints["area_mm2"] == 3.0
    assert Space.from_dict(mine.spec, "x").constraints == mine.constraints
    f.write_text("hardware: {template: eyeriss_like}\n")
    with pytest.raises(SpecError) as e:
        load_space(f)
    assert e.value.file == str(f)


def test_every_public_name_has_a_docstring():
    import functools
    import inspect
    from codesign import api
    for name in api.__all__:
        obj = getattr(api, name)
        if isinstance(obj, dict):
            continue
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (property, functools.cached_property)):
                    assert member.__doc__, f"{name}.{attr}"
                elif inspect.isfunction(member) or isinstance(member, classmethod):
                    assert inspect.getdoc(getattr(obj, attr)), f"{name}.{attr}"


@pytest.mark.slow
def test_worker_processes_give_the_serial_front(problem):
    serial = minimize(problem, NSGA2(pop=4), budget=12, seed=2)
    parallel = minimize(problem, NSGA2(pop=4), budget=12, seed=2, workers=2)
    pd.testing.assert_frame_equal(serial.front, parallel.front)
    d = parallel.design(0)                       # mapped here afresh: the same figures
    assert d.breakdown()["energy_uj"].sum() == pytest.approx(d.metrics["energy_uj"], rel=1e-9)
