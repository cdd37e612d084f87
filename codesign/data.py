"""Deprecated import path (one release): the module is now ``codesign.nn.data``."""
import sys, codesign.nn.data as _m; sys.modules[__name__] = _m  # noqa: E401
