"""Co-search building blocks: the joint space (encode/mutate/crossover keep validity, bad space
files are rejected by field), NSGA-II ranking against pymoo, and a small seeded search."""
import json

import numpy as np
import pytest

from accelerators.errors import SpecError
from codesign.search.algorithms import front_table, objective_matrix, run_search
from codesign.search.problem import Evaluator
from codesign.search.nsga2 import crowding_distance, hypervolume, non_dominated_fronts
from codesign.space.joint import load_space


def test_joint_genomes_stay_valid():
    space = load_space()
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    for _ in range(200):
        h = space.mutate(g, rng, 0.3)
        space.validate(json.loads(json.dumps(h)))          # JSON round trip and validity
        c = space.crossover(g, h, rng)
        space.validate(c)
        g = c
    arch = space.hw.architecture(g["hw"])
    assert arch.num_pes == g["hw"]["pe_x"] * g["hw"]["pe_y"]
    assert arch.bits["weights"] == g["hw"]["bits"]


@pytest.mark.parametrize("text, field", [
    ("hardware: {template: nope_like}", "architecture"),
    ("hardware: {template: eyeriss_like, pe_x: {min: 4, max: 2}}", "hardware.pe_x"),
    ("colour: red", "colour"),
    ("hardware: {template: eyeriss_like, pe_x: [4], pe_y: [4], bits: [8], dram_bw: [4], dataflow: [sideways],"
     " dram_type: [LPDDR4]}", "hardware.dataflow"),
    ("hardware: {template: eyeriss_like, pe_x: [4], pe_y: [4], bits: [8], dram_bw: [4], dataflow: [free],"
     " dram_type: [LPDDR4], sizes_kib: {L9: [1]}}", "hardware.sizes_kib.L9"),
    ("hardware: {template: eyeriss_like, pe_x: [4], pe_y: [4], bits: [8], dram_bw: [4], dataflow: [free],"
     " dram_type: [LPDDR4]}\nconstraints: {area_mm2: -1}", "constraints.area_mm2"),
])
def test_bad_space_files(tmp_path, text, field):
    f = tmp_path / "space.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as e:
        load_space(f)
    assert field in str(e.value) and str(f) in str(e.value)


def test_non_dominated_sort_agrees_with_pymoo():
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    rng = np.random.default_rng(1)
    for trial in range(20):
        F = rng.integers(0, 6, size=(40, 3)).astype(float)     # ties on purpose
        ours = [sorted(f.tolist()) for f in non_dominated_fronts(F)]
        theirs = [sorted(f.tolist()) for f in NonDominatedSorting().do(F)]
        assert ours == theirs
    d = crowding_distance(np.array([[0, 3], [1, 2], [2, 1], [3, 0]], float))
    assert np.isinf(d[0]) and np.isinf(d[3]) and d[1] == pytest.approx(4 / 3)
    assert hypervolume(np.array([[1, 2], [2, 1]]), np.array([3, 3])) == pytest.approx(3.0)


def test_constrained_domination():
    F = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
    fronts = non_dominated_fronts(F, violation=np.array([0.5, 0.0, 0.1]))
    assert fronts[0].tolist() == [1] and fronts[1].tolist() == [2] and fronts[2].tolist() == [0]


def test_small_search_is_seeded_and_writes_a_front():
    space = load_space()
    acc = lambda net, bits: 70 + sum(net["e"]) / 16 + net["r"] / 8 - (5 if bits == 4 else 0)
    runs = []
    for _ in range(2):
        ev = Evaluator(space, acc, mapper_budget=300)
        runs.append(run_search(space, ev, budget=8, population=4, seed=3))
    a, b = runs
    assert [r["genome"] for r in a.rows] == [r["genome"] for r in b.rows]
    assert [r["metrics"] for r in a.rows] == [r["metrics"] for r in b.rows]
    front = a.front()
    assert 1 <= len(front) <= 8
    F = objective_matrix(front, a.objectives)
    assert not any(np.all(F[i] <= F[j]) and np.any(F[i] < F[j]) for i in range(len(F)) for j in range(len(F)))
    table = front_table(front)
    assert {"net_ks_0", "net_r", "hw_pe_x", "hw_size_GlobalBuffer_kib", "top1_pct", "latency_ms",
            "energy_uj", "area_mm2"} <= set(table.columns)


