"""YAML front matter to plain data: libyaml's parser, no implicit types, no tags.

Loaded only when a file must be parsed: a rebuild that the parse cache answers for never
imports PyYAML.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
import yaml.reader
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from ..errors import ItemError
from .fields import Fields
from .lint import reads_as_prose

try:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]

    LIBYAML = True
except ImportError:  # PyYAML built without libyaml: correct, 11-14 times slower
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

    LIBYAML = False

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _PlainResolver(BaseResolver):
    """No implicit types: every untagged scalar is the text the author wrote (no YAML 1.1
    booleans, octals or sexagesimals). Written out because the composer calls it per node."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


if not LIBYAML:
    from yaml.composer import Composer
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, _Parser, Composer, _PlainResolver):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _Parser.__init__(self)  # type: ignore[call-arg]
            Composer.__init__(self)
            _PlainResolver.__init__(self)

else:

    class _Loader(_Parser, _PlainResolver):  # type: ignore[no-redef]
        """libyaml's parser and composer with the plain resolver."""

        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)
            _PlainResolver.__init__(self)


_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


def _build(node: Node, memo: dict[int, Any], lines: _Lines) -> Any:
    """Plain Python data from a composed node: text, lists and Fields, nothing else."""
    if isinstance(node, ScalarNode):
        if node.tag != _STR:
            raise _tag_error(node, lines)
        if not node.style and node.value in _NULLS:  # plain style: None, or "" from libyaml
            return None
        return node.value
    # An alias is the same node object: build it once (no "billion laughs").
    done = memo.get(id(node))
    if done is not None:
        return done
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ:
            raise _tag_error(node, lines)
        seq: list[Any] = []
        memo[id(node)] = seq
        seq.extend(_build(child, memo, lines) for child in node.value)
        return seq
    assert isinstance(node, MappingNode)
    if node.tag != _MAP:
        raise _tag_error(node, lines)
    fields = Fields()
    memo[id(node)] = fields
    for key_node, value_node in node.value:
        line = lines.of(key_node.start_mark)
        if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
            raise ItemError(line, "a key is not text; write keys as plain words")
        key = key_node.value
        folded = key.lower()
        if folded in fields.lines:
            earlier = fields.names[folded]
            raise ItemError(
                line,
                f"key '{key}' repeats '{earlier}' (line {fields.lines[folded]}); keys differing "
                "only in case are the same field: keep one",
            )
        fields.lines[folded] = line
        fields.names[folded] = key
        fields[folded] = _build(value_node, memo, lines)
    return fields


def _tag_error(node: Node, lines: _Lines) -> ItemError:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return ItemError(
        lines.of(node.start_mark),
        f"YAML tag '{tag}' is not allowed in front matter; remove it (values are plain text)",
    )


def _yaml_fix(problem: str, at: str) -> str:
    if "mapping values are not allowed" in problem:
        return "quote the value in single quotes; it contains ': '"
    if "'\\t'" in problem or "tab" in problem or at == "\t":
        return "indent with spaces, not tabs"
    if "could not find expected ':'" in problem:
        return "a line is missing ':' or a quoted value is not closed"
    if "found undefined alias" in problem:
        return "define the &anchor before using *alias, or quote the '*'"
    return "check the quoting and indentation around it"


def parse_front_matter(text: str, first_line: int) -> Any:
    """Parse front matter to text, lists and Fields; ItemError names the line."""
    loader = _Loader(text)
    lines = _Lines(text, first_line)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(node, {}, lines)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, text, lines, first_line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (U+FFFE, …)
        line = text.count("\n", 0, exc.position) + first_line
        code = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ItemError(line, f"front matter holds {code}, which YAML does not allow; delete it") from None
    except yaml.YAMLError as exc:
        raise ItemError(first_line, f"front matter is not valid YAML: {exc}") from None
    except RecursionError:
        raise ItemError(first_line, "front matter is nested too deeply; flatten it") from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, lines: _Lines, first_line: int) -> ItemError:
    """libyaml's error on the line to fix: where an unclosed quote or bracket opened, which
    libyaml names as the context of an error found lines later (or at the end)."""
    unclosed = _ran_on(exc, text)
    mark = (exc.context_mark if unclosed else None) or exc.problem_mark or exc.context_mark
    line = lines.of(mark) if mark is not None else None
    problem = exc.problem or exc.context or "cannot be read"
    if unclosed:
        what = "quote" if "quoted" in (exc.context or "") else "bracket"
        message = f"front matter is not valid YAML: a {what} opened on this line is not closed; close it"
        return ItemError(line, message + _separator_hint(text, line, first_line))
    separator = _separator_hint(text, line, first_line)
    opened = None if separator else _unclosed_quote(text, line, first_line)
    if opened is not None:
        message = (
            "front matter is not valid YAML: the quote opened on this line is not closed on it; "
            f"close it (YAML reads on, and on line {line}: {problem})"
        )
        return ItemError(opened, message)
    prose = _body_line(text, line, first_line)
    if prose is not None:
        where = "on this line" if prose == line else f"on line {line}"
        message = (
            "front matter seems not closed before this line: YAML reads the text from here on as "
            f"fields ({where}: {problem}); add a '---' line after the front matter"
        )
        row = text.split("\n")[prose - first_line]
        if not reads_as_prose(row):  # a few words: perhaps a field that lost its ':'
            message += " (or, if this line is a field, a ':' after its name)"
        return ItemError(prose, message)
    at = text[mark.index : mark.index + 1] if mark is not None else ""
    message = f"front matter is not valid YAML: {problem}; {_yaml_fix(problem, at)}"
    return ItemError(line, message + separator)


