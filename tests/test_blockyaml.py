"""The fast block reader against libyaml: the same fields, or it steps aside.

`read_block_yaml` must return exactly what `parse_front_matter` (libyaml with the plain
resolver) returns, or None. Checked here on the example site, the seed, a 2,000-item corpus
and thousands of mutated items, at two levels: the front matter's data, and the whole
`parse_item` result (every field of the Item, every problem's message). Every test runs
twice: with the compiled reader (_blockyaml.c) and with the Python one it follows;
test_blockyaml_compiled.py compares the two directly. conftest.py also cross-checks every
front matter the rest of the suite parses.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bulletin.config import Config
from bulletin.errors import ItemError
from bulletin.site import blockyaml, parse
from bulletin.site.blockyaml import read_block_yaml
from bulletin.site.fields import Fields
from bulletin.site.frontmatter import parse_front_matter

from .conftest import DATA, REPO, SiteMaker, same_yaml

COMPILED = blockyaml._compiled


@pytest.fixture(autouse=True, params=["compiled", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test with the compiled block reader, then with the Python one."""
    if request.param == "python":
        monkeypatch.setattr(blockyaml, "_compiled", None)
    elif COMPILED is None:
        pytest.skip("bulletin was installed without a C compiler: only the Python block reader exists")


def _front(raw: bytes) -> str:
    text = parse.decode(raw)
    opening = parse._OPENING.match(text)
    assert opening is not None
    closing = parse.closing_line(text, opening.end())
    assert closing is not None
    return text[opening.end() : closing[0]]


def _libyaml(text: str) -> Any:
    try:
        return parse_front_matter(text, 2)
    except ItemError as exc:
        return exc


def _both_ways(raw: bytes, relpath: str, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_item with the block reader, then with libyaml alone: equal in every field."""
    fast = parse.parse_item(raw, relpath, config)
    with monkeypatch.context() as patched:
        patched.setattr(parse, "read_block_yaml", lambda text, first_line: None)
        slow = parse.parse_item(raw, relpath, config)
    assert fast == slow, relpath


def _known_items(corpus: list[Path]) -> list[Path]:
    return [*sorted((REPO / "content").rglob("*.md")), DATA / "seed.md", *corpus]


def test_every_known_item_reads_the_same_both_ways(
    corpus: list[Path], site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = site.config()
    accepted = 0
    for path in _known_items(corpus):
        raw = path.read_bytes()
        front = _front(raw)
        fast = read_block_yaml(front, 2)
        if fast is not None:
            accepted += 1
            assert same_yaml(fast, _libyaml(front)), path
        _both_ways(raw, f"content/{path.name}", config, monkeypatch)
    # The corpus, the seed and the example site are all in the subset: none pays for libyaml.
    assert accepted == len(_known_items(corpus))


# What mutations insert: YAML's indicators, quotes, spaces, breaks, odd characters.
_INSERTS = [
    *list(":-'\"#>|[]{}&*!?%@`~, \t\n"),
    "  ",
    ": ",
    "- ",
    " #",
    "\xa0",
    "é",
    "\u2028",
    "\x85",
    "\ufeff",
]


def _mutants(text: str, rng: random.Random, count: int) -> list[str]:
    lines = text.split("\n")
    out = []
    for _ in range(count):
        mutant = list(lines)
        for _ in range(rng.randint(1, 3)):
            n = rng.randrange(len(mutant))
            line = mutant[n]
            choice = rng.randrange(7)
            if choice == 0:  # insert a character
                at = rng.randint(0, len(line))
                mutant[n] = line[:at] + rng.choice(_INSERTS) + line[at:]
            elif choice == 1 and line:  # delete one
                at = rng.randrange(len(line))
                mutant[n] = line[:at] + line[at + 1 :]
            elif choice == 2:  # indent or outdent
                mutant[n] = (
                    " " * rng.choice([1, 2, 4]) + line if rng.random() < 0.6 else line[rng.choice([1, 2]) :]
                )
            elif choice == 3:  # repeat a line (a repeated key, an extra item)
                mutant.insert(n, line)
            elif choice == 4:  # drop a line
                del mutant[n]
            elif choice == 5:  # a blank line
                mutant.insert(n, "")
            else:  # another line's key, in another case
                other = rng.choice(mutant)
                if ":" in other and ":" in line:
                    key = other.split(":", 1)[0].strip(" -")
                    head, _, tail = line.partition(":")
                    indent = head[: len(head) - len(head.lstrip(" -"))]
                    mutant[n] = indent + rng.choice([key, key.upper(), key.title()]) + ":" + tail
            if not mutant:
                mutant = [""]
        out.append("\n".join(mutant))
    return out


def test_mutated_items_read_the_same_or_go_to_libyaml(
    corpus: list[Path], site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of broken and odd variants of real items: whatever the block reader
    accepts, libyaml reads to the same data; the items and error messages are the same."""
    rng = random.Random(20261125)
    config = site.config()
    accepted = refused = 0
    sources = [DATA / "seed.md", corpus[0], corpus[1], REPO / "content" / "news" / "draft-ai-roundup.md"]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        front = _front(text.encode())
        body = text[text.index(front) + len(front) :]
        for mutant in _mutants(front, rng, 1000):
            fast = read_block_yaml(mutant, 2)
            if fast is None:
                refused += 1
            else:
                accepted += 1
                assert same_yaml(fast, _libyaml(mutant)), mutant
            raw = ("---\n" + mutant + body).encode()
            _both_ways(raw, "content/news/mutant.md", config, monkeypatch)
    # Both sides are exercised: many mutants stay in the subset, many leave it.
    assert accepted > 800 and refused > 800, (accepted, refused)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title: Plain text\n", {"title": "Plain text"}),
        ("a: ~\nb: null\nc:\nd: ''\ne: 'null'\n", {"a": None, "b": None, "c": None, "d": "", "e": "null"}),
        ("a: 'it''s: here'\nb: \"dq: no.1\"\n", {"a": "it's: here", "b": "dq: no.1"}),
        ("a: C#, F#\nb: https://x.org/#top\n", {"a": "C#, F#", "b": "https://x.org/#top"}),
        ("list:\n- one\n- 'two'\nnext: 3\n", {"list": ["one", "two"], "next": "3"}),
        ("list:\n  - one\n  - two\n", {"list": ["one", "two"]}),
        ("a: []\nb: {}\n", {"a": [], "b": {}}),
        ("a: >-\n  one\n  two\nb: >\n  x\n", {"a": "one two", "b": "x\n"}),
        ("a: |-\n  one\n  two\nb: |\n  x\n", {"a": "one\ntwo", "b": "x\n"}),
        (
            "rel:\n  - label: X\n    cats:\n      - c1\n    id: 7\n  - label: Y\n",
            {"rel": [{"label": "X", "cats": ["c1"], "id": "7"}, {"label": "Y"}]},
        ),
        ("m:\n  k:\n  - a\n  j: b\n", {"m": {"k": ["a"], "j": "b"}}),
        ("a: 1\n\n\nb: 2\n", {"a": "1", "b": "2"}),
        ("Title: x\nDraft: yes\n", {"title": "x", "draft": "yes"}),
    ],
)
def test_reads_the_subset_as_libyaml_does(text: str, expected: dict[str, Any]) -> None:
    fast = read_block_yaml(text, 2)
    assert fast == expected
    assert same_yaml(fast, parse_front_matter(text, 2))


