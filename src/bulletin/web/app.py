"""The routes of README's "Running the subscriber side": the front page, the published
folders, subscribe → confirm, manage, unsubscribe (with the bare RFC 8058 POST), and /healthz.

No GET changes anything: mail scanners open every link. Every change is a POST, and every
form but the one-click unsubscribe carries a signed one-time form token and a honeypot.
"""

from __future__ import annotations

import html
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from ..addresses import MAX_ADDRESS, ascii_address, encoded_word, hidden_character, valid_address
from ..config import Config, load_config
from ..errors import BulletinError, LedgerError, NoContentError
from ..ledger import Ledger
from ..mail.mailer import RESUME, DeliveryError, RelayError, SmtpMailer
from ..subscriptions import Consent, Row, Subscriptions, clean_name, confirms
from ..tokens import (
    make_purpose_token,
    make_token,
    require_secret,
    verify_confirm_token,
    verify_form_token,
    verify_purpose_token,
    verify_unsubscribe_token,
)
from .files import PublishedFiles
from .guard import Guard, client_address, cross_site, origin, rate_key
from .mail import confirmation, open_relay, send_confirmation
from .pages import CONSENT, FormError, Pages
from .preview import RELOAD_SCRIPT, Preview

HANDLER_THREADS = 16  # of the 40 anyio gives a worker: the rest serve feeds, digests, /healthz
MAX_FIELDS = 6000  # more than 16 kB can hold: the body limit decides, and the page says what is wrong
FORM_MAX_AGE = 2 * 3600  # a form page left open longer asks to be reloaded
ONE_CLICK = b"List-Unsubscribe=One-Click"
log = logging.getLogger("bulletin.web")


class WebSite:
    """One worker's view of a site: its configuration, secrets, ledger and pages."""

    def __init__(
        self, config: Config, secret: str, password: str | None, clock: Callable[[], datetime]
    ) -> None:
        self.config, self.secret, self.password, self.clock = config, secret, password, clock
        self.web = config.web or _default_web(config)
        self.ledger_path = config.state_dir / "ledger.sqlite"
        Ledger.open(self.ledger_path).close()  # refuse to start without a usable ledger
        self.local = threading.local()
        self.pages = Pages(config, self.web.url)
        self.handlers: anyio.CapacityLimiter | None = None  # made in the server's event loop

    def refresh(self, config: Config) -> None:
        """A preview rebuild changed the configuration: pages follow it."""
        self.config = config
        self.web = config.web or _default_web(config)
        self.pages = Pages(config, self.web.url, preview=self.pages.preview)

    @property
    def store(self) -> Subscriptions:
        """This thread's connection to the ledger (SQLite connections stay in their thread)."""
        store: Subscriptions | None = getattr(self.local, "store", None)
        if store is None:
            store = self.local.store = Subscriptions(Ledger.open(self.ledger_path))
        return store

    def list_id(self) -> str:
        return self.config.digest.list_id

    def link(self, route: str, token: str) -> str:
        """An absolute link for a mail: web.url + route + token."""
        return f"{self.web.url}{route}/{token}"

    def confirm_link(self, email: str, request: str) -> str:
        """The link that confirms `request` (its consent time) for `email`, and no other."""
        expires = int(self.clock().timestamp()) + self.web.confirm_hours * 3600
        token = make_purpose_token("confirm", email, self.secret, self.list_id(), expires, request)
        return self.link("confirm", token)

    def manage_link(self, email: str) -> str:
        return self.link("manage", make_purpose_token("manage", email, self.secret, self.list_id()))

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.web.trusted_proxies)

    def origins(self, request: Request) -> set[str]:
        """The origins of this site's own pages: web.url's; without [web], the one this
        request reached too (web.url is then base_url, where the feeds are published, which
        need not be this server)."""
        own = {origin(self.web.url)}
        if self.config.web is None:
            own.add(origin(str(request.url)))
        return {found for found in own if found is not None}

    def guard_form(self, request: Request, form: Any, name: str, page: str) -> Response | None:
        """None when the form may go on; else the page that refuses it, with a link to `page`
        (the route that shows the form): reloading would only send the same form again."""
        again = (self.pages.root + page, "Open the page again")
        # Another site's page, sent by a visitor's browser (with the visitor's address, for
        # the consent record): its form token could be fetched by anyone.
        if cross_site(request.headers, self.origins(request)):
            return self.pages.message(
                403,
                "This form was sent from another site",
                ["Nothing was changed. Please open the page on this site and send the form from there."],
                link=again,
            )
        if not self.store.hit(rate_key(self.client(request)), time.time(), self.web.rate_per_minute):
            return self.pages.message(
                429, "Too many requests", ["Please wait a minute, then try again."], retry_after=60
            )
        token = str(form.get("form", ""))
        if not token:  # sent from another site's page, or from a page cut short
            return self.pages.message(
                400,
                "This form did not come from this site",
                ["Please open the page again and send the form from there."],
                link=again,
            )
        nonce = verify_form_token(token, name, self.secret, self.list_id(), FORM_MAX_AGE)
        if nonce is None:
            return self.pages.message(
                400,
                "This form can no longer be sent",
                [
                    f"It was open for more than {FORM_MAX_AGE // 3600} hours, or it was changed. "
                    "Please open the page again and send the form from there."
                ],
                link=again,
            )
        if not self.store.use_nonce(nonce, time.time(), FORM_MAX_AGE + 120):
            return self.pages.message(
                400,
                "This form was sent already",
                ["Nothing was changed twice. Open the page again to see where things stand."],
                link=again,
            )
        return None


