"""Errors that name the offending field (and, once known, the file) in one line."""
from __future__ import annotations


class SpecError(ValueError):
    """Bad input: ``field`` is a dotted path inside the spec, ``file`` the file it came from."""

    def __init__(self, field: str, message: str, file: str | None = None):
        self.field = field
        self.message = message
        self.file = file
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.field}: {self.message}"

    def in_file(self, file: str) -> "SpecError":
        if self.file is None:
            self.file = str(file)
            self.args = (self.one_line(),)
        return self


class MappingError(SpecError):
    """A mapping that is not valid for its workload and architecture; says exactly why."""
