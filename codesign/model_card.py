"""Deprecated import path (one release): the module is now ``codesign.nn.model_card``."""
import sys, codesign.nn.model_card as _m; sys.modules[__name__] = _m  # noqa: E401