@dataclass(frozen=True, slots=True)
class Posted:
    """A POST's body and its form, read before the handler runs in a worker thread."""

    body: bytes
    form: FormData


def _default_web(config: Config) -> Any:
    from ..config import WebConfig

    return WebConfig(url=config.base_url)


def create_app(
    site: Path | str | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    secret: str | None = None,
    password: str | None = None,
    preview: Preview | None = None,
) -> Starlette:
    """The application for `site` (default: BULLETIN_SITE, else the current folder).

    The secret and the relay's password come from BULLETIN_SECRET and
    BULLETIN_SMTP_PASSWORD unless given. With `preview` (serve --watch), the pages and the
    published folders come from its scratch build. Raises BulletinError when the site
    cannot serve.
    """
    if preview is not None:
        if preview.config is None:
            raise BulletinError("; ".join(preview.errors) or "the site could not be built")
        config = preview.config
        Ledger.open(config.state_dir / "ledger.sqlite", create=True).close()  # the preview's own
    else:
        config = load_config(Path(site if site is not None else os.environ.get("BULLETIN_SITE", ".")))
    config.require_mail()
    web = WebSite(
        config,
        require_secret(secret if secret is not None else os.environ.get("BULLETIN_SECRET")),
        password if password is not None else os.environ.get("BULLETIN_SMTP_PASSWORD"),
        clock or (lambda: datetime.now(UTC)),
    )
    if preview is not None:
        web.pages.preview = True
        preview.listeners.append(web.refresh)
    return _application(web, preview)


async def _call(
    web: WebSite, handler: Callable[..., Response], request: Request, writes: bool = True
) -> Response:
    """Run a page's handler: a POST's body read first, the rest in a worker thread.
    `writes`: it may wait for the ledger's writers (the pages do; /healthz and the
    stylesheet, which only read, must answer while they wait)."""
    posted = None
    if request.method == "POST":  # read here: the guard holds the whole (small) body
        posted = Posted(await request.body(), await request.form(max_files=0, max_fields=MAX_FIELDS))
    # A handler may wait for the ledger (another writer's lock, SQLite's busy timeout) or
    # read the site: in a worker thread, so that the other requests go on meanwhile. They
    # take at most HANDLER_THREADS of the pool, which serves the published files too.
    if web.handlers is None:
        web.handlers = anyio.CapacityLimiter(HANDLER_THREADS)
    limiter = web.handlers if writes else None
    try:
        return await anyio.to_thread.run_sync(handler, web, request, posted, limiter=limiter)
    except (sqlite3.OperationalError, LedgerError) as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
        log.warning("bulletin serve: the ledger stayed busy for 30 s; a visitor was asked to try again")
        return web.pages.message(503, "Please try again in a minute", ["Nothing was saved."], retry_after=60)


