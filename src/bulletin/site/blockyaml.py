"""The block YAML that curation tools write, read line by line: several times faster than
libyaml's parser, whose events and nodes cost more than the text they describe.

`read_block_yaml` understands a strict subset: block mappings and sequences indented with
spaces, keys that are plain words, one-line plain, single- and double-quoted (no escapes)
values, empty lists and mappings ([] and {}), and folded or literal blocks of equally
indented lines. For anything else (a comment, a tab, a flow list, an anchor, a tag, a
repeated key, a value over several lines, any mistake) it returns None and the caller parses
the text with libyaml, so every value and every error message stays libyaml's. What it does
accept, it reads exactly as libyaml with the plain resolver does: tests/test_blockyaml.py
checks that on every item the tests know, a corpus of 2,000 and thousands of mutated ones.

_blockyaml.c is the same reader compiled, built when `pip install` finds a C compiler: it
reads a seed-shaped item's front matter about five times faster. This module is its
reference, and the reader wherever it was not built; the tests read everything both ways.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .fields import Fields

_compiled: Callable[[str, int, type[Fields]], Fields | None] | None
try:
    from ._blockyaml import read as _compiled
except ImportError:  # built without a C compiler: the same rules, read in Python
    _compiled = None

# What may need libyaml to read right: a character outside YAML's printable set or one it
# takes as a line break (NEL, LS, PS), a tab, a BOM; and '#', which may start a comment.
_ASCII_STRAY = bytes(c for c in range(32) if c != 10) + b"\x7f#"
# Written as what is out rather than what is in (YAML's printable set, '#' and LF apart),
# which compiles in a tenth of a millisecond instead of 3.
_STRAY = re.compile("[\x00-\x09\x0b-\x1f#\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# Characters that make a plain value mean something else when they come first.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# What a value may start with to be other than plain text: an indicator or a quote.
_SPECIAL = _INDICATORS | frozenset("'\"")
_NULLS = frozenset(("~", "null", "Null", "NULL"))
# A block's header: how its lines are joined, and what ends it.
_BLOCKS = {">-": (" ", ""), ">": (" ", "\n"), "|-": ("\n", ""), "|": ("\n", "\n")}
_DEPTH = 40


class _Stray(Exception):
    """The text leaves the subset: libyaml must read it."""


def read_block_yaml(text: str, first_line: int) -> Fields | None:
    """The mapping `text` holds, as `frontmatter.parse_front_matter` returns it, its first
    line numbered `first_line`; None when the text is not in the subset."""
    # Without a final line break a '|' or '>' block ends differently (libyaml keeps no break);
    # front matter always has one, before its closing '---'.
    if not text.endswith("\n") or _has_stray(text):
        return None
    if _compiled is not None and abs(first_line) < 2**62:  # what a line number is, in C
        return _compiled(text, first_line, Fields)
    return read_in_python(text, first_line)


def read_in_python(text: str, first_line: int) -> Fields | None:
    """read_block_yaml without the compiled reader, for a text that ends with a line break
    and holds no stray character: the reference the compiled one is tested against."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    numbers = None  # each kept line's index in `lines`, when blank lines were dropped
    if "" in lines:
        numbers = [n for n, line in enumerate(lines) if line]
        lines = [lines[n] for n in numbers]
    if not lines:
        return None
    try:
        return _read(lines, numbers, first_line)
    except _Stray:
        return None


def _has_stray(text: str) -> bool:
    if text.isascii():
        raw = text.encode()
        if len(raw.translate(None, _ASCII_STRAY)) == len(raw):
            return False
    at = 0
    while (found := _STRAY.search(text, at)) is not None:
        at = found.start()
        if text[at] != "#" or at == 0 or text[at - 1] in " \n":
            return True  # a control character, or '#' where it starts a comment
        at += 1
    return False


# A line, split as the reader needs it: indentation, '- ' (or a lone '-'), a key and ':',
# and the rest. One pass over the text makes every line's parts at once.
_LINE = re.compile(r"^( *)(- |-$)?(?:([A-Za-z_][A-Za-z0-9_.-]{0,200}):(?: +|$))?(.*)$", re.MULTILINE)


