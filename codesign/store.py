"""Deprecated import path (one release): the module is now ``codesign.rundir.store``."""
import sys, codesign.rundir.store as _m; sys.modules[__name__] = _m  # noqa: E401
