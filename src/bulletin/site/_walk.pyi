"""The compiled walk of content/ (_walk.c): walk.walk_items for trees with nothing unusual."""

from .walk import Stamp

def walk(
    root: str, prefix: str, stamp_type: type[Stamp]
) -> tuple[list[tuple[str, str]], list[Stamp]] | None: ...
