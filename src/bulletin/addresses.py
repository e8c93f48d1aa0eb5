"""Email addresses: which are valid, and the one form they are compared in."""

from __future__ import annotations

import re
import unicodedata

# A dot-atom only. Quoted local parts are refused: "bob"@ and "b\ob"@ spell the mailbox bob@,
# so they would slip past the daily cap and the suppression list, and real subscribers never
# need them; refusing them also keeps every address ASCII, as smtplib requires.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# "Display Name <local@domain>": the name may be anything but angle brackets and line breaks.
_MAILBOX = re.compile(r"[^<>\r\n]*<([^<>\r\n]*)>")
MAX_ADDRESS = 254  # RFC 5321's limit on a path, less its angle brackets


def normalise_address(address: str) -> str:
    """The form addresses are compared and stored in: trimmed and lower-cased, the local part
    too (mailbox providers fold case, so Bob@ and bob@ are one mailbox), an internationalised
    domain in ASCII (see ascii_address)."""
    return ascii_address(address).lower()


def mailbox_key(address: str) -> str:
    """The mailbox an address reaches, as far as one can tell from outside, for a limit counted
    per mailbox: normalise_address's form with the local part's +tag taken off (ann+news@
    reaches ann@), and at Gmail without dots (a.nn@googlemail.com is ann@gmail.com). The
    address itself stays as it was written everywhere else."""
    local, _, domain = normalise_address(address).rpartition("@")
    local = local.split("+", 1)[0] or local  # "+x@" is a mailbox of its own, not "@"
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), _GMAIL[0]
    return f"{local}@{domain}"


_GMAIL = ("gmail.com", "googlemail.com")  # one domain: ann@ at either is one mailbox


def ascii_address(address: str) -> str:
    """`address`, trimmed, with an internationalised domain in the ASCII form DNS and relays
    use: carol@bücher.de is carol@xn--bcher-kva.de (punycode, as browsers write the host).
    Anything else comes back as it was, for valid_address to refuse: a local part outside
    ASCII (a relay without SMTPUTF8 takes none), a domain no host parser accepts. Every way an
    address comes in (the subscribe form, files, commands) passes through here first, and
    valid_address accepts ASCII only, so a way that forgets refuses the address rather than
    handing smtplib one it cannot send to."""
    address = address.strip()
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii() or domain.isascii() or any(c in domain for c in _NOT_HOST):
        return address
    from .links import as_uri

    try:
        host = as_uri(f"http://{domain}/").removeprefix("http://").removesuffix("/")
    except ValueError:
        return address
    return f"{local}@{host}" if host.isascii() and _HOST.fullmatch(host) else address


# What would make the host parser read a path, port or user, or what it drops unsaid (tab, LF).
_NOT_HOST = frozenset("/?#@:[]\\ %\t\n\r")
_HOST = re.compile(r"[a-z0-9.-]+")


