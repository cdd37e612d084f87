"""Deprecated import path (one release): the module is now ``codesign.space.layers``."""
import sys, codesign.space.layers as _m; sys.modules[__name__] = _m  # noqa: E401
