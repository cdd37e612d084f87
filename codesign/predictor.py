"""Deprecated import path (one release): the module is now ``codesign.predictors.accuracy``."""
import sys, codesign.predictors.accuracy as _m; sys.modules[__name__] = _m  # noqa: E401