def recipient_address(address: str) -> str:
    """The address to mail and show in To: the local part as written, the domain lower-cased."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else address.strip()


def valid_address(address: str, *, stored: bool = False) -> bool:
    """A bare ASCII addr-spec, a dot-atom at a dotted domain: local@example.org (never a
    quoted local part such as "bob"@example.org, nor one holding an encoded word).

    `stored`: an address to find in the ledger, which may hold one with an encoded word from
    before they were refused, so that it can be shown and removed (never mailed)."""
    local, at, domain = address.rpartition("@")
    if not at or len(address) > MAX_ADDRESS or len(local) > 64 or not _LOCAL.fullmatch(local):
        return False
    if encoded_word(address) and not stored:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def encoded_word(address: str) -> bool:
    """Whether the part before @ holds "=?", the start of an RFC 2047 encoded word. Mail
    programs decode one even there (RFC 2047 forbids it, they do it all the same), so that
    =?utf-8?q?ceo=40victim.example=2C_x?=@example.org shows in To as two other addresses."""
    return "=?" in address.rpartition("@")[0]


def address_fix(address: str, otherwise: str = "write it as name@example.org") -> str:
    """How to write an address valid_address refused: `otherwise`, unless it holds a
    character that does not show or its local part is outside ASCII."""
    address = address.strip()
    most = f"an address has at most {MAX_ADDRESS}"
    if len(address) > MAX_ADDRESS:
        return f"it is {len(address):,} characters long and {most}: write one address"
    mailed = len(ascii_address(address))
    if mailed > MAX_ADDRESS:  # each non-ASCII label grows as xn--, the form relays take
        return (
            f"its domain in ASCII (xn--…) makes it {mailed:,} characters long and {most}: use a shorter one"
        )
    hidden = hidden_character(address)
    if hidden is not None:  # it would be shown as an address that looks right
        return (
            f"it holds {hidden}, which is hard to see: delete it, or type the address instead of pasting it"
        )
    local = address.rpartition("@")[0]
    if encoded_word(address) and valid_address(ascii_address(address), stored=True):
        return (
            "mail programs would read the '=?' before @ as an encoded word and show another "
            "address: write the address without it"
        )
    if local and not local.isascii():
        return (
            "the part before @ must be in ASCII letters, digits and .!#$%&'*+/=?^_`{|}~- "
            "(relays take no other)"
        )
    return otherwise


def hidden_character(address: str) -> str | None:
    """The first character in `address` that does not show or looks like a space (a
    zero-width, non-breaking or ideographic space, a variation selector, a Hangul filler
    pasted along with it), named for a message; None if none. Control characters (a line
    break) are not: shown as escapes, they are plain to see."""
    for character in address:
        if _hidden(character):
            return f"U+{ord(character):04X} {unicodedata.name(character, '')}".rstrip()
    return None


def visible(address: str) -> str:
    """`address` for a message: each character that does not show written as its escape
    (a\\u200bb@example.org), so that what is refused does not look like a valid address,
    and cut as clipped() cuts it."""
    return _escaped(clipped(address))


def _escaped(address: str) -> str:
    if address.isprintable() and not _INVISIBLE.search(address):
        return address
    shown = (
        c.encode("unicode_escape").decode("ascii") if not c.isprintable() or _INVISIBLE.match(c) else c
        for c in address
    )
    return "".join(shown)


def clipped(text: str) -> str:
    """`text` as a message quotes it: a megabyte pasted where an address goes is cut to its
    start, and the message says how long it was (address_fix)."""
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


_SHOWN = 100  # characters of a refused value that a message quotes


def _hidden(character: str) -> bool:
    if _INVISIBLE.match(character):
        return True
    return not character.isprintable() and unicodedata.category(character) in _HIDDEN


_HIDDEN = frozenset(("Cf", "Zs", "Zl", "Zp"))  # format characters and spaces other than ' '
# Printable to Python, blank on screen: Unicode's default-ignorable marks and letters
# (combining grapheme joiner, Mongolian and other variation selectors, Hangul fillers,
# Khmer inherent vowels) and the blank Braille pattern.
_INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)


def display_address(address: str) -> str:
    """`address` for a page its owner reads: a domain's xn-- labels in the letters they
    stand for (carol@xn--bcher-kva.de is shown as carol@bücher.de). It stays ASCII when a
    label does not decode, or decodes to a character that does not show (a bidi control),
    so that no page shows an address other than the one that is mailed."""
    local, at, domain = address.rpartition("@")
    if "xn--" not in domain.lower():
        return address
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return address
        labels.append(label)
    shown = ".".join(labels)
    if _escaped(shown) != shown or ascii_address("x@" + shown) != "x@" + domain.lower():
        return address
    return local + at + shown


def mailbox_fix(value: str, otherwise: str) -> str:
    """How to write a mailbox (`Name <local@example.org>`) or address that valid_mailbox
    refused: the same with its domain in ASCII, when that is all it lacks (news@bücher.de
    goes out as news@xn--bcher-kva.de), else address_fix's advice (which names a hidden
    character, even in a domain that would drop it)."""
    value = value.strip()
    match = _MAILBOX.fullmatch(value)
    address = match.group(1) if match else value
    converted = ascii_address(address)
    if hidden_character(address) is None and converted != address.strip() and valid_address(converted):
        fixed = value[: match.start(1)] + converted + value[match.end(1) :] if match else converted
        return f'write its domain in ASCII, as mail headers need it: "{fixed}"'
    return address_fix(address, otherwise)


def valid_mailbox(value: str) -> bool:
    """`local@example.org` or `Display Name <local@example.org>`."""
    value = value.strip()
    match = _MAILBOX.fullmatch(value)
    return valid_address(match.group(1) if match else value)
