"""`bulletin serve`: the application under uvicorn, one or several worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..config import Config
from ..ledger import Ledger


def serve(
    config: Config, host: str, port: int, workers: int, *, new_ledger: bool, say: Callable[[str], None]
) -> None:
    """Check the site can serve (configuration, secret, ledger), then serve it until stopped."""
    import uvicorn

    from . import create_app

    if new_ledger:
        Ledger.open(config.state_dir / "ledger.sqlite", create=True).close()
    site = str(config.site.resolve())
    app = create_app(site)  # fails here, with bulletin's message, when the site cannot serve
    plural = "s" if workers > 1 else ""
    say(f"Serving {config.title} on http://{host}:{port}/ ({workers} worker{plural}); Ctrl-C stops")
    settings = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,
    }
    if workers == 1:
        uvicorn.run(app, **settings)  # type: ignore[arg-type]
        return
    os.environ["BULLETIN_SITE"] = site  # each worker process builds its own application
    uvicorn.run("bulletin.web:create_app", factory=True, workers=workers, **settings)  # type: ignore[arg-type]
