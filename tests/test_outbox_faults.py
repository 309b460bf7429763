"""The sender under faults: nothing lost, nothing doubled, WeCom's per-recipient budget kept as
WeCom counts it (on arrival), one recipient's trouble holding up no one else."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.runtime.sender import OutboxSender
from storage import outbox as ob
from storage.outbox import REPLY, Outbox
from tests.conftest import Harness
from tests.support.sending import SEND, client_on_test_clock, most_in_any_window
from tests.support.waiting import wait_until, within


async def _replies(h: Harness, user: str, n: int, prefix: str = "回复") -> None:
    async with h.db.transaction() as session:
        outbox = Outbox(session, h.clock.now())
        for i in range(n):
            outbox.reply(user, f"{prefix} {i}")


def _numbers(h: Harness, user: str) -> list[int]:
    return [int(t.split()[-1]) for t in h.wecom.texts_to(user)]


def _all_once_in_order_within_budget(h: Harness, user: str, n: int) -> None:
    assert h.wecom.dropped == []
    assert _numbers(h, user) == list(range(n))
    assert most_in_any_window(h.wecom.deliveries, user) <= 30


async def test_budget_is_counted_on_arrival_a_late_first_minute_is_not_overrun(h: Harness) -> None:
    """40 replies to one user: the first 30 arrive 0.5 s after they were sent; the 31st must
    not go a minute after the first was *sent*, or WeCom (counting arrivals) drops it."""
    h.wecom.latency = 0.5
    await _replies(h, "u", 40)
    await h.settle()
    assert len(h.wecom.texts_to("u")) == 30
    h.wecom.latency = 0.0
    h.clock.advance(seconds=60)
    await h.settle()
    assert h.wecom.dropped == []
    h.clock.advance(seconds=h.settings.worker.budget_margin_seconds + 1)
    await h.settle()
    _all_once_in_order_within_budget(h, "u", 40)


async def test_budget_is_counted_on_arrival_when_the_first_send_is_retried(h: Harness) -> None:
    """The first reply is answered -1 twice: it arrives after the client's backoff (1.5 s on
    the clock), not when its slot was reserved."""
    sender = OutboxSender(h.db, client_on_test_clock(h), h.settings, h.clock)
    h.wecom.inject(SEND, errcode=-1, times=2)
    await _replies(h, "u", 40)
    await sender.run_once()
    assert len(h.wecom.texts_to("u")) == 30
    h.clock.set(h.clock.now() + dt.timedelta(seconds=60 - 1.5))  # a minute after the first slot
    await sender.run_once()
    assert h.wecom.dropped == []
    h.clock.advance(seconds=h.settings.worker.budget_margin_seconds + 2)
    await sender.run_once()
    _all_once_in_order_within_budget(h, "u", 40)


async def test_a_send_lost_in_transit_keeps_its_slot(h: Harness) -> None:
    """WeCom takes the first reply but every answer to it is lost: it counts in WeCom's minute,
    so only 29 others may follow in that minute; its resend is dropped by WeCom as a copy."""
    h.wecom.inject(SEND, drop_connection=True, after=True, times=4, to="u")
    await _replies(h, "u", 31)
    await h.settle()
    assert len(h.wecom.texts_to("u")) == 30 and h.wecom.dropped == []
    h.clock.advance(minutes=2)
    await h.settle()
    assert h.wecom.dropped == []
    assert sorted(_numbers(h, "u")) == list(range(31))  # each once
    assert {m.status for m in await h.outbox()} == {"sent"}


async def test_two_token_errors_in_a_row_are_retried_later_not_given_up(h: Harness) -> None:
    """42001, a fresh token, 40014 again: transient; the message waits and goes later."""
    h.wecom.inject(SEND, errcode=42001)
    h.wecom.inject(SEND, errcode=40014)
    await _replies(h, "u", 1)
    await h.settle()
    (message,) = await h.outbox()
    assert message.status == "pending" and "40014" in (message.error or "")
    h.clock.advance(minutes=1)
    await h.settle()
    assert h.wecom.texts_to("u") == ["回复 0"]
    (message,) = await h.outbox()
    assert message.status == "sent" and message.attempts == 2


async def test_a_reply_given_up_after_all_attempts_tells_the_admins_and_the_user(
    h: Harness,
) -> None:
    await h.grant("boss", "admin", "150000")
    attempts = h.settings.worker.max_attempts
    h.wecom.inject(SEND, errcode=42001, times=2 * attempts, to="u")
    await _replies(h, "u", 1)
    for _ in range(attempts):
        await h.settle()
        h.clock.advance(minutes=11)
    await h.settle()
    failed, *notices = await h.outbox()
    assert failed.status == "failed" and failed.attempts == attempts
    assert "42001" in (failed.error or "")
    assert {tuple(n.recipients) for n in notices} == {("boss",), ("u",)}
    (to_admin,) = h.wecom.texts_to("boss")
    assert str(failed.id) in to_admin and "u" in to_admin
    (to_user,) = h.wecom.texts_to("u")
    assert str(failed.id) in to_user


@pytest.mark.parametrize("compare", ["content", "json"])
async def test_restart_hours_after_a_crash_mid_send_does_not_double_the_message(
    h: Harness, compare: str
) -> None:
    """The process died after WeCom took the message, before it was marked; it comes back
    3.5 hours later (past the old 180 s interval, within WeCom's 4-hour maximum)."""
    h.wecom.duplicate_compare = compare
    await _replies(h, "d", 1, prefix="只一次")
    dying = OutboxSender(h.db, h.runtime.client(), h.settings, h.clock, owner="dying")
    async with h.db.transaction() as session:
        (claimed,) = await ob.claim(session, "dying", h.clock.now(), dying.lease, 10)
    assert await dying._reserve(claimed) is None
    await dying._call(claimed)  # WeCom took it; then the process died
    h.clock.advance(hours=3.5)
    await h.settle()
    assert h.wecom.texts_to("d") == ["只一次 0"]
    (message,) = await h.outbox()
    assert message.status == "sent" and message.attempts == 2


@pytest.mark.parametrize("compare", ["content", "json"])
async def test_two_identical_replies_both_arrive_whichever_way_wecom_compares(
    h: Harness, compare: str
) -> None:
    """帮助 twice: two outbox messages with the same content, both delivered."""
    h.wecom.duplicate_compare = compare
    first = await h.say("u", "帮助")
    second = await h.say("u", "帮助")
    assert first and second == first
    assert h.wecom.duplicates == []


async def test_one_recipients_hung_call_does_not_delay_another_recipient(h: Harness) -> None:
    hold = asyncio.Event()
    h.wecom.inject(SEND, hold=hold, to="slow")
    async with h.db.transaction() as session:
        outbox = Outbox(session, h.clock.now())
        outbox.text(["slow"], "慢", priority=REPLY)
        outbox.text(["fast"], "快", priority=REPLY)
    sending = asyncio.create_task(h.runtime.sender.run_once())
    try:
        await wait_until(
            lambda: h.wecom.texts_to("fast") == ["快"], "fast's message while slow's hangs"
        )
        assert h.wecom.texts_to("slow") == []
    finally:
        hold.set()
    await within(sending, "the sender's round")
    assert h.wecom.texts_to("slow") == ["慢"]


async def test_a_hung_lane_does_not_hold_up_the_next_batch(h: Harness) -> None:
    """Lanes refill independently: while one recipient's call hangs, the next batch is claimed
    and sent; that recipient's next message waits for the hung one and arrives after it."""
    hold = asyncio.Event()
    h.wecom.inject(SEND, hold=hold, to="slow")
    async with h.db.transaction() as session:
        outbox = Outbox(session, h.clock.now())
        outbox.text(["slow"], "慢 1", priority=REPLY)
        outbox.text(["fast1"], "快", priority=REPLY)
        outbox.text(["fast2"], "快", priority=REPLY)
        outbox.text(["slow"], "慢 2", priority=REPLY)  # the first batch (4) ends here
        outbox.text(["fast3"], "快", priority=REPLY)
        outbox.text(["fast4"], "快", priority=REPLY)
    sender = OutboxSender(h.db, h.runtime.sender.client, h.settings, h.clock, batch=4)
    sending = asyncio.create_task(sender.run_once())
    try:
        await wait_until(
            lambda: all(h.wecom.texts_to(f"fast{i}") == ["快"] for i in (1, 2, 3, 4)),
            "the second batch's messages while the first batch's slow lane hangs",
        )
        assert h.wecom.texts_to("slow") == []
    finally:
        hold.set()
    assert await within(sending, "the sender's round") == 6
    assert h.wecom.texts_to("slow") == ["慢 1", "慢 2"]


async def test_a_message_held_past_half_its_lease_is_not_claimed_again_while_in_flight(
    h: Harness,
) -> None:
    """A refill while a slow lane still holds messages whose lease has run out would claim them
    again and send them twice (two identical replies go without WeCom's duplicate check, so
    both copies would arrive): no refill while a message claimed half a lease ago is unanswered."""
    slow, other = asyncio.Event(), asyncio.Event()
    h.wecom.inject(SEND, hold=slow, to="slow")
    h.wecom.inject(SEND, hold=other, to="other")
    async with h.db.transaction() as session:
        outbox = Outbox(session, h.clock.now())
        outbox.text(["slow"], "同", priority=REPLY)
        outbox.text(["fast1"], "快", priority=REPLY)
        outbox.text(["fast2"], "快", priority=REPLY)
        outbox.text(["slow"], "同", priority=REPLY)  # the first batch (4) ends here
        outbox.text(["other"], "另", priority=REPLY)
        outbox.text(["fast3"], "快", priority=REPLY)
    sender = OutboxSender(h.db, h.runtime.sender.client, h.settings, h.clock, batch=4)
    sending = asyncio.create_task(sender.run_once())
    try:
        await wait_until(
            lambda: h.wecom.texts_to("fast3") == ["快"], "the second batch beside the held lane"
        )
        h.clock.advance(seconds=h.settings.worker.lease_seconds + 1)  # the held leases run out
        other.set()  # an answer: the sender would claim again now
        await wait_until(lambda: h.wecom.texts_to("other") == ["另"], "the other recipient")
        async with h.db.transaction() as session:
            outbox = Outbox(session, h.clock.now())
            outbox.text(["fast4"], "快", priority=REPLY)  # traffic goes on: claims find work
    finally:
        slow.set()
        other.set()
    await within(sending, "the sender's round")
    await h.runtime.sender.run_once()  # what the round left (fast4), by another pass
    assert h.wecom.texts_to("slow") == ["同", "同"]  # each once, never again
    assert h.wecom.texts_to("fast4") == ["快"]
