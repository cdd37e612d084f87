import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CODESIGN_SHARED", REPO.parent / "shared"))
TIMELOOP_REF = SHARED / "reference" / "timeloop"


def need_timeloop_reference():
    if not (TIMELOOP_REF / "cases").is_dir():
        pytest.skip(f"Timeloop reference cases not found at {TIMELOOP_REF} "
                    "(set CODESIGN_SHARED to the folder holding reference/timeloop)")
    return TIMELOOP_REF


_current_file = [None]


def pytest_runtest_logstart(nodeid, location):
    """Under -q pytest prints dots only: name each test file as its first test starts, so a
    long run shows where it is (``tests/test_x.py ....``)."""
    f = nodeid.split("::")[0]
    if f == _current_file[0]:
        return
    _current_file[0] = f
    tr = _CONFIG[0].pluginmanager.getplugin("terminalreporter") if _CONFIG[0] else None
    if tr is not None and tr.verbosity < 0:
        tr.write_fspath_result(nodeid, "")       # a new line: "tests/test_x.py " (as at verbosity 0)


_CONFIG = [None]


def pytest_configure(config):
    _CONFIG[0] = config
