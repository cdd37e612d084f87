"""Deprecated import path (one release): the module is now ``codesign.nn.quant``."""
import sys, codesign.nn.quant as _m; sys.modules[__name__] = _m  # noqa: E401
