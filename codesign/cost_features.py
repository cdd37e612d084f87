"""Deprecated import path (one release): the module is now ``codesign.predictors.features``."""
import sys, codesign.predictors.features as _m; sys.modules[__name__] = _m  # noqa: E401
