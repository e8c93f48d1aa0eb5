"""The subscriber's side: `bulletin serve`, a Starlette application served by uvicorn.

`create_app` is also the factory for production servers::

    BULLETIN_SITE=/srv/news uvicorn --factory bulletin.web:create_app --workers 4
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_app(*args: Any, **kwargs: Any) -> Starlette:
    """The ASGI application for a site (default: BULLETIN_SITE, else the current folder)."""
    from .app import create_app as create

    return create(*args, **kwargs)
