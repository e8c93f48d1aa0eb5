"""`bulletin serve --watch`: the site built into a scratch folder with every link pointing at
the local server, rebuilt on every change of content, templates or configuration; open pages
reload by themselves and show the errors of a failed rebuild, while the last good output
stays served."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from ..build import build_site
from ..config import CONFIG_NAME, Config, parse_site_config, read_config
from ..errors import BulletinError, ConfigError
from ..report import Report, counted

# Injected into every page of the preview; reloads it after a rebuild, shows a failed one's errors.
RELOAD_SCRIPT = (resources.files("bulletin") / "web" / "reload.js").read_text(encoding="utf-8")


@dataclass
class Preview:
    """The scratch build: its configuration (local URLs), build number and last errors."""

    site: Path
    url: str
    scratch: Path
    say: Callable[[str], None]
    build: int = 0
    errors: list[str] = field(default_factory=list)
    config: Config | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: list[Callable[[Config], None]] = field(default_factory=list)

    def local_config(self) -> Config:
        """bulletin.toml with every published URL on the local server, output in the scratch folder."""
        data = read_config(self.site)
        local = copy.deepcopy(data)
        local["base_url"] = self.url
        if isinstance(data.get("base_url"), str):
            local.setdefault("site_url", data["base_url"])  # item pages and images stay where they are
        web = local.get("web")
        local["web"] = {**(web if isinstance(web, dict) else {}), "url": self.url}
        config = parse_site_config(self.site, local)
        from dataclasses import replace

        return replace(config, output=self.scratch)

    def rebuild(self) -> None:
        """Build into the scratch folder; on failure keep the last good output and say why."""
        started = time.monotonic()
        report = Report()
        try:
            config = self.local_config()
            built = build_site(config, report, datetime.now(UTC))
        except ConfigError as error:
            self._done(list(error.problems), None)
        except BulletinError as error:
            self._done([f"bulletin: {error}"], None)
        except Exception as error:  # a template that fails, a file that vanished mid-build…
            self._done([f"bulletin: the rebuild failed: {type(error).__name__}: {error}"], None)
        else:
            problems = [str(p) for p in report.sorted()]
            self._done(problems, config)
            counts = [counted(len(built.site.items), "item")]
            counts.append(counted(len(built.feeds.changed), "feed file"))
            if built.digests is not None:
                counts.append(counted(len(built.digests_written.changed), "digest file"))
            took = f"{time.monotonic() - started:.2f} s"
            self.say(f"rebuilt: {', '.join(counts)} changed ({took})")

    def _done(self, errors: list[str], config: Config | None) -> None:
        with self.lock:
            self.errors = errors
            if config is not None:
                self.config = config
                for listener in self.listeners:
                    listener(config)
            self.build += 1
        for line in errors:
            self.say(line)

    def watch(self, stop: threading.Event) -> threading.Thread:
        """Rebuild whenever content/, templates/ or bulletin.toml change, until `stop` is set."""
        import watchfiles

        site = self.site.resolve()
        inputs = (site / CONFIG_NAME, site / "content", site / "templates")

        def wanted(_change: object, path: str) -> bool:
            # The site's inputs only: never the outputs or the ledger beside them.
            found = Path(path)
            return any(found == p or p in found.parents for p in inputs)

        def loop() -> None:
            for _changes in watchfiles.watch(
                site, watch_filter=wanted, stop_event=stop, debounce=150, step=50, raise_interrupt=False
            ):
                self.rebuild()

        thread = threading.Thread(target=loop, name="bulletin-watch", daemon=True)
        thread.start()
        return thread
