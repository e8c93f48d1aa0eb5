"""Unsubscribe tokens: the address and an HMAC, so a web endpoint needs no database.

token = b64url(address) + "." + b64url(HMAC-SHA256(secret, list_id + "\\n" + address))[:22]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .errors import UsageError

SIGNATURE_CHARS = 22  # 132 bits of the HMAC


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signature(address: str, secret: str, list_id: str) -> str:
    mac = hmac.new(secret.encode(), f"{list_id}\n{address}".encode(), hashlib.sha256)
    return _b64url(mac.digest())[:SIGNATURE_CHARS]


def make_token(address: str, secret: str, list_id: str) -> str:
    """The token for `address` on list `list_id`."""
    return f"{_b64url(address.encode())}.{_signature(address, secret, list_id)}"


def verify_unsubscribe_token(token: str, secret: str, list_id: str) -> str | None:
    """The address a token was made for, or None when it is not a valid token for this list.

    For a small web endpoint honouring one-click unsubscribes (RFC 8058): it never raises
    on garbage input.
    """
    if not isinstance(token, str) or token.count(".") != 1 or not token.isascii():
        return None
    encoded, signature = token.split(".")
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not address or "\r" in address or "\n" in address:
        return None
    expected = _signature(address, secret, list_id)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return address


def require_secret(secret: str | None) -> str:
    """BULLETIN_SECRET, refusing a missing or short one with how to make one."""
    if secret is None or len(secret) < 16:
        make = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        raise UsageError(
            "BULLETIN_SECRET is not set (or shorter than 16 characters); it signs unsubscribe "
            f'links: export BULLETIN_SECRET="$({make})" and keep it: changing it breaks the '
            "links already sent"
        )
    return secret