def test_keys_keep_their_spelling_and_line() -> None:
    fast = read_block_yaml("a: 1\n\nFeatured:\n  HREF: x\nlist:\n  - k: v\n    Other: w\n", 2)
    assert isinstance(fast, Fields)
    assert fast.names == {"a": "a", "featured": "Featured", "list": "list"}
    assert fast.lines == {"a": 2, "featured": 4, "list": 6}
    assert fast["featured"].lines == {"href": 5}
    assert fast["list"][0].lines == {"k": 7, "other": 8}
    assert same_yaml(
        fast, parse_front_matter("a: 1\n\nFeatured:\n  HREF: x\nlist:\n  - k: v\n    Other: w\n", 2)
    )


@pytest.mark.parametrize(
    "text",
    [
        "a: 1 # comment\n",
        "a: |\n a",  # no final line break: a block would end without one
        "a: >\n -",
        "# comment\na: 1\n",
        "a: [1, 2]\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: 1\nA: 2\n",  # repeated key: libyaml's path words the error
        "a: one\n  two\n",  # a plain value over two lines
        "a: >-\n  one\n\n  two\n",  # a blank line inside a block
        "a: >-\n  one\n    two\n",  # a more indented line
        "a: >-\n  one \n",  # a trailing space in a block
        "a: x \n",  # a trailing space after a value
        "a:\n\tb: 1\n",
        "a: x\u2028y\n",
        "a: x\x85y\n",
        "a: \ufeffx\n",
        "a: 'unclosed\n",
        'a: "esc\\n"\n',
        "a: b: c\n",
        "list:\n-\n  x\n",
        "list:\n- >-\n  x\n",
        "'quoted': key\n",
        "two words: key\n",
        "  a: indented first\n",
        "- a\n- b\n",
        "just text\n",
        "",
        "a: 1\n - b\n",
        "a:\n  b: 1\n c: 2\n",
        "a: %x\n",
        "a: @x\n",
    ],
)
def test_leaves_everything_else_to_libyaml(text: str) -> None:
    assert read_block_yaml(text, 2) is None


def _printable(code: int) -> bool:
    """YAML 1.1's printable characters (§5.1), which libyaml accepts in a stream."""
    return (
        code in (0x09, 0x0A, 0x0D, 0x85)
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def test_steps_aside_for_every_character_libyaml_treats_specially() -> None:
    """Every character outside YAML's printable set, and the printable ones libyaml reads as
    something other than a letter (tab, CR, and NEL, LS and PS as line breaks; the BOM):
    checked one by one, the astral planes sampled."""
    special = {0x09, 0x0D, 0x85, 0x2028, 0x2029, 0xFEFF}
    codes = [*range(0x10000), *range(0x10000, 0x110000, 97), 0x10FFFF]
    for code in codes:
        if code in (0x0A, 0x23):  # a line break; '#', which depends on what precedes it
            continue
        text = f"a: x{chr(code)}y\n"
        expected_none = not _printable(code) or code in special
        assert (read_block_yaml(text, 2) is None) == expected_none, f"U+{code:04X}"
