"""Looking fields up in front matter: dotted names, case-insensitive, first non-empty value."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from ..dates import date_fix, parse_date
from ..errors import ItemError
from ..text import one_line

_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))


class Fields(dict[str, Any]):
    """A YAML mapping with lower-cased keys, remembering each key's spelling and line."""

    __slots__ = ("lines", "names")

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}
        self.names: dict[str, str] = {}


class Found(NamedTuple):
    """A field's value, the dotted name as the author spelled it, and its line. (A named
    tuple: an item's twenty-odd lookups made frozen dataclasses a tenth of its parse.)"""

    name: str
    value: Any
    line: int | None

    def within(self, sub: Found) -> Found:
        """A field found inside this mapping, named from here (featuredImage.href)."""
        return Found(f"{self.name}.{sub.name}", sub.value, sub.line)


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


def lookup(fields: Fields, dotted: str) -> Found | None:
    """The field at `dotted` (keys compared case-insensitively), None when absent or empty."""
    parts = _PARTS.get(dotted) or _PARTS.setdefault(dotted, tuple(dotted.lower().split(".")))
    node: Any = fields
    spelled: list[str] = []  # the name as the author spelled it
    line = None
    for part in parts:
        if not isinstance(node, Fields) or part not in node:  # both readers make every mapping Fields
            return None
        spelled.append(node.names[part])
        line = node.lines[part]
        node = node[part]
    if _empty(node):
        return None
    return Found(".".join(spelled), node, line)


_PARTS: dict[str, tuple[str, ...]] = {}  # a dotted name's lower-cased parts


def first(fields: Fields, *names: str) -> Found | None:
    """The first of `names` with a non-empty value."""
    for name in names:
        found = lookup(fields, name)
        if found is not None:
            return found
    return None


def kind(value: Any) -> str:
    """What a YAML value is, in words."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "text"


def text(found: Found, fix: str = "write it as one line of text") -> str:
    """The value as one line of text; ItemError when it is a list or mapping."""
    if not isinstance(found.value, str):
        raise ItemError(found.line, f"{found.name} is {kind(found.value)}; {fix}")
    return one_line(found.value)


def texts(found: Found, fix: str) -> list[str | None]:
    """A string or a list of strings, as a list; empty entries kept as None (for pairing)."""
    values = found.value if isinstance(found.value, list) else [found.value]
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif isinstance(value, str):
            out.append(one_line(value) or None)
        else:
            raise ItemError(found.line, f"{found.name} contains {kind(value)}; {fix}")
    return out


def flag(found: Found | None) -> bool:
    """A yes/no field; absent is no."""
    if found is None:
        return False
    value = text(found, "write true or false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ItemError(found.line, f"{found.name} '{found.value}' is not true or false; write true or false")


def date_of(found: Found, tz: ZoneInfo) -> datetime:
    """A date field, naive values in `tz`; ItemError naming the accepted forms."""
    value = text(found, "write YYYY-MM-DD or an ISO 8601 date-time")
    parsed = parse_date(value, tz)
    if parsed is None:
        raise ItemError(found.line, f"{found.name} '{value}' {date_fix(value)}")
    if parsed.year < EARLIEST_YEAR:
        raise ItemError(
            found.line, f"{found.name} '{value}' is before the year {EARLIEST_YEAR}; check the year"
        )
    return parsed


# No news item is older: an earlier year is a typo ('0226' for '2026'), which feeds would
# carry as dates that are not RFC 822 ('15 Jun 999') or that readers misread (0099 as 1999).
EARLIEST_YEAR = 1900
