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
