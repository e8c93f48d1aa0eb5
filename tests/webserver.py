"""A real uvicorn serving bulletin's web side on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bulletin.web import create_app

from .smtp import free_port


class WebServer:
    """`with WebServer(site, secret) as web:` then `web.client` (httpx) and `web.url`."""

    def __init__(
        self, site: Path, secret: str, port: int | None = None, root_path: str = "", **options: Any
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        app = create_app(site, secret=secret, password=None, **options)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", root_path=root_path)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def settle(self, timeout: float = 30) -> None:
        """Wait until every request has finished, its background work too (the confirmation
        mail goes out after the answer)."""
        deadline = time.monotonic() + timeout
        while self.server.server_state.tasks:
            if time.monotonic() > deadline:
                raise RuntimeError("the server is still busy")
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self.settle()
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


def form_token(page: str) -> str:
    """The one-time form token of the (first) form on a page."""
    found = re.search(r'name="form" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def link(mail_text: str, route: str) -> str:
    """The path of the first link to `route` in a mail's text part."""
    found = re.search(rf"https?://[^/\s]+(/{route}/[^\s]+)", mail_text)
    assert found, mail_text
    return found.group(1)
