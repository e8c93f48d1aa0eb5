"""Unsubscribing: an address given by hand, or a token from a subscriber's own link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from ..addresses import address_fix, ascii_address, clipped, valid_address
from ..config import Config
from ..errors import UsageError
from ..ledger import Ledger
from ..subscriptions import Subscriptions
from ..tokens import require_secret, verify_purpose_token, verify_unsubscribe_token


@dataclass(frozen=True, slots=True)
class Left:
    """An address that will not be mailed again, and its status before (None: it was not
    on the subscriber list, only suppressed now, in case a subscriber file names it)."""

    address: str
    was: str | None
    suppressed: str | None = None  # why it was on the suppression list already, if it was


def unsubscribe(
    config: Config, who: str, now: datetime, secret: str | None, *, new_ledger: bool = False
) -> Left:
    """`bulletin unsubscribe ADDRESS|TOKEN`: an address, or the address a token was made for."""
    address = who if "@" in who else _token_address(config, who, secret)
    return _leave(config, address, now, new_ledger)


def unsubscribe_address(config: Config, address: str, now: datetime, *, new_ledger: bool = False) -> str:
    """Never mail `address` again (recorded in the ledger); the address."""
    return _leave(config, address, now, new_ledger).address


def unsubscribe_token(
    config: Config, token: str, now: datetime, secret: str | None, *, new_ledger: bool = False
) -> str:
    """Unsubscribe the address an unsubscribe token was made for; UsageError when the token
    is not valid for this list (what a one-click endpoint honours, RFC 8058)."""
    return _leave(config, _token_address(config, token, secret), now, new_ledger).address


def _token_address(config: Config, token: str, secret: str | None) -> str:
    """The address of a token, or of a digest's unsubscribe or manage link pasted whole."""
    secret = require_secret(secret)
    raw, purpose = _token_of(token.strip().strip("<>"))
    list_id = config.digest.list_id
    if purpose == "manage":
        address = verify_purpose_token("manage", raw, secret, list_id)
    else:
        address = verify_unsubscribe_token(raw, secret, list_id)
    if address is None:
        raise UsageError(
            f"'{token}' is neither an address nor a valid unsubscribe token for this list (if it "
            "came from this list's digests, BULLETIN_SECRET is not the secret that signed them)"
        )
    return address


def _token_of(given: str) -> tuple[str, str]:
    """The token itself, and whose it is ("unsubscribe" or "manage"): a link's ?t=…,
    ?token=… or the last part of its path (…/manage/TOKEN is a manage page's)."""
    if not given.lower().startswith(("https://", "http://")):
        return given, "unsubscribe"
    parts = urlsplit(given)
    query = parse_qs(parts.query)
    for name in ("t", "token"):
        if query.get(name):
            return query[name][0], "unsubscribe"
    folder, _, last = parts.path.rstrip("/").rpartition("/")
    return unquote(last), "manage" if folder.endswith("/manage") else "unsubscribe"


def _leave(config: Config, address: str, now: datetime, new_ledger: bool) -> Left:
    """As the unsubscribe page does: the subscriber's status and the suppression list both."""
    written, address = address.strip(), ascii_address(address)
    if not valid_address(address, stored=True):  # one the ledger may hold from before
        raise UsageError(f"{clipped(written)!r} is not an email address; {address_fix(written)}, "
                         "or give the token from the subscriber's unsubscribe link")  # fmt: skip
    with Ledger.open(config.state_dir / "ledger.sqlite", create=new_ledger) as ledger:
        store = Subscriptions(ledger)
        found, suppressed = store.get(address), ledger.suppression(address)
        store.leave(address, now, reason="unsubscribe command")
    return Left(address, None if found is None else found.status, suppressed)
