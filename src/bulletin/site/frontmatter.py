"""YAML front matter to plain data: libyaml's parser, no implicit types, no tags.

Loaded only when a file must be parsed: a rebuild that the parse cache answers for never
imports PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from ..errors import ItemError
from .fields import Fields

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


def _build(node: Node, memo: dict[int, Any], first_line: int) -> Any:
    """Plain Python data from a composed node: text, lists and Fields, nothing else."""
    if isinstance(node, ScalarNode):
        if node.tag != _STR:
            raise _tag_error(node, first_line)
        if not node.style and node.value in _NULLS:  # plain style: None, or "" from libyaml
            return None
        return node.value
    # An alias is the same node object: build it once (no "billion laughs").
    done = memo.get(id(node))
    if done is not None:
        return done
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ:
            raise _tag_error(node, first_line)
        seq: list[Any] = []
        memo[id(node)] = seq
        seq.extend(_build(child, memo, first_line) for child in node.value)
        return seq
    assert isinstance(node, MappingNode)
    if node.tag != _MAP:
        raise _tag_error(node, first_line)
    fields = Fields()
    memo[id(node)] = fields
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + first_line
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
        fields[folded] = _build(value_node, memo, first_line)
    return fields


def _tag_error(node: Node, first_line: int) -> ItemError:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return ItemError(
        node.start_mark.line + first_line,
        f"YAML tag '{tag}' is not allowed in front matter; remove it (values are plain text)",
    )


def _yaml_fix(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "quote the value in single quotes; it contains ': '"
    if "'\\t'" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "could not find expected ':'" in problem:
        return "a line is missing ':' or a quoted value is not closed"
    if "found undefined alias" in problem:
        return "define the &anchor before using *alias, or quote the '*'"
    return "check the quoting and indentation around it"


def parse_front_matter(text: str, first_line: int) -> Any:
    """Parse front matter to text, lists and Fields; ItemError names the line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(node, {}, first_line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark is not None else None
        problem = exc.problem or exc.context or "cannot be read"
        raise ItemError(line, f"front matter is not valid YAML: {problem}; {_yaml_fix(problem)}") from None
    except yaml.YAMLError as exc:
        raise ItemError(first_line, f"front matter is not valid YAML: {exc}") from None
    except RecursionError:
        raise ItemError(first_line, "front matter is nested too deeply; flatten it") from None
    finally:
        loader.dispose()
