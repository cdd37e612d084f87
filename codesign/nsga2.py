"""Deprecated import path (one release): the module is now ``codesign.search.nsga2``."""
import sys, codesign.search.nsga2 as _m; sys.modules[__name__] = _m  # noqa: E401
