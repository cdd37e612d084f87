"""Deprecated import path (one release): the module is now ``codesign.report.plots``."""
import sys, codesign.report.plots as _m; sys.modules[__name__] = _m  # noqa: E401
