"""Deprecated import path (one release): the module is now ``codesign.rundir.search``."""
import sys, codesign.rundir.search as _m; sys.modules[__name__] = _m  # noqa: E401
