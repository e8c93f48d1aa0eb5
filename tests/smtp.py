"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts and can be told
to refuse, defer or hang up."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipient: str
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Script:
    """Replies the server gives instead of accepting: per recipient, consumed in order."""

    rcpt: dict[str, list[str]] = field(default_factory=dict)
    hang_up_after: int | None = None  # drop the connection once, after this many messages
    slow: float = 0.0  # seconds to wait before each RCPT reply
    # Recipients whose message is taken, then the connection dropped before the reply.
    drop_after_data: set[str] = field(default_factory=set)


class Recorder:
    """The aiosmtpd handler."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.hung_up = False
        self.connections = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.script.slow:
            await asyncio.sleep(self.script.slow)
        replies = self.script.rcpt.get(address)
        if replies:
            return replies.pop(0)
        limit = self.script.hang_up_after
        if limit is not None and not self.hung_up and len(self.received) >= limit:
            self.hung_up = True
            server.transport.close()  # the connection drops before this message is accepted
            return "421 bye"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.received.append(Received(envelope.mail_from, recipient, envelope.original_content))
        if self.script.drop_after_data & set(envelope.rcpt_tos):
            server.transport.close()  # taken, and then no answer
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if r.recipient == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """Start with `with SmtpServer() as server:`; `server.port`, `server.handler.received`."""

    def __init__(self, script: Script | None = None, **options: Any) -> None:
        """`options` go to aiosmtpd: tls_context (STARTTLS), ssl_context (implicit TLS),
        authenticator, auth_required..."""
        self.handler = Recorder(script or Script())
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     decode_data=False, data_size_limit=None, **options)  # fmt: skip

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentRelay:
    """A relay on 127.0.0.1 that accepts connections and then stops answering: after the
    end of a message (`greet=True`), or at once, before its greeting (`greet=False`).

    `with SilentRelay() as relay:`; `relay.port`, `relay.messages` (how many it swallowed).
    """

    def __init__(self, greet: bool = True) -> None:
        self.greet = greet
        self.messages = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SilentRelay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()
        for connection in self.connections:
            connection.close()

    def _serve(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        if not self.greet:
            return  # the connection stays open; nothing is ever said
        replies = {b"EHLO": b"250 127.0.0.1\r\n", b"HELO": b"250 127.0.0.1\r\n", b"DATA": b"354 go ahead\r\n"}
        buffer = b""
        try:
            connection.sendall(b"220 127.0.0.1 ESMTP\r\n")
            while b"\r\n.\r\n" not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n" in buffer and not buffer.startswith(b"\x00"):
                    line, rest = buffer.split(b"\r\n", 1)
                    verb = line[:4].upper()
                    connection.sendall(replies.get(verb, b"250 OK\r\n"))
                    buffer = rest
                    if verb == b"DATA":
                        buffer = b"\x00" + buffer  # the message follows: stop reading commands
            self.messages += 1  # the whole message arrived; the reply never comes
        except OSError:
            return
