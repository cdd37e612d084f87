"""Deprecated import path (one release): the module is now ``codesign.predictors.cost_data``."""
import sys, codesign.predictors.cost_data as _m; sys.modules[__name__] = _m  # noqa: E401
