"""The compiled walk of content/ (site/_walk.c) against the Python walk it follows: for every
tree, the same files in the same order with the same stamps, or None, and then the Python
walk alone decides. conftest.py also compares the two on every walk the suite makes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bulletin.site import walk
from bulletin.site.walk import Stamp, walk_in_python, walk_items

COMPILED = walk._compiled
pytestmark = pytest.mark.skipif(
    COMPILED is None, reason="bulletin was installed without a C compiler: only the Python walk exists"
)

# Names that every rule of the walk has an opinion on: suffixes (x.MD is a case of its own,
# below: the Python walk warns of it), hidden names,
# folders starting with '_' (skipped) beside files starting with '_' (read), and names
# whose sorted order differs between bytes and case or needs code points past ASCII.
_FILES = [
    "a.md", "B.md", "Z.md", "a b.md", "ab.md", "é.md", "Ω.markdown", "😀.html", "x.html",
    "note.txt", "a.mdx", "md", ".hidden.md", "_draft.md", "a.md~", "z.markdown", "-.md",
]  # fmt: skip
_FOLDERS = ["news", "News", "_drafts", ".git", "ärchiv", "2026", "a b", "z"]


def compiled(root: Path) -> tuple[list[tuple[str, str]], list[Stamp]] | None:
    assert COMPILED is not None
    return COMPILED(os.fspath(root), root.name, Stamp)


def same_as_python(root: Path) -> tuple[list[tuple[str, str]], list[Stamp]] | None:
    """The compiled walk's answer, checked against the Python walk's when it gives one."""
    found = compiled(root)
    reference = walk_in_python(root)
    if found is not None:
        assert (reference.files, reference.stamps, reference.problems) == (*found, [])
    return found


def grow(folder: Path, rng: random.Random, depth: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in rng.sample(_FILES, rng.randint(0, 6)):
        (folder / name).write_bytes(b"x" * rng.randint(0, 40))
    if depth < 4:
        for name in rng.sample(_FOLDERS, rng.randint(0, 3)):
            grow(folder / name, rng, depth + 1)


def test_generated_trees_are_walked_alike(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    answered = 0
    for n in range(150):
        root = tmp_path / f"site{n}" / "content"
        grow(root, rng, 0)
        found = same_as_python(root)
        assert found is not None, "a tree of plain files and folders is the compiled walk's own"
        answered += len(found[0])
    assert answered > 1000  # the trees hold files to compare, not only empty folders


def test_the_order_is_python_sorted_order_by_code_point(tmp_path: Path) -> None:
    root = tmp_path / "content"
    for name in ("é.md", "z.md", "Z.md", "😀.md", "Ω.md", "a b.md", "ab.md", "a.md"):
        (root / "news" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "news" / name).write_text("x")
    (root / "top.md").write_text("x")
    found = same_as_python(root)
    assert found is not None
    relpaths = [relpath for relpath, _ in found[0]]
    assert relpaths == [
        "content/top.md",
        *(f"content/news/{n}" for n in sorted(p.name for p in (root / "news").iterdir())),
    ]


def test_what_has_a_rule_or_a_message_is_left_to_the_python_walk(tmp_path: Path) -> None:
    """Links, names that are not UTF-8 and a folder reached twice: the compiled walk gives
    no answer, and walk_items gives the Python walk's, problems and all."""
    cases = {
        "link to a file": lambda root: (root / "l.md").symlink_to(root / "a.md"),
        "link to a folder": lambda root: (root / "more").symlink_to(root / "news", target_is_directory=True),
        "dangling link": lambda root: (root / "gone.md").symlink_to(root / "nowhere.md"),
        "link outside": lambda root: (root / "out.md").symlink_to("/etc/hostname"),
        "name not UTF-8": lambda root: (root / "news" / os.fsdecode(b"caf\xe9.md")).write_text("x"),
        "folder not UTF-8": lambda root: (root / os.fsdecode(b"\xff")).mkdir(),
        "suffix in upper case": lambda root: (root / "news" / "Story.MD").write_text("x"),
    }
    for name, make in cases.items():
        root = tmp_path / name.replace(" ", "-") / "content"
        (root / "news").mkdir(parents=True)
        (root / "a.md").write_text("x")
        (root / "news" / "b.md").write_text("x")
        make(root)
        assert compiled(root) is None, name
        python = walk_in_python(root)
        chosen = walk_items(root)
        assert (chosen.files, chosen.stamps, chosen.problems) == (
            python.files,
            python.stamps,
            python.problems,
        )


def test_special_files_with_an_item_name_are_listed_like_any_file(tmp_path: Path) -> None:
    """A named pipe called x.md is listed (the reader refuses it, saying why), and no walk
    ever opens it: opening a FIFO would wait for a writer."""
    root = tmp_path / "content"
    root.mkdir()
    (root / "a.md").write_text("x")
    os.mkfifo(root / "pipe.md")
    os.mkfifo(root / "pipe.txt")
    found = same_as_python(root)
    assert found is not None
    assert [relpath for relpath, _ in found[0]] == ["content/a.md", "content/pipe.md"]


def test_a_tree_deeper_than_the_compiled_walk_goes_is_walked_in_python(tmp_path: Path) -> None:
    root = tmp_path / "content"
    deep = root.joinpath(*["d"] * 210)
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("x")
    assert compiled(root) is None
    assert walk_items(root).files == [("content/" + "d/" * 210 + "deep.md", os.fspath(deep / "deep.md"))]


def test_a_folder_too_deep_to_open_by_its_path_is_left_to_the_python_walk(tmp_path: Path) -> None:
    """The Python walk opens folders by their whole path, which the system limits (4,096
    bytes on Linux); the compiled one opens them by descriptor, which it does not."""
    root = tmp_path / "content"
    root.mkdir()
    descriptor = os.open(root, os.O_RDONLY)
    for _ in range(17):  # 17 folders of 250 characters: past 4,096 bytes
        os.mkdir("d" * 250, dir_fd=descriptor)
        inner = os.open("d" * 250, os.O_RDONLY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = inner
    os.close(os.open("x.md", os.O_CREAT | os.O_WRONLY, dir_fd=descriptor))
    os.close(descriptor)
    assert compiled(root) is None
    walked = walk_items(root)
    assert walked.files == [] and "File name too long" in walked.problems[0].message


def test_a_stamp_type_it_cannot_fill_is_refused() -> None:
    """A struct sequence (os.stat_result) is a tuple with hidden fields: filling it as a
    four-item tuple would crash, so the walk refuses it as tuple.__new__ does."""
    assert COMPILED is not None
    content = os.fspath(Path(__file__).resolve().parent.parent / "content")
    with pytest.raises(TypeError):
        COMPILED(content, "content", os.stat_result)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        COMPILED(content, "content", tuple)  # type: ignore[arg-type]


def test_the_example_site_takes_the_compiled_walk() -> None:
    content = Path(__file__).resolve().parent.parent / "content"
    found = same_as_python(content)
    assert found is not None and len(found[0]) > 40


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_a_folder_that_cannot_be_read_is_left_to_the_python_walk(tmp_path: Path) -> None:
    root = tmp_path / "content"
    (root / "locked").mkdir(parents=True)
    (root / "a.md").write_text("x")
    (root / "locked").chmod(0)
    try:
        assert compiled(root) is None
        assert [problem.path for problem in walk_items(root).problems] == ["content/locked/"]
    finally:
        (root / "locked").chmod(0o755)
