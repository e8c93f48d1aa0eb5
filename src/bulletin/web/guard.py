"""What stands between the internet and the pages: hosts, headers, redirects, body limits,
client addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 16 * 1024
PUBLISHED = ("/feeds/", "/emails/", "/preview/")  # pages with their own inline styles

# Pages: nothing from elsewhere, never in a frame, no referrer to other sites (tokens are in
# the URLs). Not no-referrer: under it a browser sends a form's POST with "Origin: null",
# which cannot be told from another site's page (see cross_site).
PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]
FILE_HEADERS = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
# And the published folders' HTML: static pages with inline styles and items' images from
# anywhere, never a script, a frame or a form of their own. Styles from 'self' too: a 404
# there is one of the pages above, with its stylesheet.
FILE_PAGE_POLICY = (
    b"default-src 'none'; img-src https: http: data:; style-src 'self' 'unsafe-inline'; "
    b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PREVIEW_SCRIPTS = b"; script-src 'self'; connect-src 'self'"  # serve --watch: reload.js and its polling


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
UNCHECKED = "/healthz"  # health checks often ask by the machine's address; it tells nothing


def allowed_hosts(public_url: str) -> list[str]:
    """The hosts the application answers for: the public URL's, and the local machine's."""
    host = (urlsplit(public_url).hostname or "").lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal, as the Host header writes it
    return sorted({host, *LOCAL_HOSTS} - {""})


class Guard:
    """Requests for another host refused (400); security headers on every answer; redirects
    to the public URL; request bodies over 16 kB refused (413).

    `public_url` gives web.url: redirects are built from it, never from the Host header,
    which the client chooses. `preview` (serve --watch): the published pages run the
    script that reloads them.
    """

    def __init__(self, app: App, public_url: Callable[[], str], preview: bool = False) -> None:
        self.app = app
        self.public_url = public_url
        policy = FILE_PAGE_POLICY + PREVIEW_SCRIPTS if preview else FILE_PAGE_POLICY
        self.file_page_headers = [
            *FILE_HEADERS,
            (b"content-security-policy", policy),
            (b"x-frame-options", b"DENY"),
        ]
        self.checked = TrustedHostMiddleware(
            app, allowed_hosts=allowed_hosts(public_url()), www_redirect=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", ""))  # read now: routing changes it for mounted folders
        path = _below(str(scope["path"]), root)  # uvicorn --root-path puts the root in front
        app = self.app if path == UNCHECKED else self.checked

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                headers = [*given, *self._security_headers(path, given)]
                if 300 <= message["status"] < 400:
                    headers = [
                        (name, self._public(value, root) if name.lower() == b"location" else value)
                        for name, value in headers
                    ]
                message["headers"] = headers
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await _too_large(send_with_headers)
            return
        if scope["method"] != "POST":
            await app(scope, receive, send_with_headers)
            return
        # Bodies are small: read the whole body first, refusing it past the limit, then
        # hand it on, so a chunked body cannot run past the limit either.
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _too_large(send_with_headers)
                return
            if not message.get("more_body", False):
                break
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send_with_headers)

    def _security_headers(self, path: str, given: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The headers an answer gets besides its own (`given`): a page's, or a published
        file's, and a published HTML page's."""
        if not path.startswith(PUBLISHED):
            return PAGE_HEADERS
        types = [value for name, value in given if name.lower() == b"content-type"]
        html = any(value.lower().startswith(b"text/html") for value in types)
        return self.file_page_headers if html else FILE_HEADERS

    def _public(self, location: bytes, root: str) -> bytes:
        """A redirect's target on the public URL: its path (below the server's root path) and
        query kept, its scheme and host (which Starlette takes from the request) replaced."""
        target = urlsplit(location.decode("latin-1"))
        path = _below(target.path, root)
        query = f"?{target.query}" if target.query else ""
        return f"{self.public_url()}{path.lstrip('/')}{query}".encode("latin-1")


def _below(path: str, root: str) -> str:
    """`path` without the root path in front of it (cut at a '/': /sub, not /subscribe),
    with one leading '/' (a root given as '/x/' leaves '//healthz' behind)."""
    root = root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return "/" + path.lstrip("/")


async def _too_large(send: Send) -> None:
    body = b"Request body too large: forms take at most 16 kB.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def origin(url: str) -> str | None:
    """The origin of `url` as a browser's Origin header writes it (scheme://host, the port
    only when it is not the scheme's own), or None when it has none (Origin: null)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _PORTS[scheme] else "")


_PORTS = {"http": 80, "https": 443}


def cross_site(headers: Mapping[str, str], own: set[str]) -> bool:
    """Whether a browser marks a request as sent from another site's page: an Origin that is
    none of `own` (origins as origin() writes them), or Sec-Fetch-Site: cross-site. A request
    with neither (curl, a mail provider's one-click POST) comes from no page at all.

    "Origin: null" (a sandboxed frame, a page under no-referrer) counts as another site's,
    unless Sec-Fetch-Site, which no page can set, says the page was this server's own: a
    page served before the pages' referrer policy allowed their Origin."""
    fetched = headers.get("sec-fetch-site", "").strip().lower()
    if fetched == "cross-site":
        return True
    sent = headers.get("origin")
    if sent is None or origin(sent) in own:
        return False
    return not (sent.strip() == "null" and fetched == "same-origin")


def client_address(peer: str | None, forwarded: str | None, trusted: tuple[str, ...]) -> str:
    """The client's address: the peer, or behind a trusted proxy the last untrusted hop of
    X-Forwarded-For. Unknown peers count as one client."""
    if peer is None:
        return "unknown"
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not forwarded or not is_trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not is_trusted(hop):
            return hop
    return peer


def rate_key(client: str) -> str:
    """What a client is counted as for the rate limit: an IPv4 address as it is, an IPv6
    address by its /64 (one household or server gets a whole /64, so per address it could
    post without end); anything else (`unknown`) as it is."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # IPv4 seen through an IPv6 socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
