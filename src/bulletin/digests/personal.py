"""Personal copies of a digest message: greeting, To, unsubscribe link, fresh headers."""

from __future__ import annotations

import html
from email.header import Header
from email.utils import formataddr, parseaddr
from urllib.parse import urlsplit

from ..addresses import encoded_word
from ..config import Config
from ..tokens import make_purpose_token, make_token
from ..urls import Urls
from .message import Personal, SpliceError

MAX_NAME = 100  # longer names are cut in greetings and To headers
MAX_ADDRESS = 254  # RFC 5321's limit for a forward path


def sender_domain(config: Config) -> str:
    """The domain of digest.from: names Message-IDs."""
    address = parseaddr(config.digest.sender or "")[1]
    return address.rpartition("@")[2] or urlsplit(config.base_url).hostname or "localhost"


def greeting(name: str) -> tuple[str, str]:
    """The greeting as HTML and as text: the subscriber's name, or a neutral one."""
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        return "Hello,", "Hello,"
    return f"Hi {html.escape(name)},", f"Hi {name},"


def personal_copy(
    config: Config,
    name: str,
    address: str,
    token: str,
    message_id: str,
    date: str,
    manage_token: str | None = None,
) -> Personal:
    """What one subscriber's copy carries: greeting, To, unsubscribe and manage links, headers."""
    name = " ".join(name.split())[:MAX_NAME]
    urls = Urls(config, in_mail=True)
    url = urls.unsubscribe(address, token)
    html_greeting, text_greeting = greeting(name)
    mailto = config.digest.unsubscribe_mailto
    return Personal(
        greeting_html=html_greeting,
        greeting_text=text_greeting,
        unsubscribe_url=url,
        list_unsubscribe=(f"<mailto:{mailto}>, " if mailto else "") + f"<{url}>",
        one_click=True,
        message_id=message_id,
        date=date,
        to=to_header(name, address),
        manage_url=urls.manage_page(manage_token) if manage_token else "",
    )


def to_header(name: str, address: str) -> str:
    """The To value: the name always reads back as itself, never as another address.

    A plain ASCII name goes as a phrase (quoted where it needs it). Any other name goes as
    RFC 2047 encoded words, and so does an ASCII name that holds "=?": passed as it is,
    or even quoted (some readers decode inside quotes), a mail client would decode it, and
    "=?utf-8?b?…?=" can decode to "Mallory <mallory@evil.example>". The address goes as it
    is, so one holding an encoded word is refused (SpliceError): no address comes in with one.
    """
    if encoded_word(address):
        raise SpliceError(f"{address[:40]!r} holds an encoded word, which mail programs decode")
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        return formataddr((name, address))
    # RFC 2047: no encoded word over 75 characters, no line holding one over 76. So a long
    # name goes as several words, on folded lines, and the address on a line of its own.
    words = Header(name, "utf-8", header_name="To").encode(maxlinelen=76, linesep="\r\n")
    lines = words.split("\r\n")
    last = len(lines[-1]) + (len("To: ") if len(lines) == 1 else 0)
    joint = " " if last + len(f" <{address}>") <= 76 else "\r\n "
    return f"{words}{joint}<{address}>"


def worst_case(config: Config) -> Personal:
    """The largest personal copy possible: longest name (4-byte characters) and address."""
    local = "+" * 64
    labels = MAX_ADDRESS - len(local) - 1
    host = ".".join(["a" * 62] * (labels // 63)) + "." + "b" * (labels % 63 - 1)
    address = f"{local}@{host}"
    return personal_copy(
        config,
        "\U0001f600" * MAX_NAME,
        address,
        make_token(address, "any secret: tokens have one length", config.digest.list_id),
        # Longer than any fresh Message-ID, and fixed: sizes repeat.
        f"<{'x' * 64}@{sender_domain(config)}>",
        "Wed, 30 Sep 2026 23:59:59 +1400",
        make_purpose_token("manage", address, "any secret", config.digest.list_id) if config.web else None,
    )
