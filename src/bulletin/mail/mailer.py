"""SMTP delivery: one connection reused, reopened when dropped, paced, 4xx retried."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..config import SmtpConfig
from ..errors import RefusedError


class RelayError(RefusedError):
    """The relay cannot be used at all (unreachable, silent, TLS or login failed): the run stops."""


# How a command that mails a list goes on once the relay works: what `serve` leaves out.
RESUME = ", then run the same command again (it resumes)"


def _timed_out(error: BaseException) -> bool:
    """Whether the relay went silent: smtplib reports a timeout as a lost connection."""
    return isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError)


class _Tracked(smtplib.SMTP):
    """A connection that knows when a message's whole text went out (its final '.')."""

    text_sent = False

    def send(self, s: Any) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.text_sent = True


class _TrackedSsl(smtplib.SMTP_SSL, _Tracked):
    """The same over implicit TLS (SMTP_SSL's socket, _Tracked's send)."""


class DeliveryError(Exception):
    """The server refused a message; `code` is its SMTP reply code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


@dataclass
class Pacing:
    """At most `rate` messages per second (None: as fast as the server takes them)."""

    rate: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None  # None: wait on `stop`, which cuts it short
    # Set when the run stops (Ctrl-C): no message starts after it, and no wait goes on.
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self) -> None:
        """Wait for this message's turn; shared by every connection, so the rate is global.
        Stopped when the run stops first: the message is not sent."""
        if self.stop.is_set():
            raise Stopped
        if not self.rate:
            return
        with self._lock:  # held while waiting: the next message's turn comes after this one's
            if self.stop.is_set():
                raise Stopped
            now = self.clock()
            if now < self._next:
                self.pause(self._next - now)
                if self.stop.is_set():
                    raise Stopped
                now = self._next
            self._next = now + 1.0 / self.rate

    def pause(self, seconds: float) -> None:
        """Sleep, unless (or until) the run stops."""
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.stop.wait(seconds)


class Stopped(Exception):
    """The run stopped before this message's turn came: it was not sent."""


