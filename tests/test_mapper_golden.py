"""The mapper finds exactly the mappings it found before the 2026-12-03 speed-ups (lockstep
mapspace operations, cached sampling distributions, the shared ``links.choose`` memo): every
distinct layer of four seeded default-space candidates, mapped at the co-search's budget, has
the EDP, evaluation count and mapping recorded in ``tests/data/mapper_golden.json`` (made by
``tests/data/make_mapper_golden.py`` at commit adbcd6a; see there when it may be regenerated)."""
import json
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_mapper_golden import results  # noqa: E402

from codesign.space.joint import load_space  # noqa: E402


def test_mapper_finds_the_recorded_mappings():
    golden = json.loads((DATA / "mapper_golden.json").read_text())
    space = load_space()
    n = 0
    for case in golden:
        got = results(space, case["genome"])
        assert [g["name"] for g in got] == [w["name"] for w in case["layers"]]
        for g, w in zip(got, case["layers"]):
            assert g == w, (case["genome"]["hw"], w["name"])
            n += 1
    assert n > 100
