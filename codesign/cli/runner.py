"""Running a ``codesign`` parser: bad input ends in one line naming the file and the field and
exit status 2, never a traceback. Shared by ``codesign.cli`` and the modules that also run
their own subcommands on their own (``python3 -m codesign.cli.sweep``, ``codesign.cli.cost``).

Every command line first goes through :func:`codesign.cli.inputs.check_args` (the input layer),
then the command runs; an error it raises on the way is one line too: a SpecError as it is, an
OSError with its file (both exit 2), anything else as its type and first line, called an
internal error, with exit status 1 (a bug, or an input check that is missing, must not pass for
a user's mistake). ``CODESIGN_DEBUG=1`` shows the traceback instead."""
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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default: ``(default: X)`` after the help text of an option
    whose default is not None (flags, whose default is False, and hidden aliases excepted)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or isinstance(default, bool) or not action.option_strings
                or "%(default)" in text):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and whose ``--help`` shows the defaults
    (:class:`HelpFormatter`; its subcommands' parsers are Parsers too)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.required_renamed = []        # (dest, new spelling): required options that have an old spelling

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        missing = [new for dest, new in self.required_renamed if getattr(ns, dest, None) is None]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        return ns, rest

    def format_usage(self):
        return self._with_required(super().format_usage)

    def format_help(self):
        return self._with_required(super().format_help)

    def _with_required(self, fmt):
        """Usage shows a required renamed option as required (argparse itself knows it as optional)."""
        actions = [a for a in self._actions if any(a.dest == d and n in a.option_strings
                                                   for d, n in self.required_renamed)]
        for a in actions:
            a.required = True
        try:
            return fmt()
        finally:
            for a in actions:
                a.required = False

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {' '.join(str(message).split())} (see {self.prog} --help)\n")


class _RenamedOption(argparse.Action):
    """A hidden old spelling of an option: stores into the new option's dest, and says once on
    standard error what the option is called now."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is now {self.new} (the old spelling is kept for one release)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(p: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` (hidden from ``--help``) as the earlier spelling of ``p``'s option ``new``: the
    same destination, type and number of values (issue #21 renamed options; kept one release)."""
    target = next(a for a in p._actions if new in a.option_strings)
    if target.required and isinstance(p, Parser):    # either spelling satisfies it (Parser.parse_known_args)
        target.required = False
        p.required_renamed.append((target.dest, new))
    p.add_argument(old, dest=target.dest, action=_RenamedOption, new=new, type=target.type, nargs=target.nargs,
                   choices=target.choices, help=argparse.SUPPRESS)


def _quiet_broken_pipe() -> int:
    """The reader of standard output went away (``codesign ... | head``): stop quietly, as a
    program killed by SIGPIPE would (exit status 141), with no message and nothing flushed."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


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
        code = args.func(args)
        sys.stdout.flush()                               # a closed pipe is found here, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
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
        # not an input error that was recognised as one: a bug (or an input check that is
        # missing), so exit status 1, not bad input's 2, with a hint to get the traceback
        if debug:
            raise
        print(f"error: {type(e).__name__}: {_first_line(e) or 'failed'} (an internal error, not a recognised "
              "input error: CODESIGN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def subcommand_parser(add) -> argparse.ArgumentParser:
    """A ``codesign`` parser with only the subcommands ``add(subparsers)`` registers."""
    p = Parser(prog="codesign", description="Hardware-neural co-design simulator")
    sub = p.add_subparsers(dest="command", required=True)
    add(sub)
    add_allow_large(sub)
    return p
