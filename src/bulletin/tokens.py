"""Signed tokens: every link and form of bulletin's, verified with the secret alone.

The unsubscribe token of every digest is the address and an HMAC of it:

    token = b64url(address) + "." + b64url(HMAC-SHA256(secret, list_id + "\\n" + address))[:22]

The web side's confirm and manage links carry a purpose (and, to confirm, an expiry) under
a key of their own, so no kind of token ever works as another; its forms carry a signed,
time-limited form token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

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
    address = _decode(token)
    if address is None or "\n" in address:
        return None
    signature = token.split(".")[1]
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


PURPOSES = ("confirm", "manage")


def _purpose_key(secret: str, purpose: str) -> bytes:
    # One key per purpose: a confirm token cannot verify as a manage token, or the reverse,
    # and neither shares a key with the unsubscribe token.
    return hmac.new(secret.encode(), f"bulletin token key: {purpose}".encode(), hashlib.sha256).digest()


def _purpose_signature(payload: str, secret: str, purpose: str, list_id: str) -> str:
    mac = hmac.new(_purpose_key(secret, purpose), f"{list_id}\n{payload}".encode(), hashlib.sha256)
    return _b64url(mac.digest())[:SIGNATURE_CHARS]


def make_purpose_token(
    purpose: str, address: str, secret: str, list_id: str, expires: int | None = None, request: str = ""
) -> str:
    """A link token for `purpose` ("confirm" or "manage"); `expires` in Unix seconds;
    `request`: which request a confirm link confirms (when it was made), so that a later
    request for the same address, by anyone, cannot be confirmed with this link."""
    assert purpose in PURPOSES
    assert "\n" not in request and (expires is not None or not request)
    payload = address if expires is None else f"{address}\n{expires}"
    payload += f"\n{request}" if request else ""
    return f"{_b64url(payload.encode())}.{_purpose_signature(payload, secret, purpose, list_id)}"


def verify_purpose_token(
    purpose: str, token: str, secret: str, list_id: str, now: float | None = None
) -> str | None:
    """The address of a valid, unexpired token for `purpose`, else None; never raises."""
    verified = _verify_purpose(purpose, token, secret, list_id, now)
    return None if verified is None else verified[0]


def verify_confirm_token(
    token: str, secret: str, list_id: str, now: float | None = None
) -> tuple[str, str] | None:
    """The address and the request ("" for a link made before links named one) of a valid,
    unexpired confirm token, else None; never raises."""
    return _verify_purpose("confirm", token, secret, list_id, now)


def _verify_purpose(
    purpose: str, token: str, secret: str, list_id: str, now: float | None
) -> tuple[str, str] | None:
    payload = _decode(token)
    if payload is None:
        return None
    signature = token.split(".")[1]
    expected = _purpose_signature(payload, secret, purpose, list_id)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    address, _, rest = payload.partition("\n")
    expires, _, request = rest.partition("\n")
    if expires:
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
    elif purpose == "confirm":
        return None  # a confirm token always expires
    return (address, request) if address else None


def _decode(token: str) -> str | None:
    """The payload of `b64url(payload).signature`, or None for anything malformed."""
    if not isinstance(token, str) or token.count(".") != 1 or not token.isascii() or len(token) > 1024:
        return None
    encoded = token.split(".")[0]
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    # The payload's one encoding only: the decoder skips what is not base64 ("!!~~"), takes
    # padding and ignores a last character's spare bits, so that many tokens would verify as
    # one. A link rewritten from base64url's - and _ to + and / stays the same token.
    if _b64url(payload.encode()) != encoded.replace("+", "-").replace("/", "_"):
        return None
    return payload if payload and "\r" not in payload else None


def make_form_token(form: str, secret: str, list_id: str, now: float | None = None) -> str:
    """A one-time form token: the form's name, when it was issued and a nonce, signed for
    list `list_id` (two sites that share a secret take none of each other's)."""
    issued = int(time.time() if now is None else now)
    payload = f"{form}\n{issued}\n{secrets.token_urlsafe(12)}"
    return f"{_b64url(payload.encode())}.{_purpose_signature(payload, secret, 'form', list_id)}"


def verify_form_token(
    token: str, form: str, secret: str, list_id: str, max_age: float, now: float | None = None
) -> str | None:
    """The nonce of a valid form token of list `list_id` for `form`, no older than `max_age`
    seconds, else None.

    The caller records the nonce so that a form cannot be sent twice.
    """
    payload = _decode(token)
    if payload is None or payload.count("\n") != 2:
        return None
    signature = token.split(".")[1]
    expected = _purpose_signature(payload, secret, "form", list_id)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    name, issued, nonce = payload.split("\n")
    clock = time.time() if now is None else now
    if name != form or not issued.isdigit() or not (clock - max_age <= int(issued) <= clock + 60):
        return None
    return nonce


def verp_tag(address: str, secret: str) -> str:
    """The tag of a subscriber's VERP return path (`bounces+TAG@example.org`): 16 characters
    of an HMAC of the address, so a bounce names its subscriber and the tag names nobody
    else; lower-case letters and digits, which every mail system keeps as they are."""
    mac = hmac.new(_purpose_key(secret, "verp"), address.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:10]).decode("ascii").lower()
