"""Deprecated import path (one release): now ``codesign.space.sweep`` (the sweep file) and
``codesign.rundir.sweep`` (the run)."""
from codesign.rundir.sweep import *  # noqa: F401,F403
from codesign.space.sweep import *  # noqa: F401,F403
