"""Unsubscribing: an address given by hand, or a token from a subscriber's own link."""

from __future__ import annotations

from datetime import datetime

from ..addresses import normalise_address, valid_address
from ..config import Config
from ..errors import UsageError
from ..ledger import Ledger
from ..tokens import require_secret, verify_unsubscribe_token


def unsubscribe_address(config: Config, address: str, now: datetime, *, new_ledger: bool = False) -> str:
    """Never mail `address` again (recorded in the ledger); the address."""
    address = address.strip()
    if not valid_address(address):
        raise UsageError(f"{address!r} is not an email address; write it as name@example.org, "
                         "or give the token from the subscriber's unsubscribe link")  # fmt: skip
    with Ledger.open(config.state_dir / "ledger.sqlite", create=new_ledger) as ledger:
        ledger.suppress(normalise_address(address), "unsubscribed", now)
    return address


def unsubscribe_token(
    config: Config, token: str, now: datetime, secret: str | None, *, new_ledger: bool = False
) -> str:
    """Unsubscribe the address an unsubscribe token was made for; UsageError when the token
    is not valid for this list (what a one-click endpoint honours, RFC 8058)."""
    address = verify_unsubscribe_token(token.strip(), require_secret(secret), config.digest.list_id)
    if address is None:
        raise UsageError(f"'{token}' is neither an address nor a valid unsubscribe token for this list")
    return unsubscribe_address(config, address, now, new_ledger=new_ledger)
