"""The compiled block reader (site/_blockyaml.c) against the Python one it follows: the
same data, spellings and lines for every text, or None from both. tests/test_blockyaml.py
runs its tests with each reader; these compare the two directly."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bulletin.site import blockyaml
from bulletin.site.blockyaml import read_block_yaml
from bulletin.site.fields import Fields

from .conftest import same_yaml
from .test_blockyaml import _front, _known_items, _mutants

COMPILED = blockyaml._compiled
pytestmark = pytest.mark.skipif(
    COMPILED is None,
    reason="bulletin was installed without a C compiler: only the Python block reader exists",
)


# Pieces of lines the generator below puts together: every rule of the subset has a piece
# that keeps to it and one that breaks it.
_KEYS = ["a", "B", "key_1", "x.y-z", "Title", "title", "_", "k" * 201, "k" * 202, "-k", "1k", "é"]
_VALUES = [
    "",
    "plain",
    "two words",
    "a:b",
    "a: b",
    "ends:",
    "ends ",
    "~",
    "null",
    "NULL",
    "Null",
    "nul",
    "[]",
    "{}",
    "[x]",
    "'q'",
    "'it''s'",
    "''",
    "'''",
    "'a''",
    "'open",
    '"dq"',
    '"a\\\\b"',
    '"a"b"',
    '"',
    "'",
    ">-",
    ">",
    "|-",
    "|",
    ">+",
    "|2",
    "- x",
    "-x",
    "é ü",
    "x #y",
    "?",
    "%",
    "@",
    "`",
]


def _generated(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 12)):
        indent = " " * rng.choice([0, 0, 0, 1, 2, 2, 4, 4, 6, 8])
        shape = rng.randrange(6)
        key, value = rng.choice(_KEYS), rng.choice(_VALUES)
        if shape == 0:
            line = f"{indent}{key}:{' ' * rng.choice([0, 1, 1, 3]) if value else ''}{value}"
        elif shape == 1:
            line = f"{indent}- {value}"
        elif shape == 2:
            line = f"{indent}- {key}: {value}"
        elif shape == 3:
            line = f"{indent}{rng.choice(['', 'word', 'two words', 'ends ', 'x: y'])}"  # a block's line
        elif shape == 4:
            line = rng.choice(["", "", indent, "-", f"{indent}-"])
        else:
            line = f"{indent}{key}: {value}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _same(compiled: Any, python: Any) -> bool:
    return (compiled is None and python is None) or (python is not None and same_yaml(compiled, python))


def test_compiled_reader_reads_exactly_as_the_python_one(corpus: list[Path]) -> None:
    """The differential test of _blockyaml.c: every known item, their mutants and thousands
    of generated texts, read by both readers to the same data, spellings and lines, or
    refused by both. Deep nesting and a key of 201 and 202 characters are among them."""
    assert COMPILED is not None
    rng = random.Random(20261206)
    texts = [_front(path.read_bytes()) for path in _known_items(corpus)]
    for source in texts[:: len(texts) // 8]:
        texts.extend(_mutants(source, rng, 1500))
    texts.extend(_generated(rng) for _ in range(20000))
    texts.append("".join(f"{' ' * depth}k{depth}:\n" for depth in range(0, 90, 2)) + "  " * 45 + "v: 1\n")
    texts.append("".join(f"{' ' * depth}- k{depth}:\n" for depth in range(0, 90, 2)))
    accepted = 0
    for text in texts:
        if not text.endswith("\n") or blockyaml._has_stray(text):
            continue
        compiled, python = COMPILED(text, 5, Fields), blockyaml.read_in_python(text, 5)
        assert _same(compiled, python), text
        accepted += python is not None
    # Both sides are exercised: many texts stay in the subset, many leave it.
    assert accepted > 5000 and len(texts) - accepted > 5000, (accepted, len(texts))


def test_compiled_reader_refuses_what_it_cannot_read_safely() -> None:
    """Line numbers past what C holds go to the Python reader; a mapping type whose
    attribute access runs Python code (which could free what the reader points into) is
    refused, not used."""
    assert COMPILED is not None
    huge = read_block_yaml("a: 1\nb: 2\n", 2**64)
    assert isinstance(huge, Fields) and huge.lines == {"a": 2**64, "b": 2**64 + 1}
    with pytest.raises(OverflowError):
        COMPILED("a: 1\n", 2**63, Fields)

    class Watched(Fields):
        def __getattribute__(self, name: str) -> Any:
            return super().__getattribute__(name)

    with pytest.raises(TypeError, match="plain attributes"):
        COMPILED("a: 1\n", 2, Watched)
