"""Running a ``codesign`` parser: bad input ends in one line naming the file and the field and
exit status 2, never a traceback. Shared by ``codesign.cli`` and the modules that also run
their own subcommands on their own (``python3 -m codesign.cli.sweep``, ``codesign.cli.cost``).

Every command line first goes through :func:`codesign.cli.inputs.check_args` (the input layer),
then the command runs; an error it raises on the way is one line too: a SpecError as it is, an
OSError with its file, anything else (a data file no reader anticipated) as its type and first
line. ``CODESIGN_DEBUG=1`` shows the traceback instead."""
from __future__ import annotations

import argparse
import os
import sys

from accelerators.errors import SpecError

# commands with sizes that accelerators.limits bounds: they take --allow-large
LARGE_COMMANDS = ("evaluate", "map", "evaluate-network", "search", "sweep", "cost-data", "accuracy-data", "proxies")
_ALLOW_LARGE_HELP = ("lift the size limits on budgets, layer repeats, grid sizes, workers and sample counts "
                     "(also CODESIGN_ALLOW_LARGE=1)")


def add_allow_large(sub) -> None:
    """``--allow-large`` on the commands of LARGE_COMMANDS that ``sub`` holds."""
    for name, p in getattr(sub, "choices", {}).items():
        if name in LARGE_COMMANDS:
            p.add_argument("--allow-large", action="store_true", help=_ALLOW_LARGE_HELP)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (its --help is argparse's own)."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {' '.join(str(message).split())} (see {self.prog} --help)\n")


def _first_line(e: BaseException) -> str:
    text = " ".join(next((l for l in str(e).splitlines() if l.strip()), "").split())
    return text[:300]


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    args = parser.parse_args(argv)
    debug = os.environ.get("CODESIGN_DEBUG", "") not in ("", "0")
    try:
        from accelerators.limits import allow_large
        allow_large(bool(getattr(args, "allow_large", False))
                    or os.environ.get("CODESIGN_ALLOW_LARGE", "") not in ("", "0"))
        from codesign.cli.inputs import check_args
        check_args(args)
        return args.func(args)
    except SpecError as e:
        if debug:
            raise
        print(f"error: {e.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, UnicodeDecodeError) as e:
        if debug:
            raise
        if isinstance(e, OSError):
            where = getattr(e, "filename", None) or ""
            what = e.strerror or _first_line(e) or type(e).__name__
        else:
            where, what = "", f"not UTF-8 text ({_first_line(e)})"
        print(f"error: {where}{': ' if where else ''}{what}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError) as e:
        if debug:
            raise
        print(f"error: input too deep or too large ({type(e).__name__})", file=sys.stderr)
        return 2
    except Exception as e:                                   # noqa: BLE001 -- never a traceback
        if debug:
            raise
        print(f"error: {type(e).__name__}: {_first_line(e) or 'failed'} (CODESIGN_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2


def subcommand_parser(add) -> argparse.ArgumentParser:
    """A ``codesign`` parser with only the subcommands ``add(subparsers)`` registers."""
    p = Parser(prog="codesign", description="Hardware-neural co-design simulator")
    sub = p.add_subparsers(dest="command", required=True)
    add(sub)
    add_allow_large(sub)
    return p
