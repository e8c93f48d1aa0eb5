"""bulletin: curated news items in, per-topic feeds and weekly email digests out.

The library under the command line::

    from pathlib import Path
    from datetime import datetime, UTC
    import bulletin

    config = bulletin.load_config(Path("."))
    report = bulletin.Report()
    built = bulletin.build_site(config, report, datetime.now(UTC))
    print(len(built.site.items), "items;", len(built.feeds.changed), "files written")

`unsubscribe_token(config, token, now, secret)` is what a small web endpoint needs to honour
one-click unsubscribes (RFC 8058); `verify_unsubscribe_token(token, secret, list_id)` checks
a token without recording anything.
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
    "build_site": "build",
    "Built": "build",
    "read_site": "site.reader",
    "Site": "site.reader",
    "Item": "site.items",
    "write_feeds": "feeds.writer",
    "write_digest": "digests.archive",
    "write_window_digest": "digests.archive",
    "write_recent_digests": "digests.archive",
    "iso_week": "digests.windows",
    "last_complete_week": "digests.windows",
    "send_digest": "mail.send",
    "SendOptions": "mail.send",
    "unsubscribe_address": "mail.unsubscribe",
    "unsubscribe_token": "mail.unsubscribe",
    "verify_unsubscribe_token": "tokens",
    "make_token": "tokens",
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
