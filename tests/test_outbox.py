"""The outbox: written with the change, delivered once, within WeCom's per-recipient budget."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from bot.runtime.sender import OutboxSender
from storage import outbox as ob
from storage.bulk import binder, insert_rows
from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import BULK, Outbox
from tests.conftest import Harness


async def _queue(h: Harness, build: object) -> None:
    async with h.db.transaction() as session:
        build(Outbox(session, h.clock.now()))  # type: ignore[operator]


async def test_per_recipient_budget_holds_30_a_minute_and_nothing_is_dropped(h: Harness) -> None:
    await _queue(h, lambda o: [o.text(["busy"], f"通知 {i}", priority=BULK) for i in range(35)])
    await h.settle()
    assert len(h.wecom.texts_to("busy")) == 30
    assert h.wecom.dropped == []  # WeCom never had to drop anything
    h.clock.advance(seconds=60 + h.settings.worker.budget_margin_seconds + 1)
    await h.settle()
    assert len(h.wecom.texts_to("busy")) == 35
    assert [t.split()[-1] for t in h.wecom.texts_to("busy")] == [str(i) for i in range(35)]


async def test_budget_holds_across_two_sender_instances(h: Harness) -> None:
    await _queue(h, lambda o: [o.text(["shared"], f"n{i}") for i in range(40)])
    other = OutboxSender(h.db, h.runtime.client(), h.settings, h.clock, owner="other")
    await other.run_once()
    await h.runtime.sender.run_once()
    assert len(h.wecom.texts_to("shared")) == 30


async def test_replies_go_before_bulk_notifications(h: Harness) -> None:
    await _queue(h, lambda o: [o.text(["u"], f"批量 {i}", priority=BULK) for i in range(5)])
    await _queue(h, lambda o: o.reply("u", "回复"))
    await h.runtime.sender.run_once()
    assert h.wecom.texts_to("u")[0] == "回复"


async def test_transient_wecom_errors_are_retried_later_and_sent_once(h: Harness) -> None:
    h.wecom.inject("/cgi-bin/message/send", errcode=45009, times=4)  # one delivery's attempts
    await _queue(h, lambda o: o.text(["r"], "稍后送达"))
    await h.settle()
    assert h.wecom.texts_to("r") == []
    (message,) = await h.outbox()
    assert message.status == "pending" and "45009" in (message.error or "")
    h.clock.advance(minutes=15)
    await h.settle()
    assert h.wecom.texts_to("r") == ["稍后送达"]


async def test_invalid_users_are_recorded_not_retried(h: Harness) -> None:
    h.wecom.known_users = {"real"}
    await _queue(h, lambda o: o.text(["real", "ghost"], "hello"))
    await h.settle()
    (message,) = await h.outbox()
    assert message.status == "sent" and message.invalid_users == ["ghost"]
    assert h.wecom.texts_to("real") == ["hello"]


async def test_a_permanent_error_fails_the_message_and_keeps_it(h: Harness) -> None:
    await _queue(h, lambda o: o.template_card(["u"], {"card_type": "nonsense", "task_id": "t"}))
    await h.settle()
    (message,) = await h.outbox()
    assert message.status == "failed" and message.error


async def test_redelivery_after_a_crash_mid_send_is_deduplicated_by_wecom(h: Harness) -> None:
    """The process died after WeCom accepted the message but before we marked it sent."""
    await _queue(h, lambda o: o.text(["d"], "只一次"))
    dying = OutboxSender(h.db, h.runtime.client(), h.settings, h.clock, owner="dying")
    async with h.db.transaction() as session:
        (claimed,) = await ob.claim(session, "dying", h.clock.now(), dying.lease, 10)
    await dying._call(claimed)  # WeCom took it; then the process died
    h.clock.advance(seconds=h.settings.worker.lease_seconds + 1)
    await h.settle()
    assert h.wecom.texts_to("d") == ["只一次"]
    assert len(h.wecom.duplicates) == 1
    (message,) = await h.outbox()
    assert message.status == "sent" and message.attempts == 2


async def test_nothing_leaves_when_the_causing_transaction_rolls_back(h: Harness) -> None:
    class Boom(Exception):
        pass

    try:
        async with h.db.transaction() as session:
            Outbox(session, h.clock.now()).text(["x"], "不该发出")
            await session.flush()
            raise Boom
    except Boom:
        pass
    await h.settle()
    assert h.wecom.texts_to("x") == [] and await h.outbox() == []


async def test_not_before_is_respected(h: Harness) -> None:
    async with h.db.transaction() as session:
        Outbox(session, h.clock.now()).text(["later"], "明天")
        await session.flush()
        await session.execute(
            update(OutboxMessage).values(not_before=h.clock.now() + dt.timedelta(hours=1))
        )
    await h.settle()
    assert h.wecom.texts_to("later") == []
    h.clock.advance(hours=1)
    await h.settle()
    assert h.wecom.texts_to("later") == ["明天"]


async def test_bulk_rows_commit_and_roll_back_with_their_transaction(db: Database) -> None:
    """The bulk path (SQLite's executemany, PostgreSQL's COPY on the driver's connection) is
    part of the transaction it is called in, even as its first statement."""
    now = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    card = {"card_type": "text_notice", "task_id": "bulk-1", "main_title": {"title": "测试"}}

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with db.transaction() as s:
            assert await Outbox(s, now).template_cards([(["u1", "u2"], card)]) == 1
            raise Abandoned
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        await Outbox(s, now).template_cards([(["u2", "u1", "u1"], card)])
    async with db.transaction() as s:
        (row,) = (await s.execute(select(OutboxMessage))).scalars()
    assert row.recipients == ["u1", "u2"] and row.body["template_card"] == card
    assert row.created_at == now and row.status == "pending"


async def test_bulk_constants_are_quoted_by_the_database(db: Database) -> None:
    """Constants of a bulk insert become literals on SQLite (quoted by SQLite itself): a
    quote, a semicolon or JSON inside one is data, never SQL."""
    now = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    odd = 'it\'s "odd"); DROP TABLE outbox_message; --'
    async with db.transaction() as s:
        value = binder(s)
        await insert_rows(
            s,
            "outbox_message",
            ("recipients", "body"),
            [(value(["u1"]), value({"n": 1})), (value(["u2"]), value({"n": 2}))],
            {
                "created_at": value(now),
                "priority": 1,
                "api": "message/send",
                "status": "pending",
                "attempts": 0,
                "not_before": value(now),
                "cause_event_id": None,
                "ref": odd,
                "invalid_users": value(["x'y"]),
            },
        )
    async with db.transaction() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        got = [(r.recipients, r.body, r.ref, r.invalid_users, r.not_before) for r in rows]
    assert got == [
        (["u1"], {"n": 1}, odd, ["x'y"], now),
        (["u2"], {"n": 2}, odd, ["x'y"], now),
    ]
