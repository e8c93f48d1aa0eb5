"""The SMTP mailer's pacing and error mapping (the behaviour over a real server is in test_send)."""

from __future__ import annotations

import pytest

from bulletin.mail.mailer import DeliveryError, Pacing


def test_rate_spaces_messages_evenly() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacing = Pacing(rate=4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacing.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]  # the first message goes at once
    now[0] += 10  # a slow server: no catching up in a burst
    pacing.wait()
    pacing.wait()
    assert slept[-1] == 0.25 and len(slept) == 5


def test_no_rate_never_sleeps() -> None:
    pacing = Pacing(rate=None, sleep=lambda seconds: (_ for _ in ()).throw(AssertionError("slept")))
    for _ in range(3):
        pacing.wait()


def test_permanent_means_5xx() -> None:
    assert DeliveryError(550, "no").permanent
    assert not DeliveryError(451, "later").permanent
    assert str(DeliveryError(552, "too big")) == "552 too big"


def test_the_relay_error_says_how_long_it_tried() -> None:
    from bulletin.config import SmtpConfig
    from bulletin.mail.mailer import RelayError, SmtpMailer

    from .smtp import free_port

    slept: list[float] = []
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port()), None, sleep=slept.append)
    with pytest.raises(RelayError) as caught:
        mailer.connect()
    assert slept == [2.0, 4.0, 8.0]  # the defaults: 3 retries, doubling from 2 s
    assert "Connection refused (tried 4 times over 14 s); check smtp.host" in str(caught.value)


def test_a_silent_relay_names_the_limit_it_passed() -> None:
    """The subscribe page's 15 s limit was called smtp.timeout, which says 60."""
    from bulletin.config import SmtpConfig
    from bulletin.mail.mailer import SmtpMailer

    config = SmtpConfig(host="127.0.0.1", port=2525, timeout=60)
    assert "within 60 s (smtp.timeout)" in str(SmtpMailer(config, None)._silent())
    assert "within 15 s (bulletin's own limit here)" in str(SmtpMailer(config, None, timeout=15)._silent())
