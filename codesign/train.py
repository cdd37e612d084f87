"""Deprecated import path (one release): the module is now ``codesign.nn.train``."""
import sys, codesign.nn.train as _m; sys.modules[__name__] = _m  # noqa: E401