def _fake_accuracy(net, bits):
    return 70 + sum(net["e"]) / 16 + net["r"] / 8 + sum(net["d"]) / 4 - {4: 6, 6: 2, 8: 0.5}.get(bits, 0)


def test_scalarized_search_returns_its_best_design():
    from codesign.search.algorithms import parse_scalarize, scalar_score
    space = load_space()
    ev = Evaluator(space, _fake_accuracy, mapper_budget=150)
    res = run_search(space, ev, algorithm="scalar", scalarize="acc-lat:alpha=2", budget=10, population=4, seed=1)
    best = res.best()
    sc = parse_scalarize("acc-lat:alpha=2")
    assert res.front() == [best]
    assert scalar_score(best["metrics"], sc) == max(scalar_score(r["metrics"], sc) for r in res.rows)
    m = {"top1_pct": 80.0, "latency_ms": 4.0}
    assert scalar_score(m, parse_scalarize("mnas:target_ms=2,w=-0.07")) == pytest.approx(80 * 2 ** -0.07)
    assert scalar_score(m, sc) == pytest.approx(72.0)
    for bad in ("mnas:w=1", "acc-lat:beta=1", "pareto", "acc-lat:alpha=x"):
        with pytest.raises(SpecError, match="--scalarize"):
            parse_scalarize(bad)


def test_baselines_freeze_their_half_of_the_genome():
    from codesign.search.algorithms import run_hardware_only, run_sequential
    space = load_space()
    ev = Evaluator(space, _fake_accuracy, mapper_budget=150)
    seq = run_sequential(space, ev, budget=12, population=4, seed=2)
    assert len(seq.rows) == 12
    first, second = seq.rows[:6], seq.rows[6:]
    assert all(r["genome"]["hw"] == space.baseline for r in first)           # NAS on the fixed accelerator
    nets = {json.dumps(r["genome"]["net"], sort_keys=True) for r in second}
    assert len(nets) == 1                                                    # then hardware for one network
    best_first = max(first, key=lambda r: r["metrics"]["top1_pct"])
    assert json.loads(nets.pop()) == best_first["genome"]["net"]
    hw = run_hardware_only(space, ev, budget=8, population=4, seed=2)
    assert {json.dumps(r["genome"]["net"], sort_keys=True) for r in hw.rows} == \
        {json.dumps(space.net.canonical(space.net.max_genome()), sort_keys=True)}
    gens = [g for g, _, _ in seq.hypervolume]
    assert gens == sorted(gens) and len(set(gens)) == len(gens)             # one record per generation


def test_failed_candidates_are_ranked_last_not_dropped():
    from codesign.search.algorithms import pareto_front
    space = load_space()
    good = {"id": 0, "genome": {}, "metrics": {"top1_pct": 80, "latency_ms": 1, "energy_uj": 1, "violation": 0.0}}
    failed = {"id": 1, "genome": {}, "metrics": {"violation": 1e9, "error": "no valid mapping"}}
    assert pareto_front([failed, good], space.objectives) == [good]
    F = objective_matrix([failed], space.objectives)
    assert np.isfinite(F).all()


def test_algorithms_are_registered_objects_and_the_cli_offers_them_all():
    from codesign.cli import build_parser
    from codesign.search.algorithms import ALGORITHMS, Algorithm
    assert all(isinstance(a, Algorithm) and a.name == name for name, a in ALGORITHMS.items())
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["search"]
    algo = next(a for a in sub._actions if a.dest == "algorithm")
    # darts is the one choice not run in-process by run_search: codesign search delegates it to codesign darts
    assert tuple(algo.choices) == tuple(ALGORITHMS) + ("darts",)


