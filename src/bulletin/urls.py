"""Every URL bulletin writes: feeds, pages, digests, item links and personal links, in one place."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from .config import Config
from .site.items import Item


def https(url: str, config: Config) -> str:
    """Everything the site hosts is linked over https in mail, unless it is this machine
    (the `serve --watch` preview, a local test), which serves plain http."""
    if not url.startswith("http://"):
        return url
    host = urlsplit(url).hostname
    ours = {urlsplit(config.base_url).hostname, urlsplit(config.site_url).hostname}
    if host in ours and not loopback(host):
        return "https://" + url[len("http://") :]
    return url


def loopback(host: str | None) -> bool:
    """Whether `host` names this machine, however a browser reads it: localhost (and
    *.localhost, localhost.localdomain), 127.0.0.0/8 in any IPv4 spelling (127.1,
    2130706433, 0x7f000001), ::1, ::ffff:127.0.0.1, and the unspecified 0.0.0.0 and ::."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    import ipaddress
    import socket

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:  # the short, decimal, octal and hex IPv4 forms browsers accept
            address = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


class Urls:
    """The URLs of one site. In mail (`in_mail`), whatever the site hosts is linked over https."""

    def __init__(self, config: Config, *, in_mail: bool = False) -> None:
        self.config = config
        self.in_mail = in_mail

    def _ours(self, url: str) -> str:
        return https(url, self.config) if self.in_mail else url

    def _published(self, path: str) -> str:
        return self._ours(self.config.base_url + path)

    def feed(self, folder: str, name: str) -> str:
        """A feed file under feeds/: `folder` is "" or "topic/<slug>/"."""
        return self._published(f"feeds/{folder}{name}")

    def feeds(self, folder: str) -> dict[str, str]:
        """The three formats of one feed, by kind."""
        return {
            "rss": self.feed(folder, "rss.xml"),
            "atom": self.feed(folder, "atom.xml"),
            "json": self.feed(folder, "feed.json"),
        }

    def feeds_index(self) -> str:
        return self._published("feeds/index.html")

    def opml(self) -> str:
        return self._published("feeds/feeds.opml")

    def topic_page(self, slug: str) -> str:
        return self._published(f"feeds/topic/{slug}/index.html")

    def digest_page(self, folder: str) -> str:
        """A digest's "view online" page under emails/."""
        return self._published(f"emails/{folder}/digest.html")

    def archive(self) -> str:
        """The digest archive, emails/index.html."""
        return self._published("emails/index.html")

    def manage(self) -> str:
        """The non-personal unsubscribe / manage link."""
        return self._ours(self.config.digest.manage_url)

    def unsubscribe(self, address: str, token: str) -> str:
        """One subscriber's unsubscribe link: digest.unsubscribe_url with {token} and {email}."""
        template = self.config.digest.unsubscribe_url or self.config.digest.manage_url
        url = template.replace("{token}", quote(token, safe="")).replace("{email}", quote(address, safe=""))
        return self._ours(url)

    def manage_page(self, token: str) -> str:
        """A subscriber's own manage page of `bulletin serve` (needs [web])."""
        web = self.config.web.url if self.config.web is not None else self.config.base_url
        return self._ours(f"{web}manage/{quote(token, safe='')}")

    def item(self, item: Item) -> tuple[str | None, str | None]:
        """An item's alternate link and its `via` link, following `links = source | site`."""
        if self.config.links == "site" and item.page:
            return self._ours(item.page), item.link
        alternate = item.link or item.page
        return (self._ours(alternate) if alternate else None), None

    def image(self, url: str) -> str:
        return self._ours(url)

    def subscribe(self) -> str | None:
        """The subscribe page of `bulletin serve`, when the site has one ([web])."""
        return self.config.web.url + "subscribe" if self.config.web is not None else None

    def site(self) -> str:
        return self._ours(self.config.site_url)
