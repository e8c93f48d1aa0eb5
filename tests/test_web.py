"""The subscriber's side over real HTTP (uvicorn on 127.0.0.1) and real SMTP."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import html
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from bulletin.ledger import Ledger
from bulletin.subscriptions import Consent, Subscriptions
from bulletin.tokens import make_form_token, make_purpose_token, make_token
from bulletin.web.guard import client_address, rate_key

from .conftest import DATA, SiteMaker
from .smtp import Script, SmtpServer, free_port
from .webserver import WebServer, form_token, link

SECRET = "web-secret-0123456789"
LIST_ID = "test-news.news.example.org"
PUBLIC = "http://127.0.0.1/"  # web.url: the server itself listens on a free port
MAIL = {"from": "Test News <news@news.example.org>", "address": "1 Main Street, Springfield"}


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)


def web_site(site: SiteMaker, smtp_port: int, **web: object) -> SiteMaker:
    site.write_config(
        digest=dict(MAIL),
        smtp={"host": "127.0.0.1", "port": smtp_port},
        web={"url": PUBLIC, **web},
    )
    site.item("a.md", title="Alpha one", categories=["Alpha"], date="2026-11-18")
    site.item("b.md", title="Beta one", categories=["Beta"], date="2026-11-19")
    Ledger.open(site.root / ".bulletin" / "ledger.sqlite", create=True).close()
    return site


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def web(site: SiteMaker, smtp: SmtpServer) -> Iterator[WebServer]:
    web_site(site, smtp.port)
    with WebServer(site.root, SECRET) as server:
        yield server


def ledger_rows(site: SiteMaker) -> dict[str, list[tuple[object, ...]]]:
    """Everything the ledger holds about people, to prove a request changed nothing."""
    db = sqlite3.connect(site.root / ".bulletin" / "ledger.sqlite")
    try:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}")) for table in ("subscribers", "suppressed")
        }
    finally:
        db.close()


def store(site: SiteMaker) -> Subscriptions:
    return Subscriptions(Ledger.open(site.root / ".bulletin" / "ledger.sqlite"))


def subscribe(web: WebServer, address: str, *topics: str, name: str = "") -> tuple[int, str]:
    """Send the subscribe form; return its answer once the mail (sent after it) is out too."""
    page = web.client.get("/subscribe").text
    data = {"form": form_token(page), "email": address, "name": name, "topics": list(topics), "website": ""}
    response = seen(web, web.client.post("/subscribe", data=data))
    web.settle()
    return response.status_code, response.text


def seen(web: WebServer, response: httpx.Response) -> httpx.Response:
    """The page a form's answer leads to: a 303 to web.url's route, followed here; any other
    answer as it is (a refusal, a form with its errors)."""
    if response.status_code != 303:
        return response
    location = response.headers["location"]
    assert location.startswith(PUBLIC), location  # never the Host header's
    return web.client.get("/" + location.removeprefix(PUBLIC))


def last_mail(smtp: SmtpServer, address: str) -> EmailMessage:
    mails = smtp.handler.to(address)
    assert mails, f"no mail to {address}"
    return email.message_from_bytes(mails[-1].data, policy=email.policy.default)  # type: ignore[return-value]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr, no-any-return]


def confirm(web: WebServer, smtp: SmtpServer, address: str) -> str:
    """Follow the confirmation mail's link and press its button; the confirm path."""
    path = link(text_of(last_mail(smtp, address)), "confirm")
    page = web.client.get(path)
    assert page.status_code == 200 and "Confirm" in page.text
    done = seen(web, web.client.post(path, data={"form": form_token(page.text)}))
    assert done.status_code == 200, done.text
    return path


# -- double opt-in ----------------------------------------------------------------------------


