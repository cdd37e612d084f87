"""All Timeloop reference runs reproduced from their parsed-processed-input.yaml (+ map.yaml for
mapper cases) + ERT: per-instance reads/fills/updates exact, cycles exact, energy within 1%."""
import re
from pathlib import Path

import pytest

from accelerators.model import evaluate
from accelerators.timeloop import load_inputs
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


def parse_stats(path: Path):
    """Per level and data space (reads, fills, updates), cycles and total energy (pJ)."""
    txt = path.read_text()
    counts = {}
    parts = re.split(r"\n=== (\w+) ===\n", txt)
    for name, body in zip(parts[1::2], parts[2::2]):
        for ds in ("Weights", "Inputs", "Outputs"):
            m = re.search(rf"\n    {ds}:\n(.*?)(?=\n    \w+:\n|\n\w|\Z)", body, re.S)
            if m:
                get = lambda k: int(re.search(rf"Scalar {k} \(per-instance\)\s*: (\d+)", m.group(1)).group(1))
                counts[(name, ds)] = (get("reads"), get("fills"), get("updates"))
    cycles = int(re.search(r"\nCycles: (\d+)", txt).group(1))
    computes = int(re.search(r"Computes = (\d+)", txt).group(1))
    fj = float(re.search(r"\n    Total\s+= ([\d.]+)", txt).group(1))
    return counts, cycles, fj * computes / 1000.0, computes


@pytest.mark.parametrize("case", CASES)
def test_reference_case(case):
    need_timeloop_reference()
    d = TIMELOOP_REF / "cases" / case
    files = [d / "parsed-processed-input.yaml"] + sorted(d.glob("*.ERT.yaml")) + sorted(d.glob("*.ART.yaml")) + sorted(d.glob("*.map.yaml"))
    arch, work, mapping = load_inputs([str(f) for f in files])
    ev = evaluate(arch, work, mapping)
    counts, cycles, energy_pj, computes = parse_stats(next(d.glob("*.stats.txt")))
    assert counts, "no counts parsed"
    got = {}
    for lv in ev.levels:
        for ds, c in lv.dataspaces.items():
            got[(lv.name, ds)] = (c["reads"], c["fills"], c["updates"])
    for key, want in counts.items():
        assert got.get(key, (0, 0, 0)) == want, f"{key}: got {got.get(key)}, Timeloop {want}"
    assert ev.computes == computes
    assert ev.cycles == cycles
    assert ev.energy_pj == pytest.approx(energy_pj, rel=0.01)