def test_screened_search_scores_every_kept_candidate_exactly(tmp_path):
    """--screen K: K x population children per generation, ranked on predicted figures; only
    the best population are evaluated with the mapped model, so every row (and every front
    design) carries exact figures; the screened-out ones are kept apart, predicted, and the
    audit scores some of them exactly against the front. The run replays on resume."""
    from codesign.search.screening import Screener, audit_screening
    from codesign.search.problem import evaluator_config
    from codesign.rundir.search import search_config, start_search
    from codesign.space.joint import read_space
    space = load_space()
    space_dict, name = read_space(None)
    ev_cfg = evaluator_config(space_dict, name, "macs", mapper_budget=200)
    scr = Screener(space, ev_cfg)
    ev = Evaluator(space, scr.accuracy, mapper_budget=200)
    res = run_search(space, ev, budget=12, population=4, seed=1, screen=4, screener=scr)
    assert len(res.rows) == 12 and res.screened
    keys = {r["key"] for r in res.rows}
    assert not keys & {s["key"] for s in res.screened}
    for r in res.rows:                       # exact: the evaluator's own figures
        assert r["metrics"] == ev(r["genome"])
    assert scr.count >= len(res.screened)
    audit = audit_screening(res.rows, res.screened, ev, res.objectives, sample=5)
    assert audit["scored_exactly"] == 5 and 0 <= audit["front_from_screened_out"] <= audit["front"]
    # as a run directory: screened.csv (predicted), the same front after a second start
    cfg = search_config(ev_cfg, budget=8, population=4, seed=2, screen=3)
    first = start_search(tmp_path / "run", cfg)
    again = start_search(tmp_path / "run", cfg)
    assert (tmp_path / "run" / "screened.csv").read_text().splitlines()[1].startswith("predicted,")
    assert [r["key"] for r in first.front()] == [r["key"] for r in again.front()]
    assert again.evaluated == 0
    with pytest.raises(SpecError):
        search_config(ev_cfg, algorithm="random", screen=3)
    with pytest.raises(SpecError):
        search_config(evaluator_config(space_dict, name, "measured", data=str(tmp_path), mapper_budget=200), screen=3)


def test_screening_audit_of_a_run_directory_resumes_and_counts_lost_front_designs(tmp_path):
    """codesign audit-screening: the run's screened-out children scored with its own exact
    evaluator, each score kept as it arrives (a second audit scores nothing again), the lost
    designs counted against an independent front; a run without --screen is refused."""
    from codesign.rundir.audit import audit_run
    from codesign.search.algorithms import pareto_front
    from codesign.search.problem import build_evaluator, evaluator_config
    from codesign.rundir.search import search_config, start_search, load_run
    from codesign.space.joint import read_space
    space_dict, name = read_space(None)
    ev_cfg = evaluator_config(space_dict, name, "macs", mapper_budget=200)
    start_search(tmp_path / "run", search_config(ev_cfg, budget=8, population=4, seed=3, screen=3))
    first = audit_run(tmp_path / "run", sample=4)
    log = (tmp_path / "run" / "screening_audit.jsonl").read_text().splitlines()
    assert first["scored_exactly"] == 4 and len(log) == 4
    # independently: the exact metrics of the logged children, on a front with the run's rows
    ev = build_evaluator(ev_cfg)
    cfg, res = load_run(tmp_path / "run")
    extra = []
    for line in log:
        r = json.loads(line)
        assert r["metrics"] == ev(r["genome"])
        extra.append({"key": r["key"], "genome": r["genome"], "metrics": r["metrics"], "screened": True})
    front = pareto_front(list(res.rows) + extra, res.objectives)
    assert first["front"] == len(front)
    assert first["front_from_screened_out"] == sum(1 for r in front if r.get("screened"))
    assert first["hypervolume_with_audited"] >= first["hypervolume_run"] > 0
    again = audit_run(tmp_path / "run", sample=4)
    assert len((tmp_path / "run" / "screening_audit.jsonl").read_text().splitlines()) == 4
    assert again["front_from_screened_out"] == first["front_from_screened_out"]
    assert json.loads((tmp_path / "run" / "screening_audit.json").read_text())["audited"] == 4
    # a writer killed mid-line: the torn line is cut, the resumed audit scores it again
    log_path = tmp_path / "run" / "screening_audit.jsonl"
    kept = log_path.read_text().splitlines()
    log_path.write_text("\n".join(kept[:3]) + "\n" + kept[3][:25])
    audit_run(tmp_path / "run", sample=4)
    assert [json.loads(x)["key"] for x in log_path.read_text().splitlines()] == [json.loads(x)["key"] for x in kept]
    start_search(tmp_path / "plain", search_config(ev_cfg, budget=4, population=4, seed=3))
    with pytest.raises(SpecError, match="not a screened run"):
        audit_run(tmp_path / "plain")


