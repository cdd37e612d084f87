"""Deprecated import path (one release): the module is now ``codesign.cli.sweep``."""
import sys, codesign.cli.sweep as _m; sys.modules[__name__] = _m  # noqa: E401
