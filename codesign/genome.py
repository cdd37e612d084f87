"""Deprecated import path (one release): the module is now ``codesign.space.genome``."""
import sys, codesign.space.genome as _m; sys.modules[__name__] = _m  # noqa: E401
