"""The console: the same router, database and outbox, in a terminal."""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.chat.context import FixedClock
from bot.chat.inbound import CardEvent, parse
from bot.config import load_settings
from bot.tools.console import ConsoleSession, render_card, run_console
from bot.wecom.standin import WeComStandIn
from storage import inbound
from storage.db import Database
from storage.models import InboundEvent, OutboxMessage
from storage.repos import Repositories
from tests.conftest import START

CARD = {
    "card_type": "vote_interaction",
    "task_id": "insp-1024-1",
    "main_title": {"title": "检查任务 编号 1024", "desc": "某某化工有限公司"},
    "checkbox": {
        "question_key": "result",
        "mode": 0,
        "option_list": [
            {"id": "no_problem", "text": "未发现问题"},
            {"id": "refused", "text": "不配合检查"},
        ],
    },
    "submit_button": {"text": "提交", "key": "result:1024"},
}


async def test_console_answers_through_the_router_and_marks_delivery(db: Database) -> None:
    settings = load_settings(None, database={"url": db.url})
    clock = FixedClock(START)
    async with db.transaction() as session:
        await Repositories(session).roles.grant("boss", "admin", "150000", "", "test", clock.now())
    console = ConsoleSession(db, settings, "boss", clock)
    answer = "\n".join(await console.say("帮助"))  # long help arrives in several texts
    assert "管理员" in answer and "授权" in answer
    (granted, notice) = await console.say("授权 li 部门负责人 150100")
    assert "已授予 li" in granted and "已排队发送给 li" in notice
    async with db.transaction() as session:
        rows = list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )
    statuses = {tuple(r.recipients): r.status for r in rows}
    assert statuses[("boss",)] == "sent" and statuses[("li",)] == "pending"


async def test_a_console_beside_a_server_leaves_wecom_events_alone(db: Database) -> None:
    """The channel is stored at ingress: a console claims only the events it recorded."""
    settings = load_settings(None, database={"url": db.url})
    clock = FixedClock(START)
    xml = WeComStandIn(corp_id="c").text_message_xml("boss", "帮助", 42, int(START.timestamp()))
    async with db.transaction() as session:
        wecom_event = await inbound.record(
            session, dedup_key="wecom-42", userid="boss", kind="text", payload=xml, now=START
        )
    console = ConsoleSession(db, settings, "boss", clock)
    assert await console.say("帮助")
    async with db.transaction() as session:
        event = await session.get(InboundEvent, wecom_event)
        mine = (
            (await session.execute(select(InboundEvent).where(InboundEvent.channel == "console")))
            .scalars()
            .all()
        )
    assert event is not None and event.status == "pending" and event.lease_owner is None
    assert len(mine) == 1 and mine[0].status == "done"


async def test_console_reads_lines_until_end_of_input(db: Database) -> None:
    settings = load_settings(None, database={"url": db.url})
    out = io.StringIO()
    assert await run_console(db, settings, "guest", stdin=io.StringIO("帮助\n\n"), stdout=out) == 0
    assert "您还不是本系统的用户" in out.getvalue()


def test_cards_are_shown_as_text_with_numbered_choices() -> None:
    text, shown = render_card(CARD)
    assert "[:1] 未发现问题" in text and "[:2] 不配合检查" in text and "[:b1] 提交" in text
    assert shown.options[1] == ("refused", "不配合检查") and shown.buttons == [
        ("result:1024", "提交")
    ]


async def test_a_numbered_choice_becomes_a_card_event(db: Database) -> None:
    settings = load_settings(None, database={"url": db.url})
    console = ConsoleSession(db, settings, "insp1", FixedClock(START))
    _, console.card = render_card(CARD)
    await console.say(":2")
    async with db.transaction() as session:
        (event,) = (await session.execute(select(InboundEvent))).scalars()
    card = parse(event.payload)
    assert isinstance(card, CardEvent)
    assert (card.user, card.event_key, card.task_id) == ("insp1", "result:1024", "insp-1024-1")
    assert card.options("result") == ["refused"]
