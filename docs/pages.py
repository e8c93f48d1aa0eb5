"""Screenshots of bulletin's pages for docs/: the example site, served on 127.0.0.1.

Run by docs/screenshots.sh (needs Debian's chromium and the test extras: Playwright drives
the browser). Writes docs/page-NAME-{1200,375}.png for the web side's pages (front,
subscribe, confirm, manage, manage once saved, unsubscribe) and the published ones (feeds
index, a topic page and its page 2, the digest archive, a digest). The example site gets 60
more short items in one topic so that its page 2 exists; the items' images are not online,
so grey placeholders of the same size stand in for them.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from bulletin.cli import main
from bulletin.ledger import Ledger
from bulletin.subscriptions import Consent, Subscriptions
from bulletin.tokens import make_purpose_token, make_token
from bulletin.web import create_app
from bulletin.web.pages import CONSENT

REPO = Path(__file__).resolve().parent.parent
SECRET = "screenshots-secret-0123456789"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _site(folder: Path, port: int) -> Path:
    site = folder / "example"
    shutil.copytree(REPO / "content", site / "content")
    shutil.copytree(REPO / "templates", site / "templates")
    config = (REPO / "bulletin.toml").read_text(encoding="utf-8")
    (site / "bulletin.toml").write_text(
        config + f'\n[web]\nurl = "http://127.0.0.1:{port}/"\n', encoding="utf-8"
    )
    os.environ["BULLETIN_SECRET"] = SECRET
    _more_items(site / "content" / "more")
    try:
        main(["build", "--site", str(site), "--now", "2026-11-25T12:00", "-q"])
    except SystemExit as done:
        if done.code:
            raise
    with Ledger.open(site / ".bulletin" / "ledger.sqlite", create=True) as ledger:
        Subscriptions(ledger).add(
            "reader@example.org",
            "Dana",
            frozenset({"gartner-healthcare"}),
            datetime(2026, 11, 20, tzinfo=UTC),
            "cli",
        )
        consent = Consent(ASKED, "https://news.example.org/subscribe", CONSENT, None)
        Subscriptions(ledger).request(NEW_READER, "Sam", ["gartner-healthcare"], consent)
    return site


ASKED = datetime.now(UTC).replace(microsecond=0)  # a pending request, its link not expired
# The pending request is at an internationalised domain, kept in ASCII as bulletin stores and
# mails it: the confirm page shows it as written, new.reader@bücher.example.
NEW_READER = "new.reader@xn--bcher-kva.example"


def _confirm_token(list_id: str) -> str:
    expires = int(ASKED.timestamp()) + 3600
    return make_purpose_token("confirm", NEW_READER, SECRET, list_id, expires, ASKED.isoformat())


def _more_items(folder: Path) -> None:
    folder.mkdir(parents=True)
    for n in range(60):
        day = 1 + n % 28
        (folder / f"brief-{n:02d}.md").write_text(
            f"---\ntitle: 'Health system brief number {n + 1}'\ndate: '2026-10-{day:02d}'\n"
            "categories: ['Gartner: Healthcare']\n"
            f"link: {{href: 'https://www.example.com/briefs/{n}'}}\n"
            "description: 'A short brief that fills the topic so that it has a second page.'\n---\n"
            "<p>Brief.</p>\n",
            encoding="utf-8",
        )


def _placeholder(route: object) -> None:
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='96' height='64'>"
        "<rect width='100%' height='100%' fill='#d1d5db'/></svg>"
    )
    route.fulfill(status=200, content_type="image/svg+xml", body=svg)  # type: ignore[attr-defined]


def main_() -> None:
    port = _port()
    with tempfile.TemporaryDirectory() as folder:
        site = _site(Path(folder), port)
        server = uvicorn.Server(
            uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        list_id = "health-innovation-weekly.news.example.org"
        pages = {
            "front": "",
            "subscribe": "subscribe",
            "confirm": "confirm/" + _confirm_token(list_id),
            "manage": "manage/" + make_purpose_token("manage", "reader@example.org", SECRET, list_id),
            "manage-saved": "manage/"
            + make_purpose_token("manage", "reader@example.org", SECRET, list_id)
            + "?saved=1",
            "unsubscribe": "unsubscribe/" + make_token("reader@example.org", SECRET, list_id),
            "feeds-index": "feeds/index.html",
            "topic": "feeds/topic/gartner-healthcare/index.html",
            "topic-page-2": "feeds/topic/gartner-healthcare/page/2/index.html",
            "archive": "emails/index.html",
            "digest": "emails/2026-W47/digest.html",
        }
        chromium = shutil.which("chromium") or sys.exit("needs Debian's chromium: apt-get install chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            for width in (1200, 375):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.route("**/*featuredImage*", _placeholder)
                page.route("https://news.example.org/**", _placeholder)
                for name, path in pages.items():
                    page.goto(f"http://127.0.0.1:{port}/{path}")
                    page.screenshot(path=str(REPO / "docs" / f"page-{name}-{width}.png"), full_page=True)
                page.close()
            browser.close()
        server.should_exit = True
        thread.join(5)


if __name__ == "__main__":
    main_()
