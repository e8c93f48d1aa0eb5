"""Where messages go instead of the relay: the dry run's outbox and one subscriber's preview."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

from ..files import write_atomic

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def file_name(address: str) -> str:
    """An address as a safe file name (local parts may hold '/' and worse)."""
    return _UNSAFE.sub("_", address)[:100] or "address"


class Outbox:
    """`.bulletin/outbox/`: a Maildir that every dry run starts afresh, one `.eml` a message,
    numbered in sending order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.removed = 0
        for sub in ("new", "cur", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            for old in (folder / sub).iterdir():
                if old.is_file():
                    old.unlink()
                    self.removed += 1
        self.count = 0

    def add(self, address: str, data: bytes) -> Path:
        self.count += 1
        path = self.folder / "new" / f"{self.count:06d}-{file_name(address)}.eml"
        write_atomic(path, data, durable=False)
        return path


def write_preview(folder: Path, address: str, data: bytes) -> tuple[Path, Path]:
    """One subscriber's copy as `.eml` (the whole message) and `.html` (its HTML part)."""
    eml, html = folder / f"{file_name(address)}.eml", folder / f"{file_name(address)}.html"
    message = email.message_from_bytes(data, policy=email.policy.default)
    body = message.get_body(("html",))
    page = body.get_content() if body is not None else ""
    write_atomic(eml, data, durable=False)
    write_atomic(html, str(page).encode(), durable=False)
    return eml, html
