"""What a run tells the person running it: problems found, notes, and how far long work got."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Protocol

Level = Literal["error", "warning"]

# Control characters (C0, C1, line and paragraph separators) and bidirectional controls: in a
# terminal or a mail client they can rewrite what is shown (a file named with ESC ] 0; sets
# the terminal's title, one with a line break splits its problem in two).
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(value: str) -> str:
    """`value` for a terminal: each control character written as its escape (`\\x1b`)."""
    return CONTROLS.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), value)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One finding about one file: where it is, how bad it is and what to do."""

    path: str
    line: int | None
    level: Level
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return printable(f"{where}: {self.level}: {self.message}")


def counted(count: int, noun: str) -> str:
    """`1 item`, `2 items`, `1,204 files`: a count and its noun, in the singular for one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass
class Report:
    """Problems and counts gathered by one run; errors mean something was skipped."""

    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def error(self, path: str, line: int | None, message: str) -> None:
        """Record a problem that made bulletin skip something."""
        self.problems.append(Problem(path, line, "error", message))

    def warning(self, path: str, line: int | None, message: str) -> None:
        """Record a problem that bulletin worked around."""
        self.problems.append(Problem(path, line, "warning", message))

    def extend(self, problems: list[Problem]) -> None:
        """Add problems found earlier (for example, kept in the parse cache)."""
        self.problems.extend(problems)

    def note(self, message: str) -> None:
        """Record a detail shown under -v (scheduled items held back, clamped dates)."""
        self.notes.append(message)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def sorted(self) -> list[Problem]:
        """Problems in a stable order: by file, then line."""
        return sorted(self.problems, key=lambda p: (p.path, p.line or 0, p.level, p.message))


class Progress(Protocol):
    """Where long work reports how far it got (the command line draws a bar on a terminal)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Progress that shows nothing: the default when no one is watching."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
