"""`bulletin serve`: the application under uvicorn, one or several worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Config
from ..errors import note_sigterm, terminated
from ..ledger import Ledger
from ..workers import die_with_parent


def serve(
    config: Config,
    host: str,
    port: int,
    workers: int,
    *,
    new_ledger: bool,
    say: Callable[[str], None],
    watch: bool = False,
) -> None:
    """Check the site can serve (configuration, secret, ledger), then serve it until stopped.

    With `watch`, serve a preview for authors instead: built into a scratch folder with
    local links, rebuilt on every change, open pages reloading by themselves.
    """
    import uvicorn

    from . import create_app

    if watch:
        _watch(config, host, port, say)
        return

    _check_port(host, port)
    if new_ledger:  # only once nothing else stops the run: exit 2 means nothing was done
        from ..tokens import require_secret

        config.require_mail()
        require_secret(os.environ.get("BULLETIN_SECRET"))
        Ledger.open(config.state_dir / "ledger.sqlite", create=True).close()
    site = str(config.site.resolve())
    app = create_app(site)  # fails here, with bulletin's message, when the site cannot serve
    elsewhere = elsewhere_warning(config, port)
    if elsewhere is not None:
        say(elsewhere)
    plural = "s" if workers > 1 else ""
    say(f"Serving {config.title} on {_base(host, port)} ({workers} worker{plural}); Ctrl-C stops")
    settings = {
        "http": ServeHttp,
        "limit_concurrency": connection_limit(),
        "host": host,
        "port": port,
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,
    }
    if workers == 1:
        _until_stopped(lambda: uvicorn.run(app, **settings))  # type: ignore[arg-type]
        return
    os.environ["BULLETIN_SITE"] = site  # each worker process builds its own application
    os.environ[_PARENT] = str(os.getpid())
    factory = "bulletin.web.serve:worker_app"
    _until_stopped(lambda: uvicorn.run(factory, factory=True, workers=workers, **settings))  # type: ignore[arg-type]


def _until_stopped(server: Callable[[], None]) -> None:
    """Run uvicorn's `server`, which takes SIGINT and SIGTERM over to shut down gracefully;
    after a SIGTERM, stop as every bulletin command does (the command line says so, then
    ends as killed by it). One worker: uvicorn hands the signal on, once it has shut down,
    to the handler that was there (bulletin's). Several: their supervisor just returns, and
    Python's wakeup file descriptor, which gets the number of every signal that arrives,
    tells which one it was."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous: int | None = None
    with contextlib.suppress(ValueError):  # not the main thread: a test, signals are not ours
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        server()
    finally:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        arrived = b""
        with contextlib.suppress(BlockingIOError):
            arrived = reader.recv(1024)
        reader.close()
        writer.close()
    if signal.SIGTERM in arrived:
        note_sigterm()
    if terminated():
        raise KeyboardInterrupt


_PARENT = "BULLETIN_SERVE_PARENT"  # the supervisor's process id, for its workers


def worker_app() -> Any:
    """The application in one of `serve --workers N`'s processes, which ends (gracefully,
    as on SIGTERM) when the supervisor dies: killed with -9, it would otherwise leave its
    workers serving, holding the port."""
    from . import create_app

    parent = os.environ.get(_PARENT, "")
    if parent.isdigit():
        die_with_parent(int(parent), signal.SIGTERM)
    return create_app()


def _check_port(host: str, port: int) -> None:
    """Refuse, in bulletin's words, a port that cannot be listened on (another server has it),
    before saying "Serving"; uvicorn would print its own error after that line."""
    from ..errors import RefusedError, UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as error:
        reason = error.strerror or str(error)
        where = f"cannot listen on {host} port {port}: {reason}"
        if error.errno == errno.EADDRINUSE:
            raise RefusedError(f"{where}; choose another --port, or stop what is listening there") from None
        if error.errno == errno.EACCES:
            raise RefusedError(f"{where}; ports below 1024 need more rights: choose one above") from None
        # An unknown name, an address this machine does not have.
        raise UsageError(
            f"{where}; give --host an address of this machine (127.0.0.1, or 0.0.0.0 for all)"
        ) from None


def _base(host: str, port: int) -> str:
    """The server's URL; an IPv6 address in brackets."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def elsewhere_warning(config: Config, port: int) -> str | None:
    """A warning when web.url names this machine on another port than the one served:
    redirects and the links in mail go to web.url, so they would all miss this server."""
    from urllib.parse import urlsplit

    from ..urls import loopback

    if config.web is None:
        return None
    url = urlsplit(config.web.url)
    if not loopback(url.hostname):
        return None  # a public address: a reverse proxy forwards it to whatever port this is
    wanted = url.port or (443 if url.scheme == "https" else 80)
    if wanted == port:
        return None
    return (
        f"warning: web.url is {config.web.url}, but this server listens on port {port}: redirects and "
        f"mailed links go to port {wanted}; serve with --port {wanted}, or change web.url"
    )


REQUEST_SECONDS = 10  # for a connection to send a request: its headers, and a form's body
MAX_CONNECTIONS = 1000  # a worker's most at once; more get a 503 (see connection_limit)


class ServeHttp(H11Protocol):
    """uvicorn's HTTP/1.1 with TCP_NODELAY on every connection, and a deadline for each request.

    With several workers uvicorn binds the socket itself without naming the TCP protocol,
    so asyncio leaves Nagle's algorithm on: each keep-alive answer then waits about 40 ms
    for the client's delayed ACK.

    uvicorn waits for a request's headers without end (its keep-alive timeout runs only
    between two requests, and stops at their first byte), so a connection that sends
    nothing, or half a request, held a file descriptor for good; enough of them and accept()
    failed, /healthz too. A connection now has REQUEST_SECONDS from its start, or from the
    first byte of its next request, to send the whole request, body included (a form's, at
    most 16 kB); else it is closed.
    """

    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._start_deadline()  # one that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        if self.deadline is None and self.conn.their_state is h11.IDLE:
            self._start_deadline()  # the next request on a connection kept alive
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._stop_deadline()  # the request is in (or the connection is over)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self.deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _stop_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # no answer: a client this slow is not waiting for one


def connection_limit() -> int:
    """How many connections a worker serves at once (uvicorn's limit_concurrency; past it,
    a request gets a 503 and its connection is closed): MAX_CONNECTIONS, or half the files
    the process may open, so that the ledger, the published files and the relay always
    have theirs."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft // 2))