def test_subscribe_mails_a_link_and_only_the_post_of_confirm_activates(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    status, page = subscribe(web, "Ann@Example.org", "alpha", name="Ann")
    assert status == 200 and "Check your inbox" in page
    row = store(site).get("Ann@Example.org")
    assert row is not None and row.status == "pending" and row.topics == frozenset({"alpha"})
    assert row.consent_url == "http://127.0.0.1/subscribe" and row.consent_ip == "127.0.0.1"
    assert row.consent_text and "one email a week" in row.consent_text
    mail = last_mail(smtp, "Ann@Example.org")
    assert mail["Subject"] == "Confirm your subscription to Test News"
    assert mail.get_body(("html",)) is not None
    path = link(text_of(mail), "confirm")
    assert web.client.get(path).status_code == 200
    assert store(site).get("Ann@Example.org").status == "pending"  # type: ignore[union-attr]  # a GET changes nothing
    confirm(web, smtp, "Ann@Example.org")
    row = store(site).get("Ann@Example.org")
    assert row is not None and row.status == "active" and row.confirmed and row.email == "Ann@Example.org"
    again = web.client.get(path)  # where the button led (a 303), and the link opened once more
    assert "You are subscribed" in again.text and "<button" not in again.text
    assert "Choose your topics" in again.text


def test_the_confirm_page_shows_what_it_confirms(site: SiteMaker, smtp: SmtpServer, web: WebServer) -> None:
    subscribe(web, "ann@example.org", "beta", "alpha", name="Ann <b>")
    page = web.client.get(link(text_of(last_mail(smtp, "ann@example.org")), "confirm")).text
    assert (
        "Digests go to <strong><bdi>ann@example.org</bdi></strong> and greet you as <bdi>Ann &lt;b&gt;</bdi>."
        in page
    )
    assert "Topics: Alpha, Beta." in page
    # A name in a right-to-left script keeps to itself: the full stop stays at the sentence's end.
    subscribe(web, "dana@example.org", name="\u05d3\u05e0\u05d4 2")
    page = web.client.get(link(text_of(last_mail(smtp, "dana@example.org")), "confirm")).text
    assert "greet you as <bdi>\u05d3\u05e0\u05d4 2</bdi>." in page
    subscribe(web, "bob@example.org")
    page = web.client.get(link(text_of(last_mail(smtp, "bob@example.org")), "confirm")).text
    assert (
        "Digests go to <strong><bdi>bob@example.org</bdi></strong>." in page
        and "Topics: every topic." in page
    )


def test_a_later_request_by_anyone_is_not_confirmed_by_the_first_link(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """Someone else re-entering a pending address used to replace its name and topics, and
    the owner's first link then confirmed the replacement."""
    subscribe(web, "fay@example.org", "alpha", name="Fay")
    first = link(text_of(last_mail(smtp, "fay@example.org")), "confirm")
    form = form_token(web.client.get(first).text)  # the page was open before the second request
    subscribe(web, "FAY@example.org", "beta", name="Spam King")
    second = link(text_of(last_mail(smtp, "FAY@example.org")), "confirm")
    assert second != first
    for answer in (web.client.get(first), web.client.post(first, data={"form": form})):
        assert answer.status_code == 400 and "This link is for an earlier request" in answer.text
    row = store(site).get("fay@example.org")
    assert row is not None and row.status == "pending"
    page = web.client.get(second).text  # the newest link says what it would confirm
    assert "greet you as <bdi>Spam King</bdi>" in page and "Topics: Beta." in page


def test_the_page_never_says_whether_an_address_is_known(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    first = subscribe(web, "ann@example.org", "alpha")
    confirm(web, smtp, "ann@example.org")
    again = subscribe(web, "ann@example.org", "beta")
    new = subscribe(web, "bob@example.org", "beta")
    assert first == again == new
    assert "/manage/" in text_of(last_mail(smtp, "ann@example.org"))  # the known address gets its manage link
    assert store(site).get("ann@example.org").topics == frozenset({"alpha"})  # type: ignore[union-attr]


def test_three_mails_a_day_per_address_then_the_same_page_and_no_mail(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    pages = [subscribe(web, "ann@example.org") for _ in range(4)]
    assert len({p for p in pages}) == 1
    assert len(smtp.handler.to("ann@example.org")) == 3


@pytest.mark.parametrize(
    "spellings",
    [
        [f"flood+{n}@example.org" for n in range(8)],
        [
            "ann@gmail.com",
            "a.nn@gmail.com",
            "A.N.N+x@GoogleMail.com",
            "ann+@googlemail.com",
            "an.n+y@gmail.com",
        ],
    ],
    ids=["tags", "gmail"],
)
def test_three_mails_a_day_per_mailbox_whatever_the_tag_or_dots(
    site: SiteMaker, smtp: SmtpServer, spellings: list[str]
) -> None:
    web_site(site, smtp.port, rate_per_minute=60)
    with WebServer(site.root, SECRET) as web:
        pages = {subscribe(web, address) for address in spellings}
    assert len(pages) == 1  # the same page whether mailed or not
    assert [r.recipient for r in smtp.handler.received] == spellings[:3]  # as written, as are their rows
    assert [row[1] for row in ledger_rows(site)["subscribers"]] == sorted(spellings[:3], key=str.lower)


def test_a_relay_that_is_down_leaves_nothing_half_done(
    site: SiteMaker, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    web_site(site, port)  # nothing listens there
    with WebServer(site.root, SECRET) as web:
        status, page = subscribe(web, "ann@example.org", "alpha")
    assert status == 503 and "try again later" in page
    assert '<a href="/subscribe">Back to the subscribe page</a>' in page
    assert ledger_rows(site)["subscribers"] == []
    # The operator learns why (the relay, never the address).
    (record,) = [r for r in caplog.records if r.name == "bulletin.web"]
    assert f"the relay 127.0.0.1:{port} cannot be used" in record.getMessage()
    assert "ann@example.org" not in record.getMessage()
    # send's advice (run it again, it resumes) is no advice to a server
    assert record.getMessage().endswith("check smtp.host and smtp.port")


def test_the_honeypot_shows_the_usual_page_and_changes_nothing(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    page = web.client.get("/subscribe").text
    response = web.client.post(
        "/subscribe",
        data={"form": form_token(page), "email": "bot@example.org", "website": "https://spam.example"},
    )
    assert response.status_code == 303 and response.headers["location"] == PUBLIC + "subscribe/sent"
    assert "Check your inbox" in seen(web, response).text
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


# -- manage and unsubscribe --------------------------------------------------------------------


def _active(site: SiteMaker, address: str, topics: frozenset[str] | None = None) -> None:
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        Subscriptions(ledger).add(address, "", topics, datetime.now(UTC), "cli")


def test_manage_changes_name_and_topics_then_leaves(site: SiteMaker, web: WebServer) -> None:
    _active(site, "ann@example.org", frozenset({"alpha"}))
    path = "/manage/" + make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID)
    page = web.client.get(path)
    assert page.status_code == 200 and 'value="alpha" checked' in page.text
    answer = web.client.post(
        path, data={"form": form_token(page.text), "name": "Ann <b>", "topics": ["beta"], "action": "save"}
    )
    # Post/Redirect/Get: Reload shows the saved page again, and sends nothing.
    assert answer.status_code == 303 and answer.headers["location"] == PUBLIC + path[1:] + "?saved=1"
    saved = seen(web, answer)
    assert saved.status_code == 200 and "Saved" in saved.text and "Ann &lt;b&gt;" in saved.text
    assert 'value="beta" checked' in saved.text and "Saved" not in web.client.get(path).text
    row = store(site).get("ann@example.org")
    assert row is not None and row.topics == frozenset({"beta"}) and row.name == "Ann <b>"
    left = seen(web, web.client.post(path, data={"form": form_token(saved.text), "action": "leave"}))
    assert left.status_code == 200 and "You are unsubscribed" in left.text
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_one_click_unsubscribe_is_a_bare_post_answered_200(site: SiteMaker, web: WebServer) -> None:
    _active(site, "ann@example.org")
    token = make_token("ann@example.org", SECRET, LIST_ID)
    response = web.client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        assert ledger.suppression("ann@example.org") == "unsubscribed"
    # The link opened afterwards says so, where it offered "one click" again; and so for a
    # CSV subscriber, whom only the suppression list knows.
    again = web.client.get(f"/unsubscribe/{token}")
    assert "Not subscribed" in again.text and "One click" not in again.text
    csv_only = make_token("csv-only@example.org", SECRET, LIST_ID)
    assert "One click and you get no more digests." in web.client.get(f"/unsubscribe/{csv_only}").text
    web.client.post(
        f"/unsubscribe/{csv_only}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "Not subscribed" in web.client.get(f"/unsubscribe/{csv_only}").text


def test_the_unsubscribe_link_may_carry_its_token_as_a_query(site: SiteMaker, web: WebServer) -> None:
    """unsubscribe_url = ".../unsubscribe?token={token}" (the example site's, and many a list's)
    was a 404 from serve, the one-click POST included."""
    _active(site, "ann@example.org")
    _active(site, "bob@example.org")
    token = make_token("ann@example.org", SECRET, LIST_ID)
    page = web.client.get("/unsubscribe", params={"token": token})
    assert page.status_code == 200 and "One click and you get no more digests." in page.text
    forged = web.client.get("/unsubscribe", params={"token": token[:-2] + "xx"})
    bad = web.client.get("/unsubscribe/" + token[:-2] + "xx")
    assert (forged.status_code, forged.text) == (bad.status_code, bad.text)  # the same "not valid" page
    assert web.client.get("/unsubscribe").text == bad.text
    # A link rewritten on the way (base64's / for _) still verifies; the form posts to the
    # token as bulletin wrote it, which a route takes.
    odd = next(
        a
        for a in (f"x{n}?@example.org" for n in range(500))
        if "_" in make_token(a, SECRET, LIST_ID).split(".")[0]
    )
    written = make_token(odd, SECRET, LIST_ID)
    rewritten = written.split(".")[0].replace("_", "/") + "." + written.split(".")[1]
    shown = web.client.get("/unsubscribe", params={"token": rewritten})
    assert (
        shown.status_code == 200 and f"/unsubscribe/{written}" in shown.text and rewritten not in shown.text
    )
    assert store(site).get("ann@example.org").status == "active"  # type: ignore[union-attr]  # GET changes nothing
    response = web.client.post(
        "/unsubscribe",
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert store(site).get("bob@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_one_click_from_curl(site: SiteMaker, web: WebServer) -> None:
    token = make_token("csv-only@example.org", SECRET, LIST_ID)  # a CSV subscriber: not in the table
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-d",
            "List-Unsubscribe=One-Click",
            f"{web.url}unsubscribe/{token}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "200"
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        assert ledger.suppression("csv-only@example.org") == "unsubscribed"


def test_the_unsubscribe_page_has_a_button_and_its_post_unsubscribes(site: SiteMaker, web: WebServer) -> None:
    _active(site, "ann@example.org")
    path = "/unsubscribe/" + make_token("ann@example.org", SECRET, LIST_ID)
    page = web.client.get(path)
    assert page.status_code == 200 and "<button" in page.text
    assert "This link is for <strong><bdi>ann@example.org</bdi></strong>." in page.text  # which inbox leaves
    manage = PUBLIC + "manage/" + make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID)
    assert f'<p class="instead"><a href="{manage}">Or change your topics instead</a>' in page.text
    # A subscriber from a CSV, unknown to the ledger, would find 'Not subscribed' there.
    other = web.client.get("/unsubscribe/" + make_token("csv@example.org", SECRET, LIST_ID)).text
    assert "<button" in other and "change your topics" not in other
    assert store(site).get("ann@example.org").status == "active"  # type: ignore[union-attr]
    answer = web.client.post(path, data={"form": form_token(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == PUBLIC + "unsubscribed"
    assert "You are unsubscribed" in seen(web, answer).text
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]


# -- nothing changes on a GET or on bad input ---------------------------------------------------


def test_no_get_changes_anything(site: SiteMaker, smtp: SmtpServer, web: WebServer) -> None:
    _active(site, "ann@example.org")
    subscribe(web, "bob@example.org")
    before = ledger_rows(site)
    expires = int(time.time()) + 3600
    for path in (
        "/confirm/" + make_purpose_token("confirm", "bob@example.org", SECRET, LIST_ID, expires),
        "/manage/" + make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID),
        "/unsubscribe/" + make_token("ann@example.org", SECRET, LIST_ID),
        "/subscribe?email=carol@example.org",
        "/",
    ):
        assert web.client.get(path).status_code == 200, path
        assert web.client.head(path).status_code == 200, path
    assert ledger_rows(site) == before


def test_a_confirm_link_names_its_request_under_the_signature(site: SiteMaker) -> None:
    from bulletin.tokens import verify_confirm_token

    expires = int(time.time()) + 3600
    asked = "2026-11-25T12:00:00.123456+00:00"
    token = make_purpose_token("confirm", "ann@example.org", SECRET, LIST_ID, expires, asked)
    assert verify_confirm_token(token, SECRET, LIST_ID) == ("ann@example.org", asked)
    signature = token.split(".")[1]
    other = base64.urlsafe_b64encode(f"ann@example.org\n{expires}\n2026-11-26".encode()).rstrip(b"=")
    assert verify_confirm_token(f"{other.decode()}.{signature}", SECRET, LIST_ID) is None
    # A link mailed before links named their request confirms whatever is pending.
    old = make_purpose_token("confirm", "ann@example.org", SECRET, LIST_ID, expires)
    assert verify_confirm_token(old, SECRET, LIST_ID) == ("ann@example.org", "")


def _expired(address: str) -> str:
    return make_purpose_token("confirm", address, SECRET, LIST_ID, int(time.time()) - 1)


@pytest.mark.parametrize(
    ("route", "token", "method"),
    [
        ("confirm", lambda: "forged." + "A" * 22, "post"),
        ("confirm", lambda: _expired("ann@example.org"), "post"),
        ("confirm", lambda: make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID), "post"),
        ("confirm", lambda: make_token("ann@example.org", SECRET, LIST_ID), "post"),
        ("manage", lambda: make_purpose_token("confirm", "ann@example.org", SECRET, LIST_ID, 2**40), "post"),
        ("manage", lambda: make_token("ann@example.org", SECRET, LIST_ID), "get"),
        ("unsubscribe", lambda: make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID), "post"),
        ("unsubscribe", lambda: make_token("ann@example.org", "another-secret-0123", LIST_ID), "get"),
    ],
)
def test_forged_expired_and_cross_purpose_tokens_are_refused(
    site: SiteMaker, web: WebServer, route: str, token: object, method: str
) -> None:
    subscribe(web, "ann@example.org")
    before = ledger_rows(site)
    path = f"/{route}/{token()}"  # type: ignore[operator]
    if method == "get":
        response = web.client.get(path)
    else:
        page_token = make_form_token(route, SECRET, LIST_ID)
        response = web.client.post(path, data={"form": page_token, "action": "leave"})
    assert response.status_code == 400 and "This link does not work" in response.text
    assert ledger_rows(site) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-address"}, "Please enter an email address"),
        ({"email": "a@b"}, "Please enter an email address"),
        ({"email": "ann@example.org", "topics": ["nope"]}, "Please choose topics from the list"),
        ({"email": "ann@example.org", "topics": ["alpha", "alpha"]}, "Please choose topics from the list"),
        ({"email": "ann@example.org", "topics": [f"t{n}" for n in range(1000)]}, "Please choose topics"),
        ({"email": "ann@example.org", "form": "garbage"}, "This form can no longer be sent"),
        ({"email": "ann@example.org", "form": None}, "This form did not come from this site"),
        ({"email": "ann@example.org", "form": ""}, "This form did not come from this site"),
    ],
)
def test_bad_subscriptions_get_a_clear_page_and_change_nothing(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, data: dict[str, object], message: str
) -> None:
    page = web.client.get("/subscribe").text
    sent = {"form": form_token(page), **data}
    if sent["form"] is None:
        del sent["form"]
    response = web.client.post("/subscribe", data=sent)
    assert 400 <= response.status_code < 500 and message in response.text
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


def test_a_form_error_is_tied_to_its_field(site: SiteMaker, smtp: SmtpServer, web: WebServer) -> None:
    """A message already on the page when it loads is often not read out: the field says it."""
    status, page = subscribe(web, "not-an-address")
    assert status == 400 and "<title>Error: Subscribe · Test News</title>" in page
    assert '<p class="error" role="alert" id="form-error">' in page
    field = re.search(r'<input type="email"[^>]*>', page)
    assert field and 'aria-invalid="true" aria-describedby="form-error" autofocus' in field.group(0)
    status, page = subscribe(web, "ann@example.org", "nope")
    assert '<fieldset aria-describedby="topics-hint form-error">' in page
    assert "aria-invalid" not in page and page.count("autofocus") == 1


def test_pages_have_banner_main_and_footer_landmarks(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """The header and footer sat inside <main>, so no page had a banner or a contentinfo."""
    for path in ("/", "/subscribe", "/no-such-page"):
        page = web.client.get(path, follow_redirects=False).text
        header, main, end, footer = (page.index(tag) for tag in ("<header", "<main>", "</main>", "<footer"))
        assert header < main < end < footer, path


def test_a_sites_own_form_template_from_before_still_prints_the_error(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """{{ error }} was the message; it is a FormError now, whose text is what it prints."""
    shipped = Path(__file__).parent.parent / "src/bulletin/templates/_web_subscribe_form.html.j2"
    (site.root / "templates").mkdir()
    (site.root / "templates/_web_subscribe_form.html.j2").write_text(
        shipped.read_text(encoding="utf-8").replace("{{ error.text }}", "{{ error }}"), encoding="utf-8"
    )
    status, page = subscribe(web, "not-an-address")
    assert status == 400 and ">Please enter an email address such as name@example.org.</p>" in page


def test_ten_thousand_topics_are_refused_by_size(site: SiteMaker, web: WebServer) -> None:
    data = {"form": "x", "email": "ann@example.org", "topics": ["alpha"] * 10_000}
    response = web.client.post("/subscribe", data=data)
    assert response.status_code == 413
    assert ledger_rows(site)["subscribers"] == []


def test_a_replayed_form_is_refused(site: SiteMaker, smtp: SmtpServer, web: WebServer) -> None:
    page = web.client.get("/subscribe").text
    data = {"form": form_token(page), "email": "ann@example.org"}
    assert web.client.post("/subscribe", data=data).status_code == 303
    replayed = web.client.post("/subscribe", data={**data, "email": "bob@example.org"})
    assert replayed.status_code == 400 and "sent already" in replayed.text
    assert store(site).get("bob@example.org") is None


def test_a_form_sent_again_by_reload_links_back_to_its_page(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """A form sent twice (Back, then the button again) is refused with a way on: the answer
    used to be a dead end."""
    _active(site, "ann@example.org")
    path = "/manage/" + make_purpose_token("manage", "ann@example.org", SECRET, LIST_ID)
    data = {"form": form_token(web.client.get(path).text), "action": "save", "topics": ["beta"]}
    assert web.client.post(path, data=data).status_code == 303
    again = web.client.post(path, data=data)
    assert again.status_code == 400 and "This form was sent already" in again.text
    assert f'href="{path}"' in again.text and "Open the page again" in again.text
    old = make_form_token("manage", SECRET, LIST_ID, now=time.time() - 3 * 3600)
    stale = web.client.post(path, data={**data, "form": old})
    assert "This form can no longer be sent" in stale.text and f'href="{path}"' in stale.text


def test_a_form_from_another_list_sharing_the_secret_is_refused(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, tmp_path: Path
) -> None:
    """Two sites served with one BULLETIN_SECRET took each other's form tokens."""
    other = web_site(SiteMaker(tmp_path / "other"), smtp.port)
    other.write_config(title="Other News")  # another list id: other-news.news.example.org
    with WebServer(other.root, SECRET) as elsewhere:
        token = form_token(elsewhere.client.get("/subscribe").text)
    refused = web.client.post("/subscribe", data={"form": token, "email": "ann@example.org"})
    assert refused.status_code == 400 and "This form can no longer be sent" in refused.text
    taken = web.client.post("/subscribe", data={"form": make_form_token("subscribe", SECRET, LIST_ID),
                                                "email": "ann@example.org"})  # fmt: skip
    assert taken.status_code == 303


def test_requests_are_limited_per_client(site: SiteMaker, smtp: SmtpServer) -> None:
    web_site(site, smtp.port, rate_per_minute=3)
    with WebServer(site.root, SECRET) as web:
        codes = [subscribe(web, f"p{n}@example.org")[0] for n in range(4)]
        page = web.client.get("/subscribe").text
        busy = web.client.post("/subscribe", data={"form": form_token(page), "email": "p9@example.org"})
    assert codes == [200, 200, 200, 429]
    assert busy.status_code == 429 and busy.headers["retry-after"] == "60"


@pytest.mark.parametrize("root", ["/sub", "/subscribe", "/news"])
def test_a_forms_result_is_at_web_url_under_a_root_path(site: SiteMaker, smtp: SmtpServer, root: str) -> None:
    """uvicorn --root-path behind a proxy: '/sub' was cut from '/subscribe/sent' as text,
    and the result went to '…/sub/scribe/sent', a 404 ('/subscribe' as the root: '/sent')."""
    web_site(site, smtp.port)
    site.write_config(digest=dict(MAIL), smtp={"host": "127.0.0.1", "port": smtp.port},
                      web={"url": f"http://127.0.0.1{root}/"})  # fmt: skip
    (site.root / "emails" / "2026-W47").mkdir(parents=True)
    (site.root / "emails" / "2026-W47" / "digest.html").write_text("<p style='color: red'>x</p>\n")
    with WebServer(site.root, SECRET, root_path=root) as web:
        page = web.client.get("/subscribe").text  # the proxy took the prefix off
        data = {"form": form_token(page), "email": "ann@example.org", "website": ""}
        answer = web.client.post("/subscribe", data=data)
        # A digest's inline styles are its own (the published pages' CSP, not the pages'
        # default-src 'self'); /healthz answers any host.
        digest = web.client.get("/emails/2026-W47/digest.html")
        health = web.client.get("/healthz", headers={"host": "10.0.0.5"})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"http://127.0.0.1{root}/subscribe/sent"
    assert digest.status_code == 200
    assert "style-src 'self' 'unsafe-inline'" in digest.headers["content-security-policy"]
    assert health.status_code == 200


def test_the_route_below_any_root_path() -> None:
    from bulletin.web.guard import _below

    assert _below("/healthz", "") == "/healthz"
    assert _below("//healthz", "/") == "/healthz"  # uvicorn --root-path /
    assert _below("/x//healthz", "/x/") == "/healthz"
    assert _below("/sub/feeds/rss.xml", "/sub") == "/feeds/rss.xml"
    assert _below("/subscribe", "/sub") == "/subscribe"  # not cut inside a name


def test_client_addresses_count_forwarded_for_only_from_trusted_proxies() -> None:
    assert client_address("203.0.113.9", "198.51.100.1", ()) == "203.0.113.9"
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.1", ("127.0.0.1",)) == "198.51.100.1"
    assert client_address("10.0.0.2", "198.51.100.1, 10.0.0.1", ("10.0.0.0/8",)) == "198.51.100.1"


# -- pages and files -----------------------------------------------------------------------------


def _post_subscribe(web: WebServer, address: str, headers: dict[str, str]) -> httpx.Response:
    page = web.client.get("/subscribe").text
    data = {"form": form_token(page), "email": address, "website": ""}
    answer = web.client.post("/subscribe", data=data, headers=headers)
    web.settle()
    return answer


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://attacker.example"},
        {"origin": "null"},  # a sandboxed frame
        {"origin": "null", "sec-fetch-site": "same-site"},  # a page of a sibling site under no-referrer
        {"origin": "https://127.0.0.1"},  # web.url's host, another scheme
        {"origin": "http://127.0.0.1:8080"},  # and another port
        {"sec-fetch-site": "cross-site"},
        {"origin": PUBLIC.rstrip("/"), "sec-fetch-site": "cross-site"},
    ],
)
def test_a_form_posted_from_another_sites_page_is_refused(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, headers: dict[str, str]
) -> None:
    """A page elsewhere could fetch a form token and post it from its visitors' browsers,
    their addresses going into the consent record."""
    refused = _post_subscribe(web, "ann@example.org", headers)
    assert refused.status_code == 403 and "This form was sent from another site" in refused.text
    assert refused.headers["content-security-policy"].startswith("default-src 'self'")
    assert refused.headers["x-frame-options"] == "DENY" and refused.headers["cache-control"] == "no-store"
    _active(site, "bob@example.org")
    token = make_token("bob@example.org", SECRET, LIST_ID)
    page = web.client.get(f"/unsubscribe/{token}").text
    left = web.client.post(f"/unsubscribe/{token}", data={"form": form_token(page)}, headers=headers)
    assert left.status_code == 403
    assert store(site).get("bob@example.org").status == "active"  # type: ignore[union-attr]
    assert ledger_rows(site)["subscribers"][0][1] == "bob@example.org" and smtp.handler.received == []
    # RFC 8058 one-click, posted from wherever: its token is its authority.
    one_click = web.client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )
    assert one_click.status_code == 200
    assert store(site).get("bob@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    # The same form from this site's own page, or from no page at all (curl), is taken.
    for n, own in enumerate(OWN_PAGE):
        assert _post_subscribe(web, f"reader{n}@example.org", own).status_code == 303, own
    assert len(smtp.handler.received) == len(OWN_PAGE)


OWN_PAGE = [
    {},
    {"origin": "http://127.0.0.1"},
    {"origin": "HTTP://127.0.0.1:80"},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},  # typed into the address bar, or a bookmark
    {"origin": "null", "sec-fetch-site": "same-origin"},  # this site's page under no-referrer
]


def test_without_web_url_a_form_from_the_server_as_reached_is_taken(
    site: SiteMaker, smtp: SmtpServer
) -> None:
    """web.url is then base_url, where the feeds are published; the pages are where the
    server is reached."""
    web_site(site, smtp.port)
    del site.config_data["web"]
    site.write_config()
    with WebServer(site.root, SECRET) as web:
        here = web.url.rstrip("/")
        assert _post_subscribe(web, "ann@example.org", {"origin": here}).status_code == 303
        assert (
            _post_subscribe(web, "bob@example.org", {"origin": "https://news.example.org"}).status_code == 303
        )
        elsewhere = _post_subscribe(web, "cy@example.org", {"origin": "http://localhost:1"})
        assert elsewhere.status_code == 403
    assert sorted(r.recipient for r in smtp.handler.received) == ["ann@example.org", "bob@example.org"]


def test_pages_carry_the_security_headers_and_are_escaped(site: SiteMaker, smtp: SmtpServer) -> None:
    web_site(site, smtp.port)
    # Markup in the title is reduced to its text; escaped markup is text that looks like a tag.
    site.write_config(title="News &lt;script&gt;alert(1)&lt;/script&gt;")
    with WebServer(site.root, SECRET) as web:
        response = web.client.get("/")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"  # a form's POST carries its Origin
    assert "set-cookie" not in response.headers
    assert "<script>" not in response.text and "News &lt;script&gt;" in response.text


def test_bodies_over_16_kb_are_refused(web: WebServer) -> None:
    response = web.client.post(
        "/subscribe",
        content=b"email=" + b"a" * 17_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_published_files_have_feed_types_and_conditional_get(site: SiteMaker, web: WebServer) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    assert CliRunner().invoke(main, ["feeds", "--site", str(site.root)]).exit_code == 0
    (site.root / "feeds" / ".rss.xml.abcd1234.tmp").write_text("half")
    rss = web.client.get("/feeds/rss.xml")
    assert rss.status_code == 200 and rss.headers["content-type"] == "application/rss+xml"
    assert web.client.get("/feeds/topic/alpha/atom.xml").headers["content-type"] == "application/atom+xml"
    assert web.client.get("/feeds/feed.json").headers["content-type"] == "application/feed+json"
    assert web.client.get("/feeds/feeds.opml").headers["content-type"] == "text/x-opml"
    assert web.client.get("/feeds/").status_code == 200  # the feeds index
    again = web.client.get("/feeds/rss.xml", headers={"if-none-match": rss.headers["etag"]})
    assert again.status_code == 304
    assert "last-modified" in rss.headers and "x-frame-options" not in rss.headers
    assert web.client.get("/feeds/.rss.xml.abcd1234.tmp").status_code == 404
    assert web.client.get("/feeds/../bulletin.toml").status_code == 404


def test_published_pages_run_no_script_and_stay_out_of_frames(site: SiteMaker, web: WebServer) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    assert CliRunner().invoke(main, ["build", "--site", str(site.root)]).exit_code == 0
    week = next(path.name for path in (site.root / "emails").iterdir() if path.is_dir())
    for path in ("/feeds/", "/feeds/topic/alpha/", f"/emails/{week}/digest.html", "/emails/", "/feeds/nope"):
        page = web.client.get(path)
        assert page.headers["content-type"].startswith("text/html"), path
        policy = page.headers["content-security-policy"]
        assert policy.startswith("default-src 'none'; img-src https: http: data:;"), path
        assert "script-src" not in policy and "frame-ancestors 'none'" in policy
        assert (
            page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        )
    rss = web.client.get("/feeds/rss.xml")  # a feed is no page: nosniff alone
    assert rss.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in rss.headers


def test_healthz(site: SiteMaker, web: WebServer) -> None:
    assert web.client.get("/healthz").text == "ok\n"


# -- the ledger --------------------------------------------------------------------------------


def test_a_ledger_of_the_first_release_is_migrated_and_mails_nobody_new(
    site: SiteMaker, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(DATA / "ledger-0.1.0.sqlite", path)
    with Ledger.open(path) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] >= 2
        assert ledger.already_sent("2026-W47") >= {"ann@example.org"}
        assert ledger.suppression("dead@example.org") == "bounced"
        assert ledger.frozen("2026-W47") == ["news/a", "news/b"]
        assert Subscriptions(ledger).rows() == []  # nobody is mailed from the ledger until added
        assert (
            Subscriptions(ledger).add("dead@example.org", "", None, datetime.now(UTC), "import") == "bounced"
        )


def test_confirm_links_expire(site: SiteMaker, smtp: SmtpServer) -> None:
    web_site(site, smtp.port, confirm_hours=1)
    later = datetime.now(UTC) + timedelta(hours=2)
    with WebServer(site.root, SECRET) as web:
        subscribe(web, "ann@example.org")
        path = link(text_of(last_mail(smtp, "ann@example.org")), "confirm")
    with WebServer(site.root, SECRET, clock=lambda: later) as web:
        assert web.client.get(path).status_code == 400


def test_the_feeds_index_and_topic_pages_link_to_the_subscribe_page(
    site: SiteMaker, smtp: SmtpServer
) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    web_site(site, smtp.port)
    assert CliRunner().invoke(main, ["feeds", "--site", str(site.root)]).exit_code == 0
    for page in ("feeds/index.html", "feeds/topic/alpha/index.html"):
        assert 'href="http://127.0.0.1/subscribe"' in (site.root / page).read_text(), page


def test_one_click_as_multipart_form_data_and_repeated_grows_nothing(site: SiteMaker, web: WebServer) -> None:
    _active(site, "ann@example.org")
    path = "/unsubscribe/" + make_token("ann@example.org", SECRET, LIST_ID)
    response = web.client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    db = sqlite3.connect(site.root / ".bulletin" / "ledger.sqlite")
    changes = db.execute("SELECT COUNT(*) FROM status_changes").fetchone()[0]
    for _ in range(5):
        assert web.client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 200
    assert db.execute("SELECT COUNT(*) FROM status_changes").fetchone()[0] == changes


def test_a_failed_mail_undoes_only_its_own_request(site: SiteMaker) -> None:
    """Two requests for one address, their mails after the answers: the first mail failing
    used to delete the second request, whose link had gone out."""
    web_site(site, free_port())
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        store = Subscriptions(ledger)
        first = Consent(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), PUBLIC + "subscribe", "text", None)
        second = Consent(datetime(2026, 11, 25, 12, 1, tzinfo=UTC), PUBLIC + "subscribe", "text", None)
        before = store.request("ann@example.org", "Ann", ["alpha"], first)
        store.request("ann@example.org", "Ann", ["beta"], second)
        store.undo_request("ann@example.org", before, None, first.at.isoformat())
        row = store.get("ann@example.org")
        assert row is not None and row.consent_at == second.at.isoformat() and row.topics == {"beta"}
        store.undo_request("ann@example.org", before, None, second.at.isoformat())
        assert store.get("ann@example.org") is None


def test_an_old_confirm_link_never_undoes_an_unsubscribe(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    subscribe(web, "ann@example.org")
    path = confirm(web, smtp, "ann@example.org")
    web.client.post(
        "/unsubscribe/" + make_token("ann@example.org", SECRET, LIST_ID),
        content=b"List-Unsubscribe=One-Click",
    )
    page = web.client.get(path)  # says so at once, with no Confirm button that cannot work
    assert page.status_code == 400 and "This confirmation link is not valid" in page.text
    assert "<form" not in page.text
    again = web.client.post(path, data={"form": make_form_token("confirm", SECRET, LIST_ID)})
    assert again.status_code == 400
    assert store(site).get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_a_request_that_mails_nothing_changes_nothing(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    for _ in range(3):
        subscribe(web, "ann@example.org", "alpha", name="Ann")
    before = ledger_rows(site)
    status, page = subscribe(web, "ANN@example.org", "beta", name="Someone else")
    assert status == 200 and "Check your inbox" in page
    assert ledger_rows(site) == before and len(smtp.handler.to("ann@example.org")) == 3


# -- one mailbox, one spelling -----------------------------------------------------------------


def test_an_internationalised_domain_is_mailed_and_kept_in_ascii(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """carol@bücher.de was refused; the relay (no SMTPUTF8 asked) gets the punycode domain,
    and the other spelling is the same mailbox for the daily cap."""
    status, page = subscribe(web, "Carol@Bücher.de", "alpha")
    assert status == 200 and "Check your inbox" in page
    assert [r.recipient for r in smtp.handler.received] == ["Carol@xn--bcher-kva.de"]
    assert last_mail(smtp, "Carol@xn--bcher-kva.de")["To"] == "Carol@xn--bcher-kva.de"
    page = web.client.get(link(text_of(last_mail(smtp, "Carol@xn--bcher-kva.de")), "confirm")).text
    assert "Digests go to <strong><bdi>Carol@b\u00fccher.de</bdi></strong>" in page  # as she wrote it
    confirm(web, smtp, "Carol@xn--bcher-kva.de")
    row = store(site).get("carol@bücher.de")
    assert row is not None and row.status == "active" and row.email == "Carol@xn--bcher-kva.de"
    for _ in range(3):
        subscribe(web, "carol@xn--bcher-kva.de", "beta")
    assert len(smtp.handler.received) == 3  # the first, then two: three a day, either spelling


def test_a_local_part_outside_ascii_is_told_what_to_write(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    status, page = subscribe(web, "j\u00f6rg@example.org")
    assert status == 400 and "only the letters a to z, digits and . _ - + before the @" in page
    assert "j\u00f6rg@example.org" in page  # kept in the field, to be corrected
    status, page = subscribe(web, "j\u200bo@example.org")  # pasted with a zero-width space
    assert status == 400 and "holds a hidden character (such as a zero-width space)" in page
    status, page = subscribe(web, "x@" + "\u00fc." * 60 + "de")  # 124 typed, 542 in ASCII
    assert status == 400 and "too long once its domain is written for mail" in page
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


@pytest.mark.parametrize(
    "spelling", ['"ann"@example.org', '"Ann"@Example.org', '"j\u00f6rg"@example.org', '"a b"@example.org']
)
def test_a_quoted_local_part_gets_the_invalid_address_page(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, spelling: str
) -> None:
    status, page = subscribe(web, spelling)
    assert status == 400 and "Please enter an email address without quotation marks" in page
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


@pytest.mark.parametrize(
    "address",
    [
        "=?utf-8?q?ceo=40victim.example=2C_x?=@example.org",  # To: ceo@victim.example, x@example.org
        "=?utf-8?q?CEO_=3Cceo=40victim.example=3E?=@example.org",  # To: CEO <ceo@victim.example>@…
    ],
)
def test_an_encoded_word_before_the_at_is_refused(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, address: str
) -> None:
    status, page = subscribe(web, address)
    assert status == 400 and (
        "Please enter an address without &#39;=?&#39; before the @: mail programs would read it as "
        "encoded text, and show another address." in page
    )
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


def test_the_confirmation_mail_is_to_the_address_as_written_and_nothing_else(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    from bulletin.config import load_config
    from bulletin.web.mail import confirmation

    address = "o'neil+{news}?x=1#~$%&*/^_`|!-@example.org"  # what a dot-atom may hold, never "=?"
    subscribe(web, address)
    [received] = smtp.handler.received
    assert received.recipient == address
    assert [a.addr_spec for a in received.message["To"].addresses] == [address]
    assert re.search(rb"^To: (.*)\r$", received.data, re.M).group(1) == address.encode()  # type: ignore[union-attr]
    context = {"now": datetime.now(UTC)}
    with pytest.raises(ValueError, match="is not an address to mail"):
        confirmation(load_config(site.root), "=?utf-8?q?a=40b.example?=@example.org", "x", manage=False,
                     context=context)  # fmt: skip


@pytest.mark.parametrize(
    "address",
    [
        "victim@" + "sub." * 60 + "example.org",  # 258: cut at 254, it was another domain
        "a" * 64 + "@" + "b" * 189 + ".example.org",
    ],
)
def test_an_address_over_254_characters_is_refused_not_cut(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, address: str
) -> None:
    status, page = subscribe(web, address)
    assert status == 400 and "This address is too long: an email address has at most 254" in page
    assert html.escape(address) in page  # shown whole, to be corrected
    assert ledger_rows(site)["subscribers"] == [] and smtp.handler.received == []


def test_markup_in_the_address_gets_the_plain_invalid_address_page(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    status, page = subscribe(web, '"><script>alert(1)</script>@example.org')
    assert status == 400 and "Please enter an email address such as name@example.org." in page
    assert "<script>alert" not in page and "quotation marks" not in page


def test_another_spelling_escapes_neither_the_daily_cap_nor_the_suppression_list(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    for _ in range(3):
        subscribe(web, "ann@example.org")
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        Subscriptions(ledger).leave("bob@example.org", datetime.now(UTC), "complained")
    for spelling in ('"ann"@example.org', '"a\\nn"@example.org', '"bob"@example.org', '"Bob"@example.org'):
        subscribe(web, spelling)
    assert len(smtp.handler.received) == 3


# -- suppressed addresses ----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_a_bounced_or_complained_address_gets_no_mail_and_the_usual_page(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, status: str
) -> None:
    _active(site, "ann@example.org")
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        Subscriptions(ledger).leave("ann@example.org", datetime.now(UTC), status)
        ledger.suppress("csv-only@example.org", status, datetime.now(UTC))  # a CSV subscriber: no row
        Subscriptions(ledger).leave("left@example.org", datetime.now(UTC))
    before = ledger_rows(site)
    usual = subscribe(web, "new@example.org", "alpha")
    assert subscribe(web, "ann@example.org", "alpha") == usual
    assert subscribe(web, "Csv-Only@example.org", "alpha") == usual
    assert smtp.handler.to("ann@example.org") == smtp.handler.to("Csv-Only@example.org") == []
    after = ledger_rows(site)
    assert [r for r in after["subscribers"] if r[0] != "new@example.org"] == before["subscribers"]
    assert after["suppressed"] == before["suppressed"]
    # Leaving is not refusing mail: whoever unsubscribed may subscribe again, with a new opt-in.
    assert subscribe(web, "left@example.org", "alpha") == usual
    assert "/confirm/" in text_of(last_mail(smtp, "left@example.org"))


def test_a_request_never_confirmed_is_forgotten_when_its_link_has_expired(
    site: SiteMaker, smtp: SmtpServer
) -> None:
    web_site(site, smtp.port, confirm_hours=1)
    later = datetime.now(UTC) + timedelta(hours=2)
    with WebServer(site.root, SECRET) as web:
        subscribe(web, "ann@example.org", "alpha", name="Ann")
    assert store(site).get("ann@example.org") is not None
    with WebServer(site.root, SECRET, clock=lambda: later) as web:
        subscribe(web, "bob@example.org")
    assert store(site).get("ann@example.org") is None
    assert store(site).get("bob@example.org").status == "pending"  # type: ignore[union-attr]


# -- clients -----------------------------------------------------------------------------------


def test_ipv6_clients_are_limited_by_their_64_bit_prefix(site: SiteMaker, smtp: SmtpServer) -> None:
    # One household or server is given a whole /64: counted per address, it could post 2**64 times.
    web_site(site, smtp.port, rate_per_minute=3, trusted_proxies=["127.0.0.1"])

    def post(client: str, n: int) -> int:
        page = web.client.get("/subscribe").text
        data = {"form": form_token(page), "email": f"p{n}@example.org", "website": ""}
        return web.client.post("/subscribe", data=data, headers={"x-forwarded-for": client}).status_code

    with WebServer(site.root, SECRET) as web:
        codes = [post(f"2001:db8:1:2::{n}", n) for n in range(1, 5)]
        other = post("2001:db8:1:3::1", 5)
        ipv4 = [post(f"198.51.100.{n}", n + 10) for n in range(1, 5)]
        web.settle()
    assert codes == [303, 303, 303, 429] and other == 303
    assert ipv4 == [303, 303, 303, 303]  # IPv4: one client per address
    assert store(site).get("p1@example.org").consent_ip == "2001:db8:1:2::1"  # type: ignore[union-attr]


def test_rate_keys() -> None:
    assert rate_key("198.51.100.7") == "198.51.100.7"
    assert rate_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert rate_key("2001:DB8:1:2::1") == rate_key("2001:db8:1:2:ffff::") == "2001:db8:1:2::/64"
    assert rate_key("::ffff:198.51.100.7") == "198.51.100.7"  # IPv4 seen through an IPv6 socket
    assert rate_key("unknown") == "unknown"


def test_control_characters_in_a_name_are_not_kept(site: SiteMaker, smtp: SmtpServer, web: WebServer) -> None:
    subscribe(web, "ann@example.org", name="Ann\x1b[2J\x07\u202eevil")
    assert store(site).get("ann@example.org").name == "Ann [2J evil"  # type: ignore[union-attr]


# -- hosts and redirects -------------------------------------------------------------------------


def test_redirects_go_to_the_configured_url_and_other_hosts_are_refused(
    site: SiteMaker, smtp: SmtpServer
) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    web_site(site, smtp.port, url="https://news.example.org/")
    assert CliRunner().invoke(main, ["feeds", "--site", str(site.root)]).exit_code == 0
    with WebServer(site.root, SECRET) as web:
        for path, location in (
            ("/feeds", "https://news.example.org/feeds/"),
            ("/feeds/topic/alpha", "https://news.example.org/feeds/topic/alpha/"),
            ("/subscribe/?x=1", "https://news.example.org/subscribe?x=1"),
        ):
            for host in (None, "news.example.org", "localhost:8000"):
                response = web.client.get(path, headers={"host": host} if host else {})
                assert (response.status_code, response.headers["location"]) == (307, location), (path, host)
        assert web.client.get("/", headers={"host": "news.example.org"}).status_code == 200
        assert web.client.get("/", headers={"host": "[::1]:8000"}).status_code == 200
        for path in ("/", "/subscribe", "/feeds", "/feeds/rss.xml", "/confirm/x"):
            refused = web.client.get(path, headers={"host": "evil.example"})
            assert refused.status_code == 400 and "location" not in refused.headers, path
            assert refused.headers["x-content-type-options"] == "nosniff"
        # Health checks often ask by the machine's address: /healthz answers whatever the host.
        assert web.client.get("/healthz", headers={"host": "10.1.2.3:8000"}).text == "ok\n"


def test_a_form_waiting_for_the_ledger_holds_up_no_other_request(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    """While another writer (a send, a command) holds the ledger, a form waits for it in a
    worker thread: the ledger calls ran on the event loop, and every page of the worker,
    /healthz too, waited with it."""
    import fcntl
    import os
    import threading

    page = web.client.get("/subscribe").text
    lock = os.open(site.root / ".bulletin" / "ledger.sqlite.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    answers: list[int] = []
    data = {"form": form_token(page), "email": "ann@example.org", "website": ""}
    posting = threading.Thread(
        target=lambda: answers.append(web.client.post("/subscribe", data=data).status_code)
    )
    try:
        posting.start()
        time.sleep(0.3)  # the form is waiting for the lock now
        started = time.monotonic()
        assert web.client.get("/").status_code == 200 and web.client.get("/healthz").text == "ok\n"
        assert time.monotonic() - started < 1.0 and answers == []
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    posting.join(10)
    assert answers == [303]


def test_a_ledger_lock_held_too_long_gets_try_again(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writers' lock was waited for without end: no 503 ever came."""
    import fcntl
    import os

    from bulletin import ledger as module

    monkeypatch.setattr(module, "BUSY_TIMEOUT", 0.5)
    page = web.client.get("/subscribe").text
    lock = os.open(site.root / ".bulletin" / "ledger.sqlite.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        answer = web.client.post("/subscribe", data={"form": form_token(page), "email": "ann@example.org"})
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "60"


def test_more_forms_waiting_for_the_ledger_than_threads_leave_healthz_and_files_served(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """45 forms waiting for a held ledger took all 40 threads of the pool: /healthz and the
    published files, which need one too, waited with them."""
    import fcntl
    import os
    import threading

    from bulletin import ledger as module

    monkeypatch.setattr(module, "BUSY_TIMEOUT", 3)
    (site.root / "feeds").mkdir()
    (site.root / "feeds" / "rss.xml").write_text("<rss/>\n")
    page = web.client.get("/subscribe").text
    data = {"form": form_token(page), "email": "ann@example.org"}
    clients = [httpx.Client(base_url=web.url, timeout=20) for _ in range(45)]
    lock = os.open(site.root / ".bulletin" / "ledger.sqlite.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    posts = [
        threading.Thread(target=client.post, args=("/subscribe",), kwargs={"data": data})
        for client in clients
    ]
    try:
        for post in posts:
            post.start()
        time.sleep(0.5)  # every form is waiting for the lock now
        started = time.monotonic()
        assert web.client.get("/healthz").text == "ok\n"
        assert web.client.get("/feeds/rss.xml").status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        for post in posts:
            post.join(20)
        for client in clients:
            client.close()


def test_a_ledger_busy_past_its_timeout_gets_try_again_not_a_500(
    site: SiteMaker, smtp: SmtpServer, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite gives up after 30 s behind another writer's transaction: that was a bare 500."""
    import sqlite3

    def busy(*args: object) -> bool:
        raise sqlite3.OperationalError("database is locked")

    page = web.client.get("/subscribe").text
    monkeypatch.setattr(Subscriptions, "hit", busy)
    answer = web.client.post("/subscribe", data={"form": form_token(page), "email": "ann@example.org"})
    assert answer.status_code == 503 and "Please try again in a minute" in answer.text
    assert answer.headers["retry-after"] == "60"


# -- the mail goes out after the answer ----------------------------------------------------------


def test_the_answer_does_not_wait_for_the_mail_whatever_the_address(
    site: SiteMaker, smtp: SmtpServer, web: WebServer
) -> None:
    for _ in range(3):
        subscribe(web, "capped@example.org")
    _active(site, "ann@example.org")
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        Subscriptions(ledger).leave("gone@example.org", datetime.now(UTC), "complained")
    smtp.handler.script.slow = 2.0  # the relay takes two seconds to accept each recipient
    took = {}
    for address in ("new@example.org", "ann@example.org", "capped@example.org", "gone@example.org"):
        data = {"form": form_token(web.client.get("/subscribe").text), "email": address, "website": ""}
        started = time.monotonic()
        response = web.client.post("/subscribe", data=data)
        took[address] = time.monotonic() - started
        assert response.headers["location"] == PUBLIC + "subscribe/sent"  # the same for everyone
    assert max(took.values()) < 1.5, took  # none waited for the relay (2 s a recipient)
    web.settle()
    assert [
        len(smtp.handler.to(a)) for a in ("new@example.org", "ann@example.org", "capped@example.org")
    ] == [
        1,
        1,
        3,
    ]
    assert smtp.handler.to("gone@example.org") == []


def test_a_mail_the_relay_refuses_after_the_answer_leaves_the_row_as_it_was(site: SiteMaker) -> None:
    script = Script(
        rcpt={"ann@example.org": ["550 5.1.1 no such user"], "left@example.org": ["550 5.1.1 no"]}
    )
    with SmtpServer(script) as smtp:
        web_site(site, smtp.port)
        _active(site, "left@example.org")
        with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
            Subscriptions(ledger).leave("left@example.org", datetime.now(UTC))
        before = ledger_rows(site)
        with WebServer(site.root, SECRET) as web:
            usual = subscribe(web, "bob@example.org")
            assert subscribe(web, "ann@example.org", "alpha") == usual
            assert subscribe(web, "left@example.org", "alpha") == usual
            after = ledger_rows(site)
            assert [r for r in after["subscribers"] if r[0] != "bob@example.org"] == before["subscribers"]
            assert store(site).get("ann@example.org") is None
            assert store(site).get("left@example.org").status == "unsubscribed"  # type: ignore[union-attr]
            # The refused mails do not count against the day's three.
            for _ in range(3):
                subscribe(web, "ann@example.org")
        assert len(smtp.handler.to("ann@example.org")) == 3


def test_the_pages_stay_up_when_content_is_not_there(site: SiteMaker, smtp: SmtpServer) -> None:
    """A server that publishes only feeds/ and emails/ (or whose disk is briefly gone) kept
    answering 500 once content/ became an error for the commands that write feeds."""
    web_site(site, smtp.port)
    shutil.rmtree(site.root / "content")
    with WebServer(site.root, SECRET) as server:
        for path in ("/", "/subscribe"):
            response = server.client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "Subscribe" in response.text


def test_serve_new_ledger_without_a_secret_creates_nothing(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 says nothing was done: the ledger used to be created before the secret was asked for."""
    from click.testing import CliRunner

    from bulletin.cli import main

    monkeypatch.delenv("BULLETIN_SECRET")
    site.write_config(digest=dict(MAIL), web={"url": "http://127.0.0.1/"})
    port = str(free_port())  # not 8000: a developer's own `bulletin serve` may be there
    result = CliRunner().invoke(main, ["serve", "--new-ledger", "--port", port, "--site", str(site.root)])
    assert result.exit_code == 2, result.output
    assert "BULLETIN_SECRET" in result.stderr
    assert not (site.root / ".bulletin" / "ledger.sqlite").exists()


def test_serve_warns_when_web_url_names_this_machine_on_another_port(site: SiteMaker) -> None:
    from bulletin.config import load_config
    from bulletin.web.serve import elsewhere_warning

    site.write_config(digest=dict(MAIL), web={"url": "http://127.0.0.1:8000/"})
    config = load_config(site.root)
    assert elsewhere_warning(config, 8000) is None
    assert elsewhere_warning(config, 8031) == (
        "warning: web.url is http://127.0.0.1:8000/, but this server listens on port 8031: redirects "
        "and mailed links go to port 8000; serve with --port 8000, or change web.url"
    )
    site.write_config(digest=dict(MAIL), web={"url": "https://news.example.org/"})
    assert elsewhere_warning(load_config(site.root), 8031) is None  # behind a reverse proxy


def test_bulletin_serve_as_a_process_says_where_links_go(site: SiteMaker) -> None:
    """The real command: the warning comes first, then the server answers on its port."""
    import os
    import sys

    import httpx

    port = free_port()
    web_site(site, free_port())
    site.write_config(digest=dict(MAIL), web={"url": "http://127.0.0.1:8000/"})
    env = {**os.environ, "BULLETIN_SECRET": SECRET}
    command = [sys.executable, "-m", "bulletin", "serve", "--port", str(port), "--site", str(site.root)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        assert first.startswith(
            f"warning: web.url is http://127.0.0.1:8000/, but this server listens on port {port}"
        )
        assert second.startswith("Serving ")
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.mark.parametrize("how", [["--workers", "1"], ["--workers", "2"], ["--watch"]])
def test_sigterm_stops_serve_as_it_stops_every_command(site: SiteMaker, how: list[str]) -> None:
    """uvicorn shuts down gracefully, then serve says so, and ends as killed by the signal
    (it used to end silently: killed with one worker, exit 0 with several)."""
    import signal
    import sys

    port = free_port()
    web_site(site, free_port())
    env = {**os.environ, "BULLETIN_SECRET": SECRET}
    command = [sys.executable, "-m", "bulletin", "serve", *how, "--port", str(port), "--site", str(site.root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/")  # any answer: it serves
                break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "serve did not answer"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert (process.returncode, stderr) == (-signal.SIGTERM, "bulletin: stopped by SIGTERM\n")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=20)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the workers")
def test_serve_workers_end_with_their_supervisor_killed(site: SiteMaker) -> None:
    """`kill -9` of `serve --workers 2` used to leave both workers serving, holding the port
    (the next `serve` found it in use); now they shut down when the supervisor is gone."""
    import signal
    import sys

    port = free_port()
    web_site(site, free_port())
    env = {**os.environ, "BULLETIN_SECRET": SECRET}
    command = [sys.executable, "-m", "bulletin", "serve", "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--site", str(site.root)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "serve did not answer"
            time.sleep(0.1)
        workers = _children(process.pid)
        assert len(workers) >= 2
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in workers):
            assert time.monotonic() < deadline, "the workers outlived their supervisor"
            time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the session: anything left over
        process.communicate(timeout=20)


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_serve_on_a_port_in_use_says_so_before_serving(site: SiteMaker) -> None:
    """It used to print 'Serving … on …' and then uvicorn's own '[Errno 98]' line."""
    import socket

    from click.testing import CliRunner

    from bulletin.cli import main

    web_site(site, free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for watch in ([], ["--watch"]):
            result = CliRunner().invoke(
                main, ["serve", *watch, "--port", str(port), "--site", str(site.root)]
            )
            assert result.exit_code == 3, result.output
            assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in result.stderr
            assert "Serving" not in result.stdout and "Previewing" not in result.stdout
    # An address this machine does not have (TEST-NET-1) is a usage error, and says so.
    elsewhere = CliRunner().invoke(
        main, ["serve", "--host", "192.0.2.1", "--port", "8099", "--site", str(site.root)]
    )
    assert elsewhere.exit_code == 2, elsewhere.output
    assert "give --host an address of this machine" in elsewhere.stderr


def test_serve_closes_a_connection_that_does_not_send_its_request_in_time(site: SiteMaker) -> None:
    """uvicorn waited for a request's headers without end: connections that sent nothing, or
    half a request, stayed open (90 s and counting), and enough of them took every file
    descriptor, /healthz's too."""
    import socket
    import sys

    from bulletin.web.serve import REQUEST_SECONDS

    port = free_port()
    web_site(site, free_port())
    site.write_config(web={"url": f"http://127.0.0.1:{port}/"})
    env = {**os.environ, "BULLETIN_SECRET": SECRET}
    command = [sys.executable, "-m", "bulletin", "serve", "--port", str(port), "--site", str(site.root)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    opened: dict[str, socket.socket] = {}
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        head = b"GET /healthz HTTP/1.1\r\n" + host
        post = b"POST /subscribe HTTP/1.1\r\n" + host + b"Content-Length: 100\r\n\r\nemail=a"
        started = time.monotonic()
        for name, data in (("nothing", b""), ("half the headers", head), ("half the body", post),
                           ("half the next request", head + b"\r\n")):  # fmt: skip
            opened[name] = socket.create_connection(("127.0.0.1", port))
            opened[name].sendall(data)
        kept = opened["half the next request"]
        answer = b""
        while not answer.endswith(b"\r\n\r\nok\n"):  # the first request is answered
            answer += kept.recv(1000)
        assert answer.startswith(b"HTTP/1.1 200 OK")
        kept.sendall(head)  # and the next one half sent
        # Meanwhile a request sent in two halves, a second apart, is answered on time.
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(head)
            time.sleep(1)
            slow.sendall(b"Connection: close\r\n\r\n")
            assert slow.recv(1000).startswith(b"HTTP/1.1 200 OK")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n"
        for name, connection in opened.items():
            connection.settimeout(REQUEST_SECONDS + 5 - (time.monotonic() - started))
            try:
                assert connection.recv(1000) == b"", name  # closed, with nothing said
            except TimeoutError:
                pytest.fail(f"{name}: still open {time.monotonic() - started:.1f} s after it was opened")
        assert time.monotonic() - started > REQUEST_SECONDS - 1  # not before its deadline
    finally:
        for connection in opened.values():
            connection.close()
        process.terminate()
        process.communicate(timeout=20)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            assert httpx.get(url).status_code == 200
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)
