"""The bulk path of the outbox (a draw's cards): the same rows as one by one, in queuing order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import NOTIFY, Outbox

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


def card(task_id: str) -> dict[str, object]:
    return {
        "card_type": "vote_interaction",
        "main_title": {"title": "编号 1 企业", "desc": '地址：测试路\n"引号"\\ 😀'},
        "task_id": task_id,
        "checkbox": {"question_key": "result", "option_list": [{"id": "a", "text": "甲"}]},
    }


async def test_bulk_cards_are_the_rows_template_card_writes(db: Database) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, NOW, cause_event_id=7)
        outbox.text(["first"], "queued before the cards")
        outbox.template_card(["u2", "u1", "u2"], card("one-by-one"))
        assert (
            await outbox.template_cards([(["u2", "u1", "u2"], card("bulk")), (["u3"], card("x"))])
            == 2
        )
        assert (outbox.queued, outbox.bulk_queued) == (2, 2)
        outbox.text(["last"], "queued after the cards")
    async with db.transaction() as session:
        # The stored values themselves (not through the ORM's types): byte for byte the same.
        raw = (await session.execute(text("SELECT * FROM outbox_message ORDER BY id"))).all()
        rows = [dict(r._mapping) for r in raw]
        messages = list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )
    assert [m.ref for m in messages] == [None, "one-by-one", "bulk", "x", None]
    one, bulk = ({k: v for k, v in r.items() if k != "id"} for r in rows[1:3])
    assert isinstance(one["body"], str | dict)
    one["body"] = str(one["body"]).replace("one-by-one", "bulk")
    bulk["body"] = str(bulk["body"])
    assert {**one, "ref": "bulk"} == bulk
    cards = messages[1:4]
    assert all(m.priority == NOTIFY and m.status == "pending" and m.attempts == 0 for m in cards)
    assert all(m.created_at == NOW == m.not_before and m.cause_event_id == 7 for m in cards)
    assert [m.recipients for m in cards] == [["u1", "u2"], ["u1", "u2"], ["u3"]]
    assert messages[2].body == {"msgtype": "template_card", "template_card": card("bulk")}
    assert messages[2].invalid_users == [] and messages[2].api == "message/send"


async def test_no_cards_writes_nothing(db: Database) -> None:
    async with db.transaction() as session:
        assert await Outbox(session, NOW).template_cards([]) == 0
        assert await session.scalar(text("SELECT count(*) FROM outbox_message")) == 0
