"""Deprecated import path (one release): the module is now ``codesign.nn.supernet``."""
import sys, codesign.nn.supernet as _m; sys.modules[__name__] = _m  # noqa: E401
