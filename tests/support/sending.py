"""Helpers for the sender's fault tests: a WeCom client whose backoff advances the test clock,
and WeCom's own count of a member's deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.context import FixedClock
from bot.wecom.api import WeComClient
from bot.wecom.standin import RATE_WINDOW, Delivery
from tests.conftest import Harness

SEND = "/cgi-bin/message/send"


def client_on_test_clock(h: Harness, backoff: float = 0.5) -> WeComClient:
    """A client whose retries wait on the test clock: the clock moves by each backoff, as the
    world would while the client sleeps."""
    clock: FixedClock = h.clock

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    base = h.runtime.client()  # opens the runtime's HTTP session
    w = h.settings.wecom
    assert h.runtime.http is not None
    return WeComClient(
        h.runtime.http,
        corp_id=w.corp_id,
        secret=w.secret.get_secret_value(),
        agent_id=base.agent_id,
        api_base=w.api_base,
        backoff=backoff,
        sleep=sleep,
    )


def most_in_any_window(deliveries: Sequence[Delivery], userid: str) -> int:
    """The most deliveries to ``userid`` WeCom counted in any window of RATE_WINDOW seconds."""
    times = sorted(d.at for d in deliveries if d.userid.lower() == userid.lower())
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= RATE_WINDOW:
            start += 1
        most = max(most, end - start + 1)
    return most