def _application(web: WebSite, preview: Preview | None = None) -> Starlette:
    def route(path: str, handler: Callable[..., Any], methods: list[str], writes: bool = True) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _call(web, handler, request, writes)

        return Route(path, endpoint, methods=methods)

    routes = [
        route("/", front, ["GET", "HEAD"]),
        route("/subscribe", subscribe_page, ["GET", "HEAD"]),
        route("/subscribe", subscribe, ["POST"]),
        route("/subscribe/sent", subscribe_sent, ["GET", "HEAD"]),
        route("/unsubscribed", unsubscribed, ["GET", "HEAD"]),
        route("/confirm/{token}", confirm_page, ["GET", "HEAD"]),
        route("/confirm/{token}", confirm, ["POST"]),
        route("/manage/{token}", manage_page, ["GET", "HEAD"]),
        route("/manage/{token}", manage, ["POST"]),
        route("/unsubscribe/{token}", unsubscribe_page, ["GET", "HEAD"]),
        route("/unsubscribe/{token}", unsubscribe, ["POST"]),
        # The form many lists use (and the example site's unsubscribe_url): ?token=…
        route("/unsubscribe", unsubscribe_page, ["GET", "HEAD"]),
        route("/unsubscribe", unsubscribe, ["POST"]),
        route("/healthz", healthz, ["GET", "HEAD"], writes=False),
        route("/assets/bulletin.css", stylesheet, ["GET", "HEAD"], writes=False),
        Mount(
            "/feeds",
            PublishedFiles(
                directory=web.config.feeds_dir, html=True, check_dir=False, reload=preview is not None
            ),
        ),
        Mount(
            "/emails",
            PublishedFiles(
                directory=web.config.emails_dir, html=True, check_dir=False, reload=preview is not None
            ),
        ),
    ]
    if preview is not None:
        routes[:0] = preview_routes(web, preview)
    app = Starlette(routes=routes)
    app.add_exception_handler(
        404, lambda request, exc: web.pages.message(404, "Not found", ["There is no page at this address."])
    )
    app.add_exception_handler(
        405,
        lambda request, exc: web.pages.message(
            405, "Not allowed", ["This page does not take that kind of request."]
        ),
    )
    return Guard(app, lambda: web.web.url, preview=preview is not None)  # type: ignore[return-value]


# -- pages -----------------------------------------------------------------------------------


def front(web: WebSite, request: Request, _: Posted | None) -> Response:
    return web.pages.front(_form_token(web, "subscribe"))


def subscribe_page(web: WebSite, request: Request, _: Posted | None) -> Response:
    return web.pages.subscribe(200, _form_token(web, "subscribe"))


def healthz(web: WebSite, request: Request, _: Posted | None) -> Response:
    try:
        web.store.db.execute("SELECT COUNT(*) FROM subscribers").fetchone()
    except Exception as error:  # any failure of the ledger is what this route reports
        return PlainTextResponse(f"ledger: {error}\n", status_code=503)
    return PlainTextResponse("ok\n")


def stylesheet(web: WebSite, request: Request, _: Posted | None) -> Response:
    return web.pages.stylesheet()


def _form_token(web: WebSite, name: str) -> str:
    from ..tokens import make_form_token

    return make_form_token(name, web.secret, web.list_id())


# -- subscribe → confirm ---------------------------------------------------------------------


