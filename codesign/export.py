"""Deprecated import path (one release): the module is now ``codesign.report.export``."""
import sys, codesign.report.export as _m; sys.modules[__name__] = _m  # noqa: E401
