"""All Timeloop reference runs reproduced from their parsed-processed-input.yaml (+ map.yaml for
mapper cases) + ERT, by the batched model and by the literal re-enactment of Timeloop's nest
analysis (``accelerators.reference``): per-instance reads / fills / updates exact, cycles exact,
total energy within 1e-5 (relative), each level's energy within the rounding of the figures
Timeloop prints (two decimals per term) or 1e-5, whichever is larger."""
import pytest

from accelerators.model import evaluate
from accelerators.reference import reference_counts
from accelerators.timeloop import load_inputs
from accelerators.timeloop_stats import parse_stats
from conftest import TIMELOOP_REF, need_timeloop_reference

CASES = [
    "example_designs_eyeriss_like/ref_outputs/default_problem",
    "example_designs_simple_weight_stationary/ref_outputs/default_problem",
    "ispass2020_00-model-conv1d-1level/ref-output",
    "ispass2020_01-model-conv1d-2level/ref-output/os",
    "ispass2020_01-model-conv1d-2level/ref-output/ws",
    "ispass2020_02-model-conv1d+oc-2level/ref-output/no-tiling",
    "ispass2020_02-model-conv1d+oc-2level/ref-output/tiling",
    "ispass2020_03-model-conv1d+oc-3level/ref-output/bypass",
    "ispass2020_03-model-conv1d+oc-3level/ref-output/no-bypass",
    "ispass2020_04-model-conv1d+oc-3levelspatial/ref-output/cp",
    "ispass2020_04-model-conv1d+oc-3levelspatial/ref-output/kp",
]
ENERGY_REL = 1e-5


def _load(case):
    need_timeloop_reference()
    d = TIMELOOP_REF / "cases" / case
    files = [d / "parsed-processed-input.yaml"] + sorted(d.glob("*.ERT.yaml")) + sorted(d.glob("*.ART.yaml")) + sorted(d.glob("*.map.yaml"))
    arch, work, mapping = load_inputs([str(f) for f in files])
    ref = parse_stats(next(d.glob("*.stats.txt")).read_text())
    assert ref["levels"], "no counts parsed"
    return arch, work, mapping, ref


def test_all_public_cases_listed():
    need_timeloop_reference()
    found = {str(p.parent.relative_to(TIMELOOP_REF / "cases"))
             for p in (TIMELOOP_REF / "cases").glob("**/*.stats.txt")}
    assert found == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_model_reproduces_timeloop(case):
    arch, work, mapping, ref = _load(case)
    ev = evaluate(arch, work, mapping)
    ours = {lv.name: lv for lv in ev.levels}
    for lv in ref["levels"]:
        for ds, want in lv["dataspaces"].items():
            got = ours[lv["name"]].dataspaces.get(ds, {})
            got = {k: got.get(k, 0) for k in want}
            assert got == want, f"{lv['name']}.{ds}: got {got}, Timeloop {want}"
        assert ours[lv["name"]].instances == lv["instances"]
        tol = max(lv["energy_pj_tol"], ENERGY_REL * lv["energy_pj"])
        assert abs(ours[lv["name"]].energy_pj - lv["energy_pj"]) <= tol, lv["name"]
    assert ev.computes == ref["computes"]
    assert ev.cycles == ref["cycles"]
    assert ev.utilization == pytest.approx(ref["utilization"], abs=1e-4)   # printed as xx.xx%
    assert ref["energy_pj_tol"] < ENERGY_REL * ref["energy_pj"]              # the claim is testable
    assert abs(ev.energy_pj - ref["energy_pj"]) <= ENERGY_REL * ref["energy_pj"]


@pytest.mark.parametrize("case", CASES)
def test_literal_reenactment_reproduces_timeloop(case):
    """The yardstick of the property tests is itself held against Timeloop's output (with link
    transfers on, as Timeloop runs by default)."""
    arch, work, mapping, ref = _load(case)
    counts = reference_counts(arch, work, mapping)
    for lv in ref["levels"]:
        for ds, want in lv["dataspaces"].items():
            got = dict(zip(("reads", "fills", "updates"), counts.get((lv["name"], ds), (0, 0, 0))))
            assert got == want, f"{lv['name']}.{ds}: got {got}, Timeloop {want}"
    assert counts["_cycles"] == ref["cycles"]
