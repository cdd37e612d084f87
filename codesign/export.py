"""Deprecated import path (one release): now ``codesign.report.tables`` and ``codesign.report.design``."""
from codesign.report.design import *  # noqa: F401,F403
from codesign.report.tables import *  # noqa: F401,F403
from codesign.rundir.base import run_kind  # noqa: F401
