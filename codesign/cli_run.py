"""Deprecated import path (one release): the module is now ``codesign.cli.runner``."""
import sys, codesign.cli.runner as _m; sys.modules[__name__] = _m  # noqa: E401
