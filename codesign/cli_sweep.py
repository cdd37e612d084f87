"""Deprecated import path (one release): the module is now ``codesign.cli.sweep``."""
import sys, codesign.cli.sweep as _m  # noqa: E401
if __name__ == "__main__":      # python3 -m codesign.cli_sweep ... (now python3 -m codesign.cli.sweep ...)
    sys.exit(_m.main())
sys.modules[__name__] = _m
