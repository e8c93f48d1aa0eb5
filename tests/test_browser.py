"""The subscriber's whole journey in a real browser: subscribe → the mail → confirm → manage
→ a digest with exactly the new topics → unsubscribe → no more digests."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from click.testing import CliRunner

from bulletin.cli import main
from bulletin.ledger import Ledger

from .browser import browser_page, needs_chromium, page_elsewhere
from .conftest import SiteMaker
from .smtp import SmtpServer, free_port
from .webserver import WebServer, form_token

SECRET = "browser-secret-0123456789"


def _mail(server: SmtpServer, address: str, index: int = -1) -> EmailMessage:
    return email.message_from_bytes(server.handler.to(address)[index].data, policy=email.policy.default)  # type: ignore[return-value]


def _link(message: EmailMessage, route: str) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"(https?://\S+/{route}/\S+)", text)
    assert found, text
    return found.group(1)


def _mail_and_web(site: SiteMaker, smtp_port: int, port: int) -> None:
    """The site's mail keys, its relay on `smtp_port` and its web side on `port`."""
    site.write_config(
        digest={"from": "Test News <news@news.example.org>", "address": "1 Main Street"},
        smtp={"host": "127.0.0.1", "port": smtp_port},
        web={"url": f"http://127.0.0.1:{port}/"},
    )


@needs_chromium
def test_subscribe_confirm_manage_send_unsubscribe(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)
    port = free_port()
    with SmtpServer() as smtp:
        _mail_and_web(site, smtp.port, port)
        site.item(
            "a.md", title="Alpha story", categories=["Alpha"], date="2026-11-17", href="https://src.example/a"
        )
        site.item(
            "b.md", title="Beta story", categories=["Beta"], date="2026-11-18", href="https://src.example/b"
        )
        Ledger.open(site.root / ".bulletin" / "ledger.sqlite", create=True).close()
        with WebServer(site.root, SECRET, port=port) as web, browser_page() as page:
            page.goto(web.url)
            page.fill("#email", "reader@example.org")
            page.fill("#name", "Reader")
            page.check("input[value=alpha]")
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.inner_text("h1") == "Check your inbox"
            web.settle()  # the mail goes out after the answer

            page.goto(_link(_mail(smtp, "reader@example.org"), "confirm"))
            with page.expect_navigation():
                page.click("button:has-text('Confirm')")
            assert page.inner_text("h1") == "You are subscribed"

            with page.expect_navigation():
                page.click("text=Choose your topics")
            assert page.is_checked("input[value=alpha]")
            page.uncheck("input[value=alpha]")
            page.check("input[value=beta]")
            with page.expect_navigation():
                page.click("button[value=save]")
            assert "Saved" in page.inner_text("main")
            page.reload()  # shows the saved page again: the form is not sent twice
            assert "Saved" in page.inner_text("main") and page.is_checked("input[value=beta]")

            sent = CliRunner().invoke(
                main, ["send", "--local-links", "--site", str(site.root), "--now", "2026-11-25T12:00"]
            )
            assert sent.exit_code == 0, sent.output
            digest = _mail(smtp, "reader@example.org")
            html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
            assert "Beta story" in html and "Alpha story" not in html
            assert "Hi Reader," in html

            page.goto(_link(digest, "manage"))  # the digest's footer links their own page
            assert page.inner_text("h1") == "Your subscription" and page.is_checked("input[value=beta]")

            page.goto(_link(digest, "unsubscribe"))
            with page.expect_navigation():
                page.click("button:has-text('Unsubscribe')")
            assert page.inner_text("h1") == "You are unsubscribed"

        site.item("c.md", title="Next week", categories=["Beta"], date="2026-11-24")
        before = len(smtp.handler.received)
        again = CliRunner().invoke(
            main, ["send", "--local-links", "--site", str(site.root), "--now", "2026-12-02T12:00"]
        )
        assert again.exit_code == 0, again.output
        assert len(smtp.handler.received) == before  # nobody is left to mail


