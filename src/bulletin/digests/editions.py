"""A window's edition: the items its digest carries, frozen in the ledger at the first send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..site.items import Item
from ..site.reader import Site
from .windows import Window

if TYPE_CHECKING:  # sqlite3 loads only when a ledger exists
    from ..ledger import Ledger


@dataclass(frozen=True, slots=True)
class Edition:
    """The items a window's digest carries: frozen at the first real send, or as of now."""

    candidates: tuple[Item, ...]
    late: frozenset[str]
    frozen: bool


def edition(site: Site, window: Window, ledger: Ledger | None, freeze: bool) -> Edition:
    """The window's item list (no item left out: one that comes late goes in the next
    window); freeze it when `freeze`."""
    by_id = {item.id: item for item in site.items}
    stored = ledger.frozen(window.name) if ledger is not None else None
    if stored is not None:
        # Edited items show their current text; deleted ones drop out.
        kept = tuple(by_id[item_id] for item_id in stored if item_id in by_id)
        return Edition(kept, frozenset(item.id for item in kept if item.published not in window), True)
    floor = window.start - timedelta(days=site.config.digest.late_days)
    first = ledger.first_frozen_start() if ledger is not None else None
    # No window was ever frozen: this one is the first, so nothing is late yet.
    earliest = max(floor, first) if first is not None else window.start
    taken = ledger.frozen_ids() if ledger is not None else set()
    chosen: list[Item] = []
    late_ids: set[str] = set()
    for item in site.items:  # newest first
        if item.published in window:
            chosen.append(item)
        elif earliest <= item.published < window.start and item.id not in taken:
            chosen.append(item)
            late_ids.add(item.id)
    if freeze and ledger is not None:
        ledger.freeze(window.name, window.start, [item.id for item in chosen])
    return Edition(tuple(chosen), frozenset(late_ids), freeze)


def frozen_editions(site: Site, windows: Sequence[Window]) -> dict[str, Edition]:
    """The item lists frozen in the ledger for these windows (those already sent), if any."""
    from ..ledger import Ledger

    path = site.config.state_dir / "ledger.sqlite"
    if not path.exists():
        return {}
    ledger = Ledger.existing(path)  # an empty file is no ledger yet; it stays untouched
    if ledger is None:
        return {}
    with ledger:
        found = {w.name: edition(site, w, ledger, freeze=False) for w in windows}
    return {name: chosen for name, chosen in found.items() if chosen.frozen}