def test_sequential_topk_searches_hardware_for_the_nas_fronts_top_k_in_the_same_budget():
    """sequential-topk: NAS on the baseline accelerator with half the budget, then one hardware
    search per network of the k most accurate feasible NAS-front designs, the rest of the budget
    split evenly; seeded (the cost predictor keeps it fast)."""
    from codesign.artifacts import WEIGHTS_DIR
    from codesign.predictors.cost import CostPredictor
    from codesign.search.algorithms import ALGORITHMS, pareto_front
    space = load_space()
    cost = CostPredictor.load(WEIGHTS_DIR / "cost_predictor.npz")
    runs = [ALGORITHMS["sequential-topk"].run(space, Evaluator(space, _fake_accuracy, cost=cost), budget=23,
                                              population=4, seed=7, k=3) for _ in range(2)]
    res = runs[0]
    assert [r["genome"] for r in res.rows] == [r["genome"] for r in runs[1].rows]     # seeded
    assert len(res.rows) == 23
    nas, *hw = res.stages
    assert nas["stage"] == "nas" and nas["rows"] == [0, 11]
    assert all(r["genome"]["hw"] == space.baseline for r in res.rows[:11])
    first = res.rows[:11]
    front = [r for r in pareto_front(first, res.objectives) if r["metrics"]["violation"] <= 0]
    want = [r["genome"]["net"] for r in sorted(front, key=lambda r: -r["metrics"]["top1_pct"])][:3]
    assert [s["net"] for s in hw] == want and len(want) == min(3, len(front))
    assert sum(s["budget"] for s in hw) == 12 and max(s["budget"] for s in hw) - min(s["budget"] for s in hw) <= 1
    for s in hw:                               # each stage: its network only, within its share
        a, b = s["rows"]
        assert b - a <= s["budget"]
        assert all(r["genome"]["net"] == s["net"] for r in res.rows[a:b])
    assert hw[-1]["rows"][1] == 23
    k1 = ALGORITHMS["sequential-topk"].run(space, Evaluator(space, _fake_accuracy, cost=cost), budget=23,
                                           population=4, seed=7, k=1)
    assert [s["net"] for s in k1.stages[1:]] == want[:1] and k1.stages[1]["budget"] == 12
    with pytest.raises(ValueError):
        ALGORITHMS["sequential-topk"].run(space, Evaluator(space, _fake_accuracy, cost=cost), budget=8, k=0)


def test_sequential_topk_in_a_run_directory_and_the_api(tmp_path):
    """--algorithm sequential-topk as a run directory (its k stored as ``topk``; a second start
    takes everything from the store) and as ``SequentialTopK(k=...)`` of the API."""
    from codesign.api import CoSearchProblem, SequentialTopK, minimize
    from codesign.artifacts import WEIGHTS_DIR
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space_dict, name = read_space(None)
    ev_cfg = evaluator_config(space_dict, name, "macs", mapper_budget=100,
                              cost_predictor=WEIGHTS_DIR / "cost_predictor.npz")
    cfg = search_config(ev_cfg, algorithm="sequential-topk", budget=14, population=4, seed=3, topk=2)
    assert cfg["topk"] == 2 and "topk" not in search_config(ev_cfg, budget=14)
    res = start_search(tmp_path / "run", cfg)
    assert len(res.rows) == 14 and [s["stage"] for s in res.stages] in (["nas", "hw", "hw"], ["nas", "hw"])
    again = start_search(tmp_path / "run", cfg)
    assert again.evaluated == 0 and [r["key"] for r in again.front()] == [r["key"] for r in res.front()]
    with pytest.raises(SpecError, match="--topk"):
        search_config(ev_cfg, algorithm="sequential-topk", topk=0)
    problem = CoSearchProblem(accuracy="macs", cost="predicted", mapper_budget=100)
    r = minimize(problem, SequentialTopK(pop=4, k=2), budget=14, seed=3)
    assert r.config["topk"] == 2 and [x["genome"] for x in r.search.rows] == [x["genome"] for x in res.rows]
