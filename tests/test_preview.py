"""`bulletin serve --watch`: edit an item and the open page changes by itself; a broken
rebuild shows its errors on the page while the last good output stays served."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bulletin.web import create_app
from bulletin.web.preview import Preview

from .browser import browser_page, needs_chromium
from .conftest import SiteMaker
from .smtp import free_port

SECRET = "preview-secret-0123456789"


@pytest.fixture
def preview(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SiteMaker, str, list[str]]]:
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)
    site.write_config(digest={"from": "News <news@news.example.org>", "address": "1 Main Street"})
    site.item(
        "a.md", title="The first title", categories=["Alpha"], date="2026-11-17", href="https://src.example/a"
    )
    port = free_port()
    said: list[str] = []
    scratch = site.root.parent / "scratch"
    watcher = Preview(site.root, f"http://127.0.0.1:{port}/", scratch, said.append)
    watcher.rebuild()
    server = uvicorn.Server(uvicorn.Config(create_app(preview=watcher), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    watcher.watch(stop)
    time.sleep(0.3)  # the watcher is listening
    try:
        yield site, f"http://127.0.0.1:{port}/", said
    finally:
        stop.set()
        server.should_exit = True
        thread.join(5)


def test_links_point_at_the_local_server_and_the_site_is_untouched(
    preview: tuple[SiteMaker, str, list[str]],
) -> None:
    site, url, _ = preview
    page = httpx.get(url + "feeds/topic/alpha/index.html").text
    assert f'href="{url}feeds/topic/alpha/rss.xml"' in page and "/__bulletin/reload.js" in page
    assert not (site.root / "feeds").exists()  # the preview builds elsewhere
    digest = httpx.get(url + "preview/digest", params={"week": "2026-W47", "topics": "alpha"})
    assert digest.status_code == 200 and "The first title" in digest.text and "Hi Dana," in digest.text
    # The local server speaks plain http: mail's https would make every link a dead one.
    assert f'href="{url}emails/' in digest.text and "https://127.0.0.1" not in digest.text
    assert httpx.get(url + "preview/digest", params={"topics": "nope"}).status_code == 400
    bad_week = httpx.get(url + "preview/digest", params={"week": "2026-W99"})
    assert bad_week.status_code == 400 and "week='2026-W99': 2026 has no week 99" in html.unescape(
        bad_week.text
    )
    assert "--week" not in bad_week.text


@needs_chromium
def test_an_edit_changes_the_open_page_by_itself(preview: tuple[SiteMaker, str, list[str]]) -> None:
    site, url, said = preview
    with browser_page() as page:
        page.goto(url + "feeds/topic/alpha/index.html")
        assert "The first title" in page.inner_text("body")
        path = site.root / "content" / "a.md"
        path.write_text(path.read_text().replace("The first title", "An edited title"))
        page.wait_for_function("() => document.body.innerText.includes('An edited title')", timeout=15_000)

        (site.root / "bulletin.toml").write_text("base_url = [broken\n")
        page.wait_for_selector("#bulletin-errors", timeout=15_000)
        assert "not valid TOML" in page.inner_text("#bulletin-errors")
        assert (
            "An edited title" in httpx.get(url + "feeds/topic/alpha/index.html").text
        )  # the last good build
    assert any("not valid TOML" in line for line in said)  # and in the terminal


def test_a_templates_folder_made_while_watching_is_used(preview: tuple[SiteMaker, str, list[str]]) -> None:
    """It used to be ignored until serve was started again, a broken template included."""
    site, url, said = preview
    shipped = Path(__file__).parent.parent / "src/bulletin/templates/_feeds_base.html.j2"
    (site.root / "templates").mkdir()
    (site.root / "templates" / "_feeds_base.html.j2").write_text(
        shipped.read_text(encoding="utf-8").replace("</body>", "<!-- own template --></body>"),
        encoding="utf-8",
    )
    deadline = time.monotonic() + 15
    while "own template" not in httpx.get(url + "feeds/topic/alpha/index.html").text:
        assert time.monotonic() < deadline, said
        time.sleep(0.1)
    assert any(line.startswith("rebuilt: 1 item, ") and "digest file" in line for line in said), said
    (site.root / "templates" / "digest.html.j2").write_text("{% if x %}broken", encoding="utf-8")
    while not any("templates/digest.html.j2" in line for line in said):
        assert time.monotonic() < deadline, said
        time.sleep(0.1)


def test_the_preview_answers_only_for_its_own_host(preview: tuple[SiteMaker, str, list[str]]) -> None:
    _, url, _ = preview
    # A page elsewhere could point a name of its own at 127.0.0.1 (DNS rebinding) and read the preview.
    assert httpx.get(url, headers={"host": "rebind.example"}).status_code == 400
    assert httpx.get(url + "preview/digest", headers={"host": "rebind.example"}).status_code == 400
    assert httpx.get(url, headers={"host": "localhost"}).status_code == 200
    assert httpx.get(url).status_code == 200


def test_the_digest_preview_says_there_are_no_items_when_content_is_gone(
    preview: tuple[SiteMaker, str, list[str]],
) -> None:
    site, url, _ = preview
    (site.root / "content").rename(site.root / "content.away")
    digest = httpx.get(url + "preview/digest", params={"week": "2026-W47"})
    assert digest.status_code == 503, digest.text
    assert "No items" in digest.text and "content/: error: is missing" in digest.text


def test_serve_watch_needs_no_secret(site: SiteMaker) -> None:
    """The preview mails no subscriber: without BULLETIN_SECRET it used to refuse to start,
    the first thing a newcomer meets when they want to click through the example site."""
    import os
    import subprocess
    import sys

    site.write_config(digest={"from": "News <news@news.example.org>", "address": "1 Main Street"})
    site.item("a.md", title="The first title", categories=["Alpha"], date="2026-11-17")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BULLETIN_SECRET"}
    command = [
        sys.executable,
        "-m",
        "bulletin",
        "serve",
        "--watch",
        "--port",
        str(port),
        "--site",
        str(site.root),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert "the preview signs its links with a throwaway secret" in "".join(lines), lines
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/feeds/index.html")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the preview did not answer"
                time.sleep(0.1)
        assert page.status_code == 200 and f"http://127.0.0.1:{port}/feeds/" in page.text
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_configuration_errors_name_their_line_as_build_says_them(site: SiteMaker) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    site.item("a.md", categories=["Alpha"])
    (site.root / "bulletin.toml").write_text(
        'base_url = "https://news.example.org/"\n\n[digest]\nsection_items = 0\nfeed_item = 5\n'
    )
    said: list[str] = []
    Preview(site.root, "http://127.0.0.1:9/", site.root.parent / "scratch", said.append).rebuild()
    built = CliRunner().invoke(main, ["build", "--site", str(site.root)])
    assert built.exit_code == 2
    expected = [
        "bulletin.toml:4: error: digest.section_items: 0 is out of range; write a whole number from 1 to 1000",
        "bulletin.toml:5: error: digest.feed_item: unknown key; remove it or check its spelling "
        "(see README, Configuration)",
    ]
    assert (said, built.stderr.splitlines()) == (expected, expected)
