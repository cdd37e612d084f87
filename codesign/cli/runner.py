"""Running a ``codesign`` parser: bad input ends in one line naming the file and the field and
exit status 2, never a traceback. Shared by ``codesign.cli`` and the modules that also run
their own subcommands on their own (``python3 -m codesign.cli.sweep``, ``codesign.cli.cost``)."""
from __future__ import annotations

import argparse
import sys

from accelerators.errors import SpecError


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: {getattr(e, 'filename', '') or ''}: {e.strerror if isinstance(e, OSError) else e}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def subcommand_parser(add) -> argparse.ArgumentParser:
    """A ``codesign`` parser with only the subcommands ``add(subparsers)`` registers."""
    p = argparse.ArgumentParser(prog="codesign", description="Hardware-neural co-design simulator")
    add(p.add_subparsers(dest="command", required=True))
    return p