@needs_chromium
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"], ids=["another-site", "another-port"])
def test_a_form_another_sites_page_posts_is_refused_and_this_sites_is_taken(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """A page elsewhere fetches a form token and posts it from its visitors' browsers: their
    own address, and whatever address the page chose, would go into the consent record."""
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)
    port = free_port()
    with SmtpServer() as smtp:
        _mail_and_web(site, smtp.port, port)
        site.item("a.md", title="Alpha story", categories=["Alpha"], date="2026-11-17")
        Ledger.open(site.root / ".bulletin" / "ledger.sqlite", create=True).close()
        with WebServer(site.root, SECRET, port=port) as web, browser_page() as page:
            token = form_token(web.client.get("/subscribe").text)
            forged = (
                f'<form method="post" action="{web.url}subscribe"><input name="form" value="{token}">'
                '<input name="email" value="victim@example.org"></form>'
                "<script>document.forms[0].submit()</script>"
            )
            with page_elsewhere(host, forged) as elsewhere:
                page.goto(elsewhere)
                page.wait_for_url(f"{web.url}subscribe")
            assert page.inner_text("h1") == "This form was sent from another site"
            page.goto(web.url)
            page.fill("#email", "reader@example.org")
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.inner_text("h1") == "Check your inbox"
            web.settle()
        assert [r.recipient for r in smtp.handler.received] == ["reader@example.org"]


@needs_chromium
def test_a_published_page_keeps_its_styles_and_runs_no_script(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """feeds/ and emails/ hold what templates and content made: a script slipped into one
    (a site's own template, a file copied there) must not run on the subscriber's side."""
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)
    with SmtpServer() as smtp:
        site.write_config(
            digest={"from": "Test News <news@news.example.org>", "address": "1 Main Street"},
            smtp={"host": "127.0.0.1", "port": smtp.port},
        )
        site.item("a.md", title="Alpha story", categories=["Alpha"], date="2026-11-17")
        assert CliRunner().invoke(main, ["build", "--site", str(site.root)]).exit_code == 0
        (site.root / "feeds" / "slipped.html").write_text(
            "<!DOCTYPE html><html><head><style>h1 { color: rgb(1, 2, 3) }</style></head><body>"
            '<h1 style="margin-left: 7px">Slipped</h1><script>document.title = "ran"</script></body></html>'
        )
        Ledger.open(site.root / ".bulletin" / "ledger.sqlite", create=True).close()
        with WebServer(site.root, SECRET) as web, browser_page() as page:
            page.goto(f"{web.url}feeds/slipped.html")
            assert page.title() == ""  # the script did not run
            assert page.eval_on_selector("h1", "h => getComputedStyle(h).color") == "rgb(1, 2, 3)"
            assert page.eval_on_selector("h1", "h => getComputedStyle(h).marginLeft") == "7px"
            page.goto(f"{web.url}feeds/")  # the published index, as built, styled as before
            assert page.eval_on_selector("body", "b => getComputedStyle(b).fontSize") == "15px"


@needs_chromium
@pytest.mark.parametrize("width", [375, 1200])
def test_long_unbroken_words_wrap_instead_of_widening_pages_and_the_digest(
    site: SiteMaker, width: int
) -> None:
    """A title with no spaces, a long URL in a summary, a 170-character topic name: every
    page and the digest stay as wide as the window (they used to scroll sideways)."""
    site.write_config(
        digest={"from": "News <news@news.example.org>", "address": "1 Main Street, Springfield"}
    )
    topic = "Topic" + "x" * 165
    site.item("a.md", title="Supercalifragilistic" * 12, categories=[topic], date="2026-11-18",
              description="See https://example.org/" + "a-long-path-segment/" * 16 + " now")  # fmt: skip
    site.item("b.md", title="Short", categories=["Short"], date="2026-11-19")
    result = CliRunner().invoke(main, ["build", "--site", str(site.root), "--now", "2026-11-25T12:00"])
    assert result.exit_code == 0, result.output
    topic_page = next((site.root / "feeds" / "topic").glob("topicx*/index.html"))
    pages = [
        topic_page,
        site.root / "feeds" / "index.html",
        site.root / "emails" / "2026-W47" / "digest.html",
    ]
    with browser_page(width, 800) as page:
        for path in pages:
            page.goto(path.as_uri())
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{path.relative_to(site.root)} is {wide} px wide in a {width} px window"
