"""The Jinja2 environment: the site's templates/ first, then the ones shipped with bulletin."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    import jinja2


def _autoescape(name: str | None) -> bool:
    # Everything is HTML or XML except the plain-text parts.
    return not (name or "").endswith(".txt.j2")


@lru_cache(maxsize=4)
def environment(config: Config) -> jinja2.Environment:
    """Templates by file name, a site's own overriding bulletin's; autoescaping on."""
    import jinja2  # only when something is rendered: a rebuild that changes nothing skips it

    loaders: list[jinja2.BaseLoader] = []
    if config.templates_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(config.templates_dir))
    loaders.append(jinja2.PackageLoader("bulletin", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Compiled templates are kept between runs: a small rebuild skips compiling them.
        bytecode_cache=_bytecode_cache(config.cache_dir / "templates"),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _bytecode_cache(folder: Path) -> jinja2.BytecodeCache | None:
    import jinja2

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def templates_fingerprint(config: Config) -> str:
    """A hash of every template bulletin could use, so an edited template re-renders."""
    digest = hashlib.sha256()
    folders: list[Path] = []
    if config.templates_dir.is_dir():
        folders.append(config.templates_dir)
    shipped = resources.files("bulletin") / "templates"
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(b"shipped/" + entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()