def subscribe(web: WebSite, request: Request, posted: Posted | None) -> Response:
    assert posted is not None
    form = posted.form
    # The address as typed, never cut: a shortened one is someone else's (or no one's).
    email = str(form.get("email", "")).strip()
    values = {"email": email, "name": clean_name(str(form.get("name", "")))[:100]}
    topics = [str(t) for t in form.getlist("topics")]
    values["topics"] = topics  # type: ignore[assignment]
    refused = web.guard_form(request, form, "subscribe", "subscribe")
    if refused is not None:
        return refused
    if form.get("website"):  # the honeypot: only robots fill it in; they see the usual page
        return _see(request, "subscribe/sent")
    address = ascii_address(email)  # carol@bücher.de is mailed, and stored, at its ASCII domain
    problem = _check_subscription(web, address, topics)
    if problem is not None and len(email) <= MAX_ADDRESS < len(address):
        problem = FormError(
            "email",
            "This address is too long once its domain is written for mail, in ASCII: an email "
            f"address has at most {MAX_ADDRESS} characters.",
        )
    if problem is not None:
        return web.pages.subscribe(400, _form_token(web, "subscribe"), problem, values)
    consent = Consent(
        web.clock(), web.web.url + "subscribe", CONSENT, web.client(request) if web.web.store_ip else None
    )
    # Before the answer, every address costs the same: a connection to the relay, so that a
    # relay that is down still gets its own page. Whether this address is mailed, and the
    # mail itself, come after the answer, where its time tells nobody anything.
    try:
        mailer = open_relay(web.config, web.password)
    except (RelayError, OSError) as error:
        relay = f"{web.config.smtp.host}:{web.config.smtp.port}"
        log.warning("bulletin serve: the relay %s cannot be used; a subscriber was asked to try "
                    "again later: %s", relay, str(error).removesuffix(RESUME))  # fmt: skip
        return web.pages.message(
            503,
            "Please try again later",
            ["We could not send the confirmation mail just now. Nothing was saved."],
            link=(web.pages.urls["subscribe"], "Back to the subscribe page"),
        )
    mail = BackgroundTask(mail_subscriber, web, mailer, address, values["name"], topics, consent)
    return _see(request, "subscribe/sent", mail)


