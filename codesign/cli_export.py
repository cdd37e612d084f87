"""Deprecated import path (one release): the module is now ``codesign.cli.export``."""
import sys, codesign.cli.export as _m; sys.modules[__name__] = _m  # noqa: E401
