"""Deprecated import path (one release): the module is now ``codesign.search.executors``."""
import sys, codesign.search.executors as _m; sys.modules[__name__] = _m  # noqa: E401
