"""The SMTP mailer's pacing and error mapping (the behaviour over a real server is in test_send)."""

from __future__ import annotations

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
