"""Deprecated import path (one release): the module is now ``codesign.nn.transforms``."""
import sys, codesign.nn.transforms as _m; sys.modules[__name__] = _m  # noqa: E401
