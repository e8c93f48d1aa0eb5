"""Whether an address is one that browsers, feed readers and bulletin's sanitiser can open."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit


def url_problem(url: str) -> str | None:
    """Why the absolute http(s) `url` cannot be opened, or None when it can.

    Python's urlsplit takes hosts that no browser does (`e x.com`, `999.1.1.1`,
    `xn--a.com`). The WHATWG URL standard decides, as browsers and feed readers read it: it
    is asked through the parser nh3 resolves a body's relative links with (the Rust url
    crate), so that no link bulletin accepts can stop the sanitiser later. Only the scheme
    and the authority can make a URL fail (a path, query or fragment is percent-encoded,
    never refused), so the answer is kept per scheme and authority.
    """
    simple = _SIMPLE.match(url)
    if simple is not None and _plain_host(simple[1]) and int(simple[2] or 0) <= 65535:
        return None  # the usual link, read without urlsplit's cost
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:  # and urlsplit for unclosed or invalid [IPv6] brackets
        return str(exc)
    if "\\" in parts.netloc:  # browsers end the host there (a '/' to them); urlsplit does not
        return "a backslash in the host part"
    if "[" not in parts.netloc and _plain_host(parts.hostname or ""):
        return None  # ([v1.x] is a host to urlsplit, not to browsers)
    return _authority_problem(parts.scheme.lower(), parts.netloc)


def credentials(url: str) -> str | None:
    """The user name and password an absolute `url` carries, with the '@' that ends them
    ('user:secret@'), or None. Browsers open such a URL, but a feed publishes them, and the
    W3C feed validator refuses them in an enclosure."""
    if "@" not in url:
        return None
    rest = url.partition("://")[2]
    end = _AUTHORITY_END.search(rest)
    authority = rest if end is None else rest[: end.start()]
    at = authority.rfind("@")  # as browsers read it: the last '@' ends the user name and password
    return authority[: at + 1] if at >= 0 else None


_AUTHORITY_END = re.compile(r"[/?#\\]")  # browsers take a '\' for a '/' in http(s) URLs


# A lower-case http(s) URL with a plain host and maybe a port, and then its path, if any.
_SIMPLE = re.compile(r"https?://([a-z0-9.-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)", re.ASCII)
# Letters, digits, '-' and '.': a host every parser takes as it is, unless a label is
# punycode (checked) or the last one reads as a number (then it must be an IPv4 address).
_LDH = re.compile(r"[a-z0-9.-]+")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _plain_host(host: str) -> bool:
    """Whether the WHATWG parser surely takes `host` (lower case) without asking it."""
    if not _LDH.fullmatch(host) or "xn--" in host:
        return False
    last = host.rstrip(".").rpartition(".")[2]
    return bool(last) and not _NUMBER.fullmatch(last)


@functools.lru_cache(maxsize=4096)
def _authority_problem(scheme: str, authority: str) -> str | None:
    import nh3  # Rust, loaded only by a run that reads items or its configuration's URLs

    try:
        nh3.clean("", url_relative=("rewrite_with_base", f"{scheme}://{authority}/"))
    except ValueError as exc:  # 'invalid url_relative base URL "…": invalid port number'
        return str(exc).rpartition(": ")[2]
    return None


# After the authority RFC 3986 allows these characters, '%' only as an escape, and '#' once.
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]%]*")
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})")


def as_uri(url: str) -> str:
    """An absolute http(s) `url` (one url_problem accepts) written as a URI: its host as
    browsers read it, in ASCII (punycode), and every other character RFC 3986 does not allow
    percent-encoded as UTF-8 (a space, 'ß', '|', a '%' that starts no escape). Feed readers
    and validators then take it as it is; browsers open the same page."""
    authority = _AUTHORITY.match(url)
    if authority is not None:
        odd = _NOT_URI.search(url, authority.end())
        if odd is not None and odd.group() == "#":  # the fragment's start: look on after it
            odd = _NOT_URI.search(url, odd.end())
        if odd is None:
            return url  # the usual link: nothing to encode
    import html

    import nh3

    base, hash_, fragment = url.partition("#")
    # The WHATWG parser (the Rust url crate, through nh3) resolves "" or "#…" against the
    # URL: the host comes back as browsers read it, the rest encoded as they encode it.
    relative = html.escape(hash_ + fragment, quote=True)
    cleaned = nh3.clean(f'<a href="{relative}">x</a>', url_relative=("rewrite_with_base", base))
    found = re.search(r'href="([^"]*)"', cleaned)
    if found is None:
        return url
    whatwg = html.unescape(found.group(1))
    head = _AUTHORITY.match(whatwg)
    cut = head.end() if head is not None else 0
    # What WHATWG leaves and RFC 3986 refuses: '|', '{', '}', '[', ']', '^', a lone '%'…
    path, hash_, fragment = whatwg[cut:].partition("#")
    return whatwg[:cut] + _escaped(path) + hash_ + _escaped(fragment)


def _escaped(text: str) -> str:
    return _NOT_URI.sub(lambda found: "".join(f"%{byte:02X}" for byte in found.group().encode()), text)
