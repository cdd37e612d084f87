"""Deprecated import path (one release): the module is now ``codesign.search.problem``."""
import sys, codesign.search.problem as _m; sys.modules[__name__] = _m  # noqa: E401