def _ran_on(exc: yaml.MarkedYAMLError, text: str) -> bool:
    """Whether a quote or a bracket was never closed: libyaml met the end of the text, or
    the next field's key, still inside it (its context names where it opened)."""
    opened, stopped = exc.context_mark, exc.problem_mark
    if opened is None or stopped is None:
        return False
    if not (exc.context or "").startswith(("while scanning a quoted scalar", "while parsing a flow")):
        return False
    if "end of stream" in (exc.problem or "") or stopped.index >= len(text.rstrip("\n")):
        return True
    row = text[stopped.index - stopped.column :].partition("\n")[0]
    return stopped.line > opened.line and _TOP_KEY.match(row) is not None


_TOP_KEY = re.compile(r"[A-Za-z_][\w.-]*:(?: |$)")  # a field of the front matter's own mapping

# A value that opens a quote: after 'key: ' or '- ', the quote and the rest of the line.
_OPENS_QUOTE = re.compile(r"^ *(?:- +)*(?:[^\s'\"#:-][^:]*: +)?(['\"])(.*)$")


def _unclosed_quote(text: str, line: int | None, first_line: int) -> int | None:
    """The line before `line` whose quoted value runs on past its end: libyaml reads the
    lines after it as part of the value until a later quote closes it, and then finds an
    error there, lines from the mistake."""
    if line is None:
        return None
    # The line that opened the last such value, the one that closed it, the quote still
    # open; and the indentation of a '>' or '|' block's key while in its lines.
    opened, closed, quote, block = None, None, "", -1
    for number, row in enumerate(text.split("\n")[: line - first_line + 1], start=first_line):
        if quote:
            if _closes(row, quote):
                closed, quote = number, ""
            continue
        indent = len(row) - len(row.lstrip(" "))
        if block >= 0 and (indent > block or not row.strip()):
            continue  # a block's text: its quotes are letters
        block = indent if _BLOCK_KEY.match(row) else -1
        found = _OPENS_QUOTE.match(row)
        if found is not None and not _closes(found[2], found[1]):
            opened, closed, quote = number, None, found[1]
    # Only a value that ran on to the error's own line: one closed before it was meant so.
    return opened if opened is not None and opened < line and closed in (None, line) else None


def _body_line(text: str, line: int | None, first_line: int) -> int | None:
    """The first line, up to the error's, that reads as the body's text: after a blank line,
    at the start of the line, text with no 'key: ' (or a key of a sentence's length). Front
    matter whose closing '---' is missing runs on into the body, up to a '---' rule in it."""
    if line is None:
        return None
    rows = text.split("\n")[: line - first_line + 1]
    for index in range(1, len(rows)):
        row = rows[index]
        if rows[index - 1].strip() or not row.strip() or row[0] in " \t#":
            continue
        key = _KEY_PART.match(row)
        if key is None or reads_as_prose(key.group(1)):
            return index + first_line
    return None


_KEY_PART = re.compile(r"(.*?):(?:[ \t]|$)")  # what a line holds before its first ': '

_BLOCK_KEY = re.compile(r" *(?:- +)?[^\s'\"#:-][^:]*: +[>|][0-9+-]*\s*$")  # a '>' or '|' block's key


def _closes(rest: str, quote: str) -> bool:
    """Whether `rest` (what follows an opening quote) holds its closing quote."""
    if quote == "'":
        return "'" in rest.replace("''", "")
    return re.search(r'(?<!\\)(?:\\\\)*"', rest) is not None


def _separator_hint(text: str, line: int | None, first_line: int) -> str:
    """Where an invisible line break (to YAML) on the error's line or the one before is."""
    if line is None:
        return ""
    where, counted = first_line, 0
    for found in _SEPARATOR.finditer(text):
        where += text.count("\n", counted, found.start())  # from the last one on: one pass
        counted = found.start()
        if where > line:
            break
        if where >= line - 1:
            code = f"U+{ord(found.group()):04X}"
            return f" (line {where} holds {code}, which YAML reads as a line break: delete it)"
    return ""


# What libyaml takes for a line break besides \n (\r is gone by now): NEL, LS and PS.
_SEPARATOR = re.compile("[\x85\u2028\u2029]")
_BREAK = re.compile("[\n\x85\u2028\u2029]")


class _Lines:
    """The file's line of a libyaml mark. libyaml counts NEL, LS and PS as line breaks too,
    which the file and the author's editor do not; only then is a table needed."""

    def __init__(self, text: str, first_line: int) -> None:
        self.first_line = first_line
        self.table: list[int] | None = None
        if _SEPARATOR.search(text) is not None:
            table, line = [0], 0
            for found in _BREAK.finditer(text):
                line += found.group() == "\n"
                table.append(line)
            self.table = table

    def of(self, mark: yaml.Mark) -> int:
        return (mark.line if self.table is None else self.table[mark.line]) + self.first_line
