"""Deprecated import path (one release): the module is now ``codesign.nn.quant_ranges``."""
import sys, codesign.nn.quant_ranges as _m; sys.modules[__name__] = _m  # noqa: E401
