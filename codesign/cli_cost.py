"""Deprecated import path (one release): the module is now ``codesign.cli.cost``."""
import sys, codesign.cli.cost as _m  # noqa: E401
if __name__ == "__main__":      # python3 -m codesign.cli_cost ... (now python3 -m codesign.cli.cost ...)
    sys.exit(_m.main())
sys.modules[__name__] = _m