def _see(request: Request, route: str, background: BackgroundTask | None = None) -> Response:
    """After a form that did what it asked: its result, at `route`, by a GET (303, See
    Other). Reload and Back then show the result again instead of sending the form again.
    The target is a path as Starlette's own redirects make them, under the server's root
    path; the guard puts the public URL, web.url, in its place."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{root}/{route}", status_code=303, background=background)


def subscribe_sent(web: WebSite, request: Request, _: Posted | None) -> Response:
    return _check_inbox(web)


def mail_subscriber(
    web: WebSite, mailer: SmtpMailer, email: str, name: str, topics: list[str], consent: Consent
) -> None:
    """After the answer: record the request and mail its link (the manage link when already
    subscribed), unless the address must not be mailed; a mail the relay does not take
    leaves the ledger as it was."""
    try:
        store, asked = web.store, time.time()
        store.expire_pending(web.clock(), web.web.confirm_hours)  # links sent long ago no longer work
        if store.never_mailed(email) or not store.may_mail(email, asked):
            return  # no mail, no change
        before_row = store.get(email)
        before = store.request(email, name, topics or None, consent)
        sent = False
        try:
            manage = before == "active"
            link = web.manage_link(email) if manage else web.confirm_link(email, consent.at.isoformat())
            context = web.pages.context(now=web.clock())
            data = confirmation(web.config, email, link, manage=manage, context=context)
            send_confirmation(mailer, web.config, email, data)
            sent = True
        except (RelayError, DeliveryError, OSError) as error:
            log.warning(
                "bulletin serve: no confirmation mail to %s, nothing saved: %s",
                email,
                str(error).removesuffix(RESUME),
            )
        finally:
            if not sent:  # whatever stopped the mail: no row waits for a link never sent
                store.undo_request(email, before, before_row, consent.at.isoformat())
                store.forget_mail(email, asked)
    finally:
        mailer.close()


def _check_subscription(web: WebSite, email: str, topics: list[str]) -> FormError | None:
    """What is wrong with a subscription form, and where; None when nothing is."""
    if len(email) > MAX_ADDRESS:
        return FormError(
            "email", f"This address is too long: an email address has at most {MAX_ADDRESS} characters."
        )
    if not valid_address(email):
        if email.startswith('"') and '"@' in email:  # a quoted local part: the mailbox without them
            return FormError(
                "email", "Please enter an email address without quotation marks, such as name@example.org."
            )
        if hidden_character(email) is not None:
            return FormError(
                "email",
                "This address holds a hidden character (such as a zero-width space), often copied "
                "along with it: please type the address.",
            )
        if encoded_word(email) and valid_address(email, stored=True):
            return FormError(
                "email",
                "Please enter an address without '=?' before the @: mail programs would read it as "
                "encoded text, and show another address.",
            )
        if not email.rpartition("@")[0].isascii():
            return FormError(
                "email",
                "Please enter an address with only the letters a to z, digits and . _ - + before "
                "the @: our mail cannot reach other addresses.",
            )
        return FormError("email", "Please enter an email address such as name@example.org.")
    known = web.pages.topic_slugs()
    if len(topics) > len(known) or len(set(topics)) != len(topics) or not set(topics) <= known:
        return FormError("topics", "Please choose topics from the list.")
    return None


def _check_inbox(web: WebSite) -> Response:
    # The same page whatever the address: nobody learns who is subscribed.
    return web.pages.message(
        200,
        "Check your inbox",
        [
            "If the address can receive our mail, a message is on its way to it with a link to "
            "confirm your subscription (or to change it, if you are subscribed already).",
            "The link works for a limited time. Nothing arrives? Look in your spam folder.",
        ],
    )


def confirm_page(web: WebSite, request: Request, _: Posted | None) -> Response:
    token = request.path_params["token"]
    verified = verify_confirm_token(token, web.secret, web.list_id(), web.clock().timestamp())
    if verified is None:
        return _bad_link(web, "confirm")
    # Only the address's own inbox has the signed link: it may learn that the link is spent
    # (the address left, or bounced, since, or asked again), and what it confirms.
    address, asked = verified
    row = web.store.get(address)
    if row is None or not confirms(row, asked):
        return _unconfirmable(web, row)
    if row.status == "active":  # confirmed: where the button leads, and a link used again
        return _subscribed(web, address)
    return web.pages.button(
        "Confirm your subscription",
        "One click and the weekly digest is on its way.",
        f"confirm/{token}",
        "Confirm",
        _form_token(web, "confirm"),
        request=row,
    )


def _unconfirmable(web: WebSite, row: Row | None) -> Response:
    """Why a confirm link does not work: a later request replaced its own (the row is still
    pending), or the address left or bounced since, or the link is no good."""
    if row is None or row.status != "pending":
        return _bad_link(web, "confirm")
    return web.pages.message(
        400,
        "This link is for an earlier request",
        [
            "This address was entered on the subscribe page again after this link was sent, so "
            "only the link in the newest message works. Its page shows what it subscribes you to "
            "before you confirm."
        ],
        link=(web.pages.urls["subscribe"], "Go to the subscribe page"),
    )


def confirm(web: WebSite, request: Request, posted: Posted | None) -> Response:
    token = request.path_params["token"]
    verified = verify_confirm_token(token, web.secret, web.list_id(), web.clock().timestamp())
    if verified is None:
        return _bad_link(web, "confirm")
    address, asked = verified
    assert posted is not None
    form = posted.form
    refused = web.guard_form(request, form, "confirm", f"confirm/{token}")
    if refused is not None:
        return refused
    if not web.store.confirm(address, web.clock(), asked):
        return _unconfirmable(web, web.store.get(address))
    return _see(request, f"confirm/{token}")


def _subscribed(web: WebSite, address: str) -> Response:
    return web.pages.message(
        200,
        "You are subscribed",
        [
            "The next weekly digest will reach you. Every digest has a link to change your topics "
            "or unsubscribe."
        ],
        link=(web.manage_link(address), "Choose your topics"),
    )


def _bad_link(web: WebSite, kind: str) -> Response:
    texts = {
        "confirm": "This confirmation link is not valid or has expired. Subscribe again to get a new one.",
        "manage": "This link is not valid. The manage link in any digest you received still works.",
        "unsubscribe": "This unsubscribe link is not valid. The link in any digest you received still works.",
    }
    return web.pages.message(
        400,
        "This link does not work",
        [texts[kind]],
        link=(web.pages.urls["subscribe"], "Go to the subscribe page"),
    )


# -- manage and unsubscribe ------------------------------------------------------------------


def manage_page(web: WebSite, request: Request, _: Posted | None) -> Response:
    token = request.path_params["token"]
    address = verify_purpose_token("manage", token, web.secret, web.list_id())
    if address is None:
        return _bad_link(web, "manage")
    row = web.store.get(address)
    if row is None or row.status != "active":
        return _not_subscribed(web)
    saved = request.query_params.get("saved") == "1"
    return web.pages.manage(200, token, row, _form_token(web, "manage"), saved=saved)


def manage(web: WebSite, request: Request, posted: Posted | None) -> Response:
    token = request.path_params["token"]
    address = verify_purpose_token("manage", token, web.secret, web.list_id())
    if address is None:
        return _bad_link(web, "manage")
    assert posted is not None
    form = posted.form
    refused = web.guard_form(request, form, "manage", f"manage/{token}")
    if refused is not None:
        return refused
    row = web.store.get(address)
    if row is None or row.status != "active":
        return _not_subscribed(web)
    if form.get("action") == "leave":
        web.store.leave(address, web.clock(), reason="manage page")
        return _see(request, "unsubscribed")
    topics = [str(t) for t in form.getlist("topics")]
    name = clean_name(str(form.get("name", "")))[:100]
    problem = _check_subscription(web, row.email, topics)
    if problem is not None:
        return web.pages.manage(400, token, row, _form_token(web, "manage"), problem, topics, name)
    web.store.update(address, name, topics or None, web.clock())
    return _see(request, f"manage/{token}?saved=1")


def _not_subscribed(web: WebSite) -> Response:
    return web.pages.message(
        200,
        "Not subscribed",
        ["This address gets no digest from us."],
        link=(web.pages.urls["subscribe"], "Subscribe"),
    )


def unsubscribed(web: WebSite, request: Request, _: Posted | None) -> Response:
    return web.pages.message(
        200,
        "You are unsubscribed",
        ["You will get no more digests. Changed your mind? Subscribe again at any time."],
        link=(web.pages.urls["subscribe"], "Subscribe again"),
    )


def _unsubscribe_token(request: Request) -> str:
    """The token of /unsubscribe/TOKEN or of /unsubscribe?token=TOKEN."""
    token = request.path_params.get("token")
    return str(token) if token is not None else request.query_params.get("token", "")


def unsubscribe_page(web: WebSite, request: Request, _: Posted | None) -> Response:
    token = _unsubscribe_token(request)
    address = verify_unsubscribe_token(token, web.secret, web.list_id())
    if address is None:
        return _bad_link(web, "unsubscribe")
    row = web.store.get(address)
    active = row is not None and row.status == "active"
    if not active and web.store.left(address):  # the link's owner left already (a one-click)
        return _not_subscribed(web)
    # The form posts to the token as bulletin writes it: a link rewritten on the way (a
    # `/` for a `_`) still verifies, but would make a path that no route takes.
    return web.pages.button(
        "Unsubscribe",
        "One click and you get no more digests.",
        f"unsubscribe/{make_token(address, web.secret, web.list_id())}",
        "Unsubscribe",
        _form_token(web, "unsubscribe"),
        address=address,
        # Only where the manage page can help: a subscriber from a CSV has none.
        instead=(web.manage_link(address), "Or change your topics instead") if active else None,
    )


def unsubscribe(web: WebSite, request: Request, posted: Posted | None) -> Response:
    token = _unsubscribe_token(request)
    address = verify_unsubscribe_token(token, web.secret, web.list_id())
    assert posted is not None
    body, form = posted.body, posted.form
    # RFC 8058: urlencoded, multipart, or a bare body; no cookie, form token or redirect.
    if body.strip() == ONE_CLICK or form.get("List-Unsubscribe") == "One-Click":
        if address is None:
            return PlainTextResponse("This unsubscribe link is not valid.\n", status_code=400)
        web.store.leave(address, web.clock(), reason="one-click")
        return PlainTextResponse("Unsubscribed.\n", headers={"cache-control": "no-store"})
    if address is None:
        return _bad_link(web, "unsubscribe")
    page = f"unsubscribe/{make_token(address, web.secret, web.list_id())}"
    refused = web.guard_form(request, form, "unsubscribe", page)
    if refused is not None:
        return refused
    web.store.leave(address, web.clock(), reason="unsubscribe page")
    return _see(request, "unsubscribed")


# -- serve --watch -----------------------------------------------------------------------------


def preview_routes(web: WebSite, preview: Preview) -> list[Route]:
    """The routes only a preview has: its build status, the reload script, a digest as a
    given topic set gets it."""

    async def status(request: Request) -> Response:
        with preview.lock:
            return JSONResponse(
                {"build": preview.build, "errors": preview.errors}, headers={"cache-control": "no-store"}
            )

    async def script(request: Request) -> Response:
        return Response(RELOAD_SCRIPT, media_type="text/javascript; charset=utf-8")

    async def digest(request: Request) -> Response:
        return await run_in_threadpool(
            preview_digest, web, request.query_params.get("week"), request.query_params.get("topics")
        )

    return [
        Route("/__bulletin/status", status),
        Route("/__bulletin/reload.js", script),
        Route("/preview/digest", digest),
    ]


def preview_digest(web: WebSite, week: str | None, topics: str | None) -> Response:
    """/preview/digest?week=2026-W47&topics=a,b: the digest as that topic set gets it."""
    from ..digests.message import fill
    from ..digests.plan import plan_digest
    from ..digests.render import render_digest
    from ..digests.windows import iso_week, last_complete_week
    from ..report import Report
    from ..site.reader import read_site
    from ..urls import Urls

    config = web.config
    try:
        site = read_site(config, Report(), datetime.now(UTC))
    except NoContentError as error:
        return web.pages.message(503, "No items", [str(error)])
    try:
        window = iso_week(week, config.timezone) if week else last_complete_week(site.now, config.timezone)
    except BulletinError as error:  # worded for --week: the page names its own parameter
        return web.pages.message(400, "No such week", [str(error).replace("--week ", "week=", 1)])
    only = [slug.strip() for slug in topics.split(",") if slug.strip()] if topics else None
    unknown = sorted(set(only or ()) - set(site.topics.by_slug()))
    if unknown:
        return web.pages.message(400, "No such topic", [f"Unknown topic slug(s): {', '.join(unknown)}."])
    plan = plan_digest(config, site.topics, window, site.items, only)
    if plan.empty:
        return web.pages.message(200, "Nothing to show", [f"{window.label} has no items in these topics."])
    rendered = render_digest(config, site.topics, plan, window.name)
    sample = Urls(config, in_mail=True).unsubscribe("reader@example.org", "preview")
    page = fill(rendered.html, "Hi Dana,", html.escape(sample, quote=True))
    at = page.rfind("</body>")
    page = page[:at] + '<script src="/__bulletin/reload.js" defer></script>' + page[at:]
    return HTMLResponse(page, headers={"cache-control": "no-store"})
