"""Deprecated import path (one release): the module is now ``codesign.predictors.cost``."""
import sys, codesign.predictors.cost as _m; sys.modules[__name__] = _m  # noqa: E401
