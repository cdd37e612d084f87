"""Deprecated import path (one release): the module is now ``codesign.search.algorithms``."""
import sys, codesign.search.algorithms as _m; sys.modules[__name__] = _m  # noqa: E401
