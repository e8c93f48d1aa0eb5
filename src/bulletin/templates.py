"""The Jinja2 environment: the site's templates/ first, then the ones shipped with bulletin."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from .config import Config
from .errors import TemplateError

if TYPE_CHECKING:
    import jinja2


# bulletin's own templates (importlib.resources would find the same folder, and cost a
# rebuild with nothing to do 5 ms to load).
_SHIPPED = Path(__file__).with_name("templates")


def _autoescape(name: str | None) -> bool:
    # Everything is HTML or XML except the plain-text parts.
    return not (name or "").endswith(".txt.j2")


def environment(config: Config) -> jinja2.Environment:
    """Templates by file name, a site's own overriding bulletin's; autoescaping on.

    A long-running process (serve --watch) gets a new environment when a file is added to
    or removed from templates/, or the folder comes or goes: an environment caches the
    templates it loaded, and one of bulletin's would otherwise hide a site's new override.
    (An edited template is reloaded by the environment itself.)"""
    try:
        stamp = os.stat(config.templates_dir).st_mtime_ns
    except OSError:
        stamp = None
    return _environment(config, stamp)


@lru_cache(maxsize=4)
def _environment(config: Config, _templates_stamp: int | None) -> jinja2.Environment:
    import jinja2  # only when something is rendered: a rebuild that changes nothing skips it

    loaders: list[jinja2.BaseLoader] = []
    if config.templates_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(config.templates_dir))
    loaders.append(jinja2.PackageLoader("bulletin", "templates"))
    env = _environment_class(config.site)(
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


@lru_cache(maxsize=4)
def _environment_class(site: Path) -> type[jinja2.Environment]:
    # Made on first use, like the next class: jinja2 is imported only when rendering.
    import jinja2

    class SiteEnvironment(jinja2.Environment):
        """Reports a template that does not compile or render as TemplateError, naming its
        file and line, instead of jinja2's traceback."""

        def handle_exception(self, source: str | None = None) -> NoReturn:
            _, exc, traceback = sys.exc_info()
            if isinstance(exc, TemplateError):  # raised in an included template: reported
                raise exc
            where = _where(exc, traceback)
            if exc is None or where is None:
                super().handle_exception(source)
            raise TemplateError(_template_problem(exc, site, *where)) from exc

    return SiteEnvironment


def _where(exc: BaseException | None, traceback: TracebackType | None) -> tuple[str, int] | None:
    """The template file and line where `exc` happened: the innermost template frame."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return (exc.filename or exc.name or "<template>", exc.lineno)
    found = None
    while traceback is not None:
        template = traceback.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            found = (
                template.filename or template.name,
                template.get_corresponding_lineno(traceback.tb_lineno),
            )
        traceback = traceback.tb_next
    return found


def _template_problem(exc: BaseException, site: Path, filename: str, line: int) -> str:
    """`templates/x.j2:LINE: error: what; fix` for a template that failed."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        what = exc.message or str(exc)
    elif isinstance(exc, jinja2.TemplateNotFound):
        what = f"template {exc.name!r} not found"
    else:
        what = str(exc)
    path = Path(filename)
    if path.is_relative_to(site):
        fix = "fix the template, or remove it from templates/ to use bulletin's own"
        filename = path.relative_to(site).as_posix()
    else:
        fix = "this template ships with bulletin: please report the problem"
    return f"{filename}:{line}: error: {what}; {fix}"


def _bytecode_cache(folder: Path) -> jinja2.BytecodeCache | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _bytecode_cache_class()(folder)


@lru_cache(maxsize=1)
def _bytecode_cache_class() -> Callable[[Path], jinja2.BytecodeCache]:
    import jinja2

    from .cache import seal, unseal
    from .files import write_atomic

    class CheckedBytecodeCache(jinja2.BytecodeCache):
        """Compiled templates in one file each, behind a checksum: marshal data with a
        flipped byte can render something else or crash the interpreter, so a damaged
        file is compiled again instead of loaded."""

        def __init__(self, folder: Path) -> None:
            self.folder = folder

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                sealed = unseal((self.folder / f"{bucket.key}.bytecode").read_bytes())
            except OSError:
                return
            if sealed is not None:
                bucket.bytecode_from_string(bytes(sealed))

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            # Like the parse cache: one that cannot be written only costs time.
            with contextlib.suppress(OSError):
                write_atomic(
                    self.folder / f"{bucket.key}.bytecode", seal(bucket.bytecode_to_string()), durable=False
                )

    return CheckedBytecodeCache


def templates_fingerprint(config: Config) -> str:
    """A hash of every template bulletin could use, so an edited template re-renders."""
    digest = hashlib.sha256()
    folders: list[Path] = []
    if config.templates_dir.is_dir():
        folders.append(config.templates_dir)
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    for entry in sorted(_SHIPPED.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(b"shipped/" + entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()
