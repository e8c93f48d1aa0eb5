"""The pages of `bulletin serve`: Jinja2 templates, overridable from the site's templates/."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, Response

from .. import __version__
from ..addresses import display_address
from ..config import Config
from ..digests.windows import iso_week
from ..errors import NoContentError
from ..report import Report
from ..site.reader import read_site
from ..subscriptions import Row
from ..templates import environment

_WEEK = re.compile(r"^\d{4}-W\d{2}$")


class FormError(NamedTuple):
    """What is wrong with a form, and the field it is about ("email" or "topics"): the page
    marks that field invalid, describes it by the message and puts the focus there."""

    field: str
    text: str

    def __str__(self) -> str:  # a site's own template from before, printing {{ error }}
        return self.text


TOPICS_FOR = 300.0  # seconds the topic list is kept before it is read again
CONSENT = (
    "You will get one email a week with the topics you choose. Every email has a link to "
    "change your topics or unsubscribe with one click."
)

_log = logging.getLogger("bulletin.web")


class Pages:
    """Renders every page of the web side with the site's look."""

    def __init__(self, config: Config, web_url: str, preview: bool = False) -> None:
        self.config = config
        self.preview = preview  # serve --watch: pages reload when the site is rebuilt
        root = urlsplit(web_url).path or "/"
        self.urls = {
            "front": root,
            "subscribe": root + "subscribe",
            "css": root + "assets/bulletin.css",
            "rss": root + "feeds/rss.xml",
            "atom": root + "feeds/atom.xml",
            "feeds": root + "feeds/",
            "archive": root + "emails/",
        }
        self.root = root
        self._topics: list[dict[str, Any]] = []
        self._topics_read = -TOPICS_FOR

    # -- what pages show ---------------------------------------------------------------------

    def topics(self) -> list[dict[str, Any]]:
        """Every topic with its feeds, by name; read again every few minutes."""
        if time.monotonic() - self._topics_read >= TOPICS_FOR:
            try:
                site = read_site(self.config, Report(), datetime.now(UTC))
            except NoContentError as error:  # content/ is for building: the pages go on
                _log.warning("bulletin serve: topics kept as they were: %s", error)
                self._topics_read = time.monotonic()
                return self._topics
            self._topics = [
                {
                    "slug": topic.slug,
                    "name": topic.name,
                    "count": topic.count,
                    "page": f"{self.root}feeds/topic/{topic.slug}/",
                    **{
                        kind: f"{self.root}feeds/topic/{topic.slug}/{name}"
                        for kind, name in (("rss", "rss.xml"), ("atom", "atom.xml"), ("json", "feed.json"))
                    },
                }
                for topic in site.topics.sorted()
            ]
            self._topics_read = time.monotonic()
        return self._topics

    def topic_slugs(self) -> set[str]:
        return {topic["slug"] for topic in self.topics()}

    def digests(self, limit: int = 8) -> list[dict[str, str]]:
        """The newest weekly digests in emails/."""
        folder = self.config.emails_dir
        weeks = (
            sorted((p.name for p in folder.iterdir() if _WEEK.match(p.name)), reverse=True)
            if folder.is_dir()
            else []
        )
        found = []
        for name in weeks[:limit]:
            week = iso_week(name, self.config.timezone)
            last = week.until - timedelta(days=1)
            found.append(
                {
                    "url": f"{self.root}emails/{name}/digest.html",
                    "label": f"Week of {week.since.isoformat()} – {last.isoformat()}",
                }
            )
        return found

    def context(self, **extra: Any) -> dict[str, Any]:
        name, _ = parseaddr(self.config.digest.sender or "")
        return {
            "site": self.config,
            "version": __version__,
            "urls": self.urls,
            "sender": {"name": name or self.config.title, "postal": self.config.digest.address or ""},
            "preview": self.preview,
            "error": None,  # a FormError, on a form's page
            **extra,
        }

    # -- the pages ---------------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        page = environment(self.config).get_template(template).render(self.context(**values))
        return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})

    def front(self, form_token: str) -> Response:
        return self.render(
            "web_front.html.j2",
            topics=self.topics(),
            digests=self.digests(),
            consent=_consent(),
            form_token=form_token,
            values=_blank(),
            error=None,
        )

    def subscribe(
        self,
        status: int,
        form_token: str,
        error: FormError | None = None,
        values: dict[str, Any] | None = None,
    ) -> Response:
        return self.render(
            "web_subscribe.html.j2",
            status,
            topics=self.topics(),
            consent=_consent(),
            form_token=form_token,
            values=values or _blank(),
            error=error,
        )

    def message(
        self,
        status: int,
        heading: str,
        paragraphs: list[str],
        link: tuple[str, str] | None = None,
        retry_after: int | None = None,
    ) -> Response:
        """A page of a few paragraphs; `retry_after`: seconds to wait (a 429 or 503)."""
        shown = {"url": link[0], "text": link[1]} if link else None
        page = self.render("web_message.html.j2", status, heading=heading, paragraphs=paragraphs, link=shown)
        if retry_after is not None:
            page.headers["retry-after"] = str(retry_after)
        return page

    def button(
        self,
        heading: str,
        text: str,
        action: str,
        button: str,
        form_token: str,
        request: Row | None = None,
        address: str | None = None,
        instead: tuple[str, str] | None = None,
    ) -> Response:
        """A page with one button; `request`: the subscription it confirms, shown first;
        `address`: the one the button is for; `instead`: a link to another way (URL, text)."""
        return self.render(
            "web_button.html.j2",
            heading=heading,
            text=text,
            action=self.root + action,
            button=button,
            form_token=form_token,
            request=None if request is None else self._request(request),
            address=None if address is None else display_address(address),
            instead=None if instead is None else {"url": instead[0], "text": instead[1]},
        )

    def _request(self, row: Row) -> dict[str, Any]:
        """What a subscription asks for, by name: address, greeting, topics."""
        names = {topic["slug"]: topic["name"] for topic in self.topics()}
        chosen = sorted((names.get(slug, slug) for slug in row.topics or ()), key=str.casefold)
        return {"email": display_address(row.email), "name": row.name, "topics": chosen}

    def manage(
        self,
        status: int,
        token: str,
        row: Row,
        form_token: str,
        error: FormError | None = None,
        topics: list[str] | None = None,
        name: str | None = None,
        saved: bool = False,
    ) -> Response:
        chosen = set(topics) if topics is not None else set(row.topics or ())
        return self.render(
            "web_manage.html.j2",
            status,
            email=display_address(row.email),
            name=row.name if name is None else name,
            topics=self.topics(),
            chosen=chosen,
            action=f"{self.root}manage/{token}",
            form_token=form_token,
            error=error,
            saved=saved,
        )

    def stylesheet(self) -> Response:
        css = environment(self.config).get_template("web.css.j2").render(self.context())
        return Response(
            css, media_type="text/css; charset=utf-8", headers={"cache-control": "public, max-age=3600"}
        )


def _blank() -> dict[str, Any]:
    return {"email": "", "name": "", "topics": []}


def _consent() -> str:
    return CONSENT
