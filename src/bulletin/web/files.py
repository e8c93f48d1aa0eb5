"""The published folders, feeds/ and emails/, with the media types README's "Serving the feeds" lists."""

from __future__ import annotations

import os
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles

MEDIA_TYPES = {
    "rss.xml": "application/rss+xml",
    "atom.xml": "application/atom+xml",
    "feed.json": "application/feed+json",
    "feeds.opml": "text/x-opml",
}
BY_SUFFIX = {
    ".eml": "message/rfc822",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


RELOAD_TAG = b'<script src="/__bulletin/reload.js" defer></script>'


class PublishedFiles(StaticFiles):
    """Static files with ETag, Last-Modified and 304 (Starlette's), feeds typed as feeds.

    With `reload` (serve --watch), HTML pages get the script that reloads them after a rebuild.
    """

    def __init__(self, *args: Any, reload: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reload = reload

    def file_response(
        self, full_path: Any, stat_result: os.stat_result, scope: Any, status_code: int = 200
    ) -> Response:
        name = os.path.basename(str(full_path))
        if self.reload and name.endswith(".html"):
            with open(full_path, "rb") as handle:
                page = handle.read()
            at = page.rfind(b"</body>")
            page = page[:at] + RELOAD_TAG + page[at:] if at >= 0 else page + RELOAD_TAG
            return Response(
                page,
                status_code,
                media_type="text/html; charset=utf-8",
                headers={"cache-control": "no-store"},
            )
        response = super().file_response(full_path, stat_result, scope, status_code)
        media = MEDIA_TYPES.get(name) or BY_SUFFIX.get(os.path.splitext(name)[1])
        if media is not None:
            response.headers["content-type"] = media
        return response

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        # Never a temporary file of bulletin's own atomic writes, nor any hidden file.
        if any(part.startswith(".") and part not in (".", "..") for part in path.split("/")):
            return "", None
        return super().lookup_path(path)