def _watch(config: Config, host: str, port: int, say: Callable[[str], None]) -> None:
    import shutil
    import tempfile
    import threading
    from pathlib import Path

    import uvicorn

    from . import create_app
    from .preview import Preview

    _check_port(host, port)
    scratch = Path(tempfile.mkdtemp(prefix="bulletin-preview-"))
    stop = threading.Event()
    try:
        preview = Preview(config.site.resolve(), _base(host, port), scratch, say)
        preview.rebuild()
        secret = os.environ.get("BULLETIN_SECRET")
        if not secret or len(secret) < 16:  # the preview mails no subscriber: any secret will do
            import secrets

            secret = secrets.token_urlsafe(32)
            say("BULLETIN_SECRET is not set: the preview signs its links with a throwaway secret")
        app = create_app(preview=preview, secret=secret)
        preview.watch(stop)
        say(f"Previewing {config.title} on {_base(host, port)}, rebuilt on every change; Ctrl-C stops")
        say(f"  a digest as a topic set gets it: {_base(host, port)}preview/digest?week=YYYY-Www&topics=a,b")
        settings = {
            "http": ServeHttp,
            "host": host,
            "port": port,
            "log_level": "warning",
            "server_header": False,
        }
        _until_stopped(lambda: uvicorn.run(app, **settings))  # type: ignore[arg-type]
    finally:
        stop.set()
        shutil.rmtree(scratch, ignore_errors=True)
