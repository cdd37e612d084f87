"""Deprecated import path (one release): the module is now ``codesign.rundir.sweep``."""
import sys, codesign.rundir.sweep as _m; sys.modules[__name__] = _m  # noqa: E401
