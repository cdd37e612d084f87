"""Input limits: every YAML the project reads, and the sizes a user can ask for (budgets, layer
repeats, grid sizes, workers). A value over a limit is refused with one line naming the file
and the field; ``--allow-large`` (or ``CODESIGN_ALLOW_LARGE=1``) lifts the size limits (not the
YAML ones, which guard against hostile files rather than large jobs).

YAML documents are read with a SafeLoader that refuses, before anything is built:

* a document over ``YAML_MAX_BYTES``;
* more than ``YAML_MAX_ALIASES`` aliases (``*name``), or a document whose aliases expand to more
  than ``YAML_MAX_NODES`` nodes (the "billion laughs" alias bomb: a few aliases, each naming a
  list of the previous one, expand exponentially once the data is walked or written out);
* nesting deeper than ``YAML_MAX_DEPTH``.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import SpecError

YAML_MAX_BYTES = 4 * 1024 * 1024
YAML_MAX_ALIASES = 100
YAML_MAX_DEPTH = 64
YAML_MAX_NODES = 200_000

# sizes a user can ask for; --allow-large lifts them
MAX = {
    "mapper_budget": 1_000_000,      # mapper evaluations per layer (evaluate, map, evaluate-network, search, cost-data)
    "search_budget": 100_000,        # candidate evaluations of one search
    "population": 10_000,
    "repeat": 100_000,               # a layer's repeat count in a network YAML
    "layers": 10_000,                # layers of one network YAML
    "grid": 100_000,                 # points of one sweep (--allow-large: 1,000,000)
    "axis": 10_000,                  # values of one space / sweep parameter ({min, max, step} or a list)
    "workers": 256,
    "samples": 1_000_000,            # accuracy-data --measurements, cost-data --genomes, proxies --subnets; sweep --limit
    "macs": 262_144,                 # MACs (PEs) of one architecture, e.g. 512 x 512 (a TPU v1 has 256 x 256)
}

_allow_large = os.environ.get("CODESIGN_ALLOW_LARGE", "") not in ("", "0")


def allow_large(on: bool = True) -> None:
    global _allow_large
    _allow_large = bool(on)


def large_allowed() -> bool:
    return _allow_large


def check_int(value, field: str, *, lo: int = 1, limit: str | None = None, file: str | None = None,
              hi: int | None = None) -> int:
    """``value`` as an int in [lo, MAX[limit]] (the upper bound is lifted by --allow-large) or
    a SpecError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, not {type(value).__name__} {value!r}"[:200], file)
    if value < lo:
        raise SpecError(field, f"must be >= {lo}, not {value}", file)
    top = hi if hi is not None else MAX.get(limit) if limit else None
    if top is not None and value > top and (hi is not None or not _allow_large):
        more = "" if hi is not None else " (--allow-large or CODESIGN_ALLOW_LARGE=1 lifts the limit)"
        raise SpecError(field, f"{value} is over the limit of {top:,}{more}", file)
    return value


# ----------------------------------------------------------------------------- YAML

class LimitedLoader(yaml.SafeLoader):
    """SafeLoader with an alias count, an alias-expansion bound and a nesting depth."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > YAML_MAX_ALIASES:
                ev = self.peek_event()
                raise _Limit(f"more than {YAML_MAX_ALIASES} aliases", ev.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                raise _Limit(f"nested deeper than {YAML_MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and self._aliases:
            _check_expansion(node)
        return node


class _Limit(yaml.YAMLError):
    def __init__(self, problem, mark=None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _check_expansion(root) -> None:
    """The number of nodes the document has once every alias is expanded (shared nodes counted
    at each use), memoized per node so that the check itself stays linear."""
    memo: dict[int, int] = {}

    def size(node) -> int:
        got = memo.get(id(node))
        if got is not None:
            return got
        memo[id(node)] = 1                  # a recursive structure counts once
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        n = min(n, YAML_MAX_NODES + 1)
        memo[id(node)] = n
        return n

    if size(root) > YAML_MAX_NODES:
        raise _Limit(f"aliases expand to more than {YAML_MAX_NODES:,} nodes (an alias bomb?)", root.start_mark)


def load_yaml_text(text: str, file: str | None = None, loader=LimitedLoader):
    """Parse one YAML document with the limits; errors are a SpecError naming ``file`` and line."""
    if len(text) > YAML_MAX_BYTES:
        raise SpecError("yaml", f"document of {len(text):,} characters is over the limit of {YAML_MAX_BYTES:,}", file)
    try:
        ld = loader(text)
        try:
            return ld.get_single_data()
        finally:
            ld.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "yaml"
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(where, f"malformed YAML: {' '.join(str(problem).split())}"[:300], file) from None
    except RecursionError:
        raise SpecError("yaml", f"nested deeper than {YAML_MAX_DEPTH} levels", file) from None


def read_text(path, what: str = "file") -> str:
    """A text file, at most YAML_MAX_BYTES; a missing, unreadable or binary file is a SpecError."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise SpecError(what, "is a directory, not a file", str(p))
        if size > YAML_MAX_BYTES:
            raise SpecError(what, f"{size:,} bytes is over the limit of {YAML_MAX_BYTES:,}", str(p))
        return p.read_text()
    except FileNotFoundError:
        raise SpecError(what, "no such file", str(p)) from None
    except UnicodeDecodeError:
        raise SpecError(what, "not a text (UTF-8) file", str(p)) from None
    except OSError as e:
        raise SpecError(what, e.strerror or str(e), str(p)) from None


def load_yaml_file(path, loader=LimitedLoader):
    return load_yaml_text(read_text(path, "yaml"), str(path), loader)