def _read(lines: list[str], numbers: list[int] | None, first_line: int) -> Fields:
    """The lines, none blank, as nested Fields and lists; _Stray outside the subset."""
    root = Fields()
    columns: list[int] = [0]  # the open mappings' and sequences' columns, outermost first
    open_: list[Fields | list[object]] = [root]
    pending: tuple[Fields, str, int] | None = None  # a 'key:' whose value is on the next lines
    parts = _LINE.findall("\n".join(lines))
    count = len(lines)
    at = 0
    while at < count:
        indent, dash, key, value_text = parts[at]
        column = len(indent)
        if pending is not None:
            fields, pending_key, key_column = pending
            pending = None
            if column > key_column or (column == key_column and dash):
                opened: Fields | list[object] = [] if dash else Fields()
                fields[pending_key] = opened
                columns.append(column)
                open_.append(opened)
        if columns[-1] == column and (dash or type(open_[-1]) is not list) and len(columns) <= _DEPTH:
            container = open_[-1]  # the common case: the next line of the same mapping or list
        else:
            container = _container(columns, open_, column, bool(dash))
        if type(container) is list:
            if not key:
                if not value_text or value_text[0] in " >|":
                    raise _Stray  # '-' alone, or a block under a dash
                container.append(_scalar(value_text))
                at += 1
                continue
            container.append(fields := Fields())  # '- key: value' opens a mapping
            column += 2
            columns.append(column)
            open_.append(fields)
        elif dash or not key:
            raise _Stray  # a '- ' where a key belongs, a quoted or odd key, no ': ', only spaces
        else:
            fields = container  # type: ignore[assignment]
        line_number = (at if numbers is None else numbers[at]) + first_line
        at += 1
        # Written out, not called: most lines are a key and a plain value, and a call or
        # two for each of an item's hundred-odd lines cost a twentieth of the reading.
        folded = key.lower()
        if folded in fields:
            raise _Stray  # libyaml's path says which key repeats which
        value: object
        if not value_text:  # None, unless lines indented under it follow
            value = None
            pending = (fields, folded, column)
        elif value_text[0] not in _SPECIAL and ": " not in value_text and value_text[-1] not in ": ":
            value = None if value_text in _NULLS else value_text  # _scalar's plain case
        elif value_text in _BLOCKS:
            value, at = _block(lines, numbers, at, column, *_BLOCKS[value_text])
        else:
            value = _scalar(value_text)
        fields[folded] = value
        fields.lines[folded] = line_number
        fields.names[folded] = key
    return root


def _container(
    columns: list[int], open_: list[Fields | list[object]], column: int, dash: bool
) -> Fields | list[object]:
    """The open mapping or sequence a line at `column` belongs to, once the deeper ones close."""
    if len(columns) > _DEPTH:
        raise _Stray  # libyaml's path says it is nested too deeply
    while columns[-1] > column:
        columns.pop()
        open_.pop()
    if columns[-1] != column:
        raise _Stray  # indented under a value, or between two columns
    if type(open_[-1]) is list and not dash:
        if len(columns) < 2 or columns[-2] != column:
            raise _Stray
        columns.pop()  # the end of a sequence at its key's column
        open_.pop()
    return open_[-1]


def _scalar(value: str) -> object:
    """A value written on one line after 'key: ' or '- '."""
    first = value[0]
    if first == "'":
        inner = value[1:-1]
        if len(value) < 2 or value[-1] != "'" or "'" in inner.replace("''", ""):
            raise _Stray  # over several lines, or text after the closing quote
        return inner.replace("''", "'")
    if first == '"':
        inner = value[1:-1]
        if len(value) < 2 or value[-1] != '"' or '"' in inner or "\\" in inner:
            raise _Stray
        return inner
    if first in _INDICATORS:
        if value == "[]":
            return []
        if value == "{}":
            return Fields()
        raise _Stray
    if ": " in value or value[-1] in ": ":
        raise _Stray  # a second key, or trailing spaces (libyaml drops them)
    return None if value in _NULLS else value


def _block(
    lines: list[str], numbers: list[int] | None, at: int, column: int, joint: str, end: str
) -> tuple[str, int]:
    """A '>' or '|' block's text under a key at `column`, and the index of the line after
    it: equally indented lines, none blank or ending in a space."""
    if at >= len(lines):
        raise _Stray
    first = lines[at]
    indent = len(first) - len(first.lstrip(" "))
    if indent <= column:
        raise _Stray  # an empty block
    prefix = " " * indent
    start = at
    while at < len(lines):
        line = lines[at]
        if not line.startswith(prefix):
            break
        if len(line) == indent or line[indent] == " " or line[-1] == " ":
            raise _Stray  # more indented lines keep their breaks, trailing spaces their own rules
        at += 1
    # Blank lines before, inside or after a block are the block's, by rules left to libyaml.
    if numbers is not None and (at == len(numbers) or numbers[at] - numbers[start - 1] != at - start + 1):
        raise _Stray
    return joint.join(line[indent:] for line in lines[start:at]) + end, at
