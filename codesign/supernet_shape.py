"""Deprecated import path (one release): the module is now ``codesign.nn.shape``."""
import sys, codesign.nn.shape as _m; sys.modules[__name__] = _m  # noqa: E401
