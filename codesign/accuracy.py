"""Deprecated import path (one release): the module is now ``codesign.nn.measure``."""
import sys, codesign.nn.measure as _m; sys.modules[__name__] = _m  # noqa: E401
