"""Deprecated import path (one release): the module is now ``codesign.cli.cost``."""
import sys, codesign.cli.cost as _m; sys.modules[__name__] = _m  # noqa: E401