class SmtpMailer:
    """Sends pre-built messages over one SMTP connection."""

    def __init__(
        self,
        config: SmtpConfig,
        password: str | None,
        pacing: Pacing | None = None,
        retries: int = 3,
        backoff: float = 2.0,
        timeout: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.password = password
        self.pacing = pacing or Pacing()
        self.retries = retries
        self.backoff = backoff
        self.timeout = float(config.timeout if timeout is None else timeout)
        # Where the limit comes from, for the message when the relay is silent past it.
        self.timeout_from = "smtp.timeout" if timeout is None else "bulletin's own limit here"
        self.sleep = sleep or self.pacing.pause  # back-off between retries: cut short by a stop
        self.connection: _Tracked | None = None
        self.reconnects = 0

    def connect(self) -> None:
        """Open the connection now rather than at the first send(); RelayError when the relay
        cannot be used at all."""
        if self.connection is None:
            self.connection = self._connect()

    def _connect(self) -> _Tracked:
        """A logged-in connection; RelayError when the relay cannot be used at all."""
        config = self.config
        where = f"{config.host}:{config.port}"
        attempt = 0
        while True:
            try:
                return self._open()
            except smtplib.SMTPAuthenticationError as exc:
                raise RelayError(
                    f"the relay {where} refused the login as {config.username!r} "
                    f"({exc.smtp_code}); check smtp.username and BULLETIN_SMTP_PASSWORD"
                ) from None
            except smtplib.SMTPNotSupportedError:
                raise RelayError(
                    f"the relay {where} does not offer STARTTLS or AUTH as configured; "
                    "check smtp.security and smtp.username"
                ) from None
            except ssl.SSLError as exc:
                raise RelayError(
                    f"TLS with {where} failed: {exc.reason or exc}; check smtp.security "
                    "(starttls or ssl) and the relay's certificate"
                ) from None
            except (OSError, smtplib.SMTPException) as exc:
                if _timed_out(exc):
                    raise self._silent() from None
                attempt += 1
                if attempt > self.retries:
                    tried = (
                        f" (tried {attempt} times over {self._waited(attempt):.0f} s)" if attempt > 1 else ""
                    )
                    raise RelayError(self._unreachable(exc, tried)) from None
                self.sleep(self.backoff * 2 ** (attempt - 1))
                if self.pacing.stop.is_set():  # the run stops: no more tries, but say why
                    raise RelayError(
                        self._unreachable(exc, f" (tried {attempt} times, then stopped)")
                    ) from None

    def _unreachable(self, error: BaseException, tried: str) -> str:
        where = f"{self.config.host}:{self.config.port}"
        return f"cannot reach the relay {where}: {error}{tried}; check smtp.host and smtp.port{RESUME}"

    def _waited(self, attempts: int) -> float:
        """The seconds slept between `attempts` tries to connect."""
        return sum(self.backoff * 2**n for n in range(attempts - 1))

    def _open(self) -> _Tracked:
        config = self.config
        connection: _Tracked
        if config.security == "ssl":
            connection = _TrackedSsl(config.host, config.port, timeout=self.timeout,
                                     context=ssl.create_default_context())  # fmt: skip
        else:
            connection = _Tracked(config.host, config.port, timeout=self.timeout)
        try:
            if config.security == "starttls":
                connection.starttls(context=ssl.create_default_context())
            if config.username:
                connection.login(config.username, self.password or "")
        except BaseException:
            with contextlib.suppress(OSError):
                connection.close()
            raise
        return connection

    def _silent(self) -> RelayError:
        return RelayError(
            f"the relay {self.config.host}:{self.config.port} did not answer within {self.timeout:g} s "
            f"({self.timeout_from}); check the relay{RESUME}"
        )

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Deliver one message; DeliveryError when the server refuses it for good, or keeps
        refusing it for now (4xx) after the retries; RelayError when the relay leaves it
        unanswered for smtp.timeout seconds in all (the back-off between retries aside)."""
        self.pacing.wait()
        attempt = 0
        waited = 0.0
        while True:
            began = time.monotonic()
            try:
                if self.timeout - waited <= 0:
                    raise self._silent()
                if self.connection is None:
                    self.connection = self._connect()
                if self.connection.sock is not None:  # the rest of this message's allowance
                    self.connection.sock.settimeout(self.timeout - waited)
                self.connection.text_sent = False
                refused = self.connection.sendmail(sender, [recipient], message)
                if refused:  # a single recipient: refused means the whole message was
                    code, reply = refused[recipient]
                    raise DeliveryError(code, reply.decode(errors="replace"))
                return
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients[recipient]
                error = DeliveryError(code, reply.decode(errors="replace"))
            except smtplib.SMTPResponseException as exc:
                said = exc.smtp_error
                said_text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
                error = DeliveryError(exc.smtp_code, said_text)
                if exc.smtp_code == 421:  # the server is closing the connection
                    self._drop()
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as exc:
                taken = self.connection is not None and self.connection.text_sent
                self._drop()
                if _timed_out(exc):  # a silent relay: waiting again would only repeat the wait
                    raise self._silent() from None
                if taken:  # the relay may have the message: not sent again in this run
                    said = "connection lost after the whole message went out, before the relay's answer"
                    raise DeliveryError(421, f"{said}: {exc}") from None
                # Dropped: reopen and try again (a reconnect does not count as a retry of
                # the message unless the connection keeps failing).
                self.reconnects += 1
                error = DeliveryError(421, f"connection lost: {exc}")
            waited += time.monotonic() - began
            if error.permanent:
                self._reset()
                raise error
            attempt += 1
            if attempt > self.retries:
                self._reset()
                raise error
            self.sleep(self.backoff * 2 ** (attempt - 1))
            if self.pacing.stop.is_set():  # the run stops: not tried again, counted as failed
                self._reset()
                raise error

    def _reset(self) -> None:
        # After a refused transaction the session is still usable; RSET makes sure.
        if self.connection is not None:
            try:
                self.connection.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.close()
        self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
        self.connection = None


class MailerPool:
    """`connections` SMTP connections to one relay, one per worker thread, sharing the pacing.

    Messages are handed over with submit(); whoever submits them also records what came of
    them, so the ledger keeps one writer.
    """

    def __init__(self, config: SmtpConfig, password: str | None, pacing: Pacing, connections: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.config, self.password, self.pacing = config, password, pacing
        self.connections = connections
        self.executor = ThreadPoolExecutor(connections, thread_name_prefix="bulletin-smtp")
        self.local = threading.local()
        self.mailers: list[SmtpMailer] = []
        self.lock = threading.Lock()

    def submit(self, sender: str, recipient: str, message: bytes) -> Future[None]:
        """Send one message on the next free connection."""
        return self.executor.submit(self._send, sender, recipient, message)

    def _send(self, sender: str, recipient: str, message: bytes) -> None:
        mailer: SmtpMailer | None = getattr(self.local, "mailer", None)
        if mailer is None:
            mailer = self.local.mailer = SmtpMailer(self.config, self.password, self.pacing)
            with self.lock:
                self.mailers.append(mailer)
        mailer.send(sender, recipient, message)

    def close(self) -> None:
        """Wait for the messages under way, drop those not started, say goodbye to the relay."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        for mailer in self.mailers:
            mailer.close()
