"""All Timeloop reference runs reproduced from their parsed-processed-input.yaml (+ map.yaml for
mapper cases) + ERT: per-instance reads/fills/updates exact, cycles exact, energy within 1%."""
import pytest

from accelerators.model import evaluate
from accelerators.timeloop import load_inputs
from accelerators.timeloop_stats import parse_stats
from conftest import TIMELOOP_REF, need_timeloop_reference

CASES = [
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


@pytest.mark.parametrize("case", CASES)
def test_reference_case(case):
    need_timeloop_reference()
    d = TIMELOOP_REF / "cases" / case
    files = [d / "parsed-processed-input.yaml"] + sorted(d.glob("*.ERT.yaml")) + sorted(d.glob("*.ART.yaml")) + sorted(d.glob("*.map.yaml"))
    arch, work, mapping = load_inputs([str(f) for f in files])
    ev = evaluate(arch, work, mapping)
    ref = parse_stats(next(d.glob("*.stats.txt")).read_text())
    assert ref["levels"], "no counts parsed"
    ours = {lv.name: lv for lv in ev.levels}
    for lv in ref["levels"]:
        for ds, want in lv["dataspaces"].items():
            got = ours[lv["name"]].dataspaces.get(ds, {})
            got = {k: got.get(k, 0) for k in want}
            assert got == want, f"{lv['name']}.{ds}: got {got}, Timeloop {want}"
        assert ours[lv["name"]].instances == lv["instances"]
        assert ours[lv["name"]].energy_pj == pytest.approx(lv["energy_pj"], rel=0.01, abs=0.01)
    assert ev.computes == ref["computes"]
    assert ev.cycles == ref["cycles"]
    assert ev.utilization == pytest.approx(ref["utilization"], abs=1e-4)
    assert ev.energy_pj == pytest.approx(ref["energy_pj"], rel=0.01)
