"""Deprecated import path (one release): the module is now ``codesign.nn.proxies``."""
import sys, codesign.nn.proxies as _m; sys.modules[__name__] = _m  # noqa: E401
