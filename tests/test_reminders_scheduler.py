"""The running bot's scheduler ticks the reminders on an interval; the database decides what
is sent (Art. 37). A clock that jumps is followed at the next tick."""

from __future__ import annotations

from bot.config import ClockSettings
from bot.runtime.app import Runtime
from tests.conftest import Harness
from tests.support.reminders import PUBLISHER, at, completed, reminder_keys, reminders_to
from tests.support.waiting import wait_until


async def test_art37_the_scheduler_sends_a_due_reminder_once_after_the_clock_jumps(
    h: Harness,
) -> None:
    await completed(h)
    fast = h.settings.model_copy(update={"clock": ClockSettings(tick_seconds=0.02)})
    bot = Runtime(fast, clock=h.clock, wecom_backoff=0.0)
    await bot.start(background=True, http=False)
    try:
        h.clock.set(at(2026, 12, 22, 9, 5))  # the clock jumps to 5 working days before
        await wait_until(lambda: len(reminders_to(h, PUBLISHER)) == 1, "the 5-day reminder")
        ticks = bot.reminders.runs
        await wait_until(lambda: bot.reminders.runs >= ticks + 3, "three more ticks")
    finally:
        await bot.stop()
    assert len(reminders_to(h, PUBLISHER)) == 1
    assert [o for _, o in await reminder_keys(h, "publication")] == ["before5"]
