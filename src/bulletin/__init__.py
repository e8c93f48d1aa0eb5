"""bulletin: curated news items in, per-topic feeds and weekly email digests out.

The library under the command line::

    from pathlib import Path
    from datetime import datetime, UTC
    import bulletin

    config = bulletin.load_config(Path("."))
    report = bulletin.Report()
    site = bulletin.read_site(config, report, datetime.now(UTC))
    bulletin.write_feeds(site)
    bulletin.write_recent_digests(site, report)

`verify_unsubscribe_token(token, secret, list_id)` is what a small web endpoint needs to
honour one-click unsubscribes (RFC 8058).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Names are imported on first use, so `import bulletin` (and the command line) stays fast.
_EXPORTS = {
    "load_config": "config",
    "Config": "config",
    "Report": "report",
    "Problem": "report",
    "read_site": "build",
    "write_feeds": "build",
    "Site": "build",
    "Item": "items",
    "write_digest": "emails",
    "write_recent_digests": "emails",
    "send_digest": "send",
    "SendOptions": "send",
    "verify_unsubscribe_token": "unsubscribe",
    "make_token": "unsubscribe",
    "BulletinError": "errors",
    "ConfigError": "errors",
    "RefusedError": "errors",
    "UsageError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bulletin' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
