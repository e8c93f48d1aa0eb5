"""DKIM signatures with dkimpy, covering both List headers (RFC 8058 one-click needs it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..config import DkimConfig
from ..errors import ConfigError

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip


@lru_cache(maxsize=4)
def _key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [f"bulletin.toml: error: dkim.key_file: cannot read {path}: {exc.strerror}"]
        ) from None


def sign(message: bytes, config: DkimConfig) -> bytes:
    """The message with a DKIM-Signature header in front."""
    import dkim

    signature = dkim.sign(
        message,
        config.selector.encode(),
        config.domain.encode(),
        _key(config.key_file),
        include_headers=list(SIGNED_HEADERS),
    )
    return bytes(signature) + message
