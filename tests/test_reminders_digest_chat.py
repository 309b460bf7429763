"""提醒群: an organisation's reminders as one morning digest in a group chat the bot creates
(appchat/create with its admins, chiefs and publishers), instead of one message per person;
claimed once per occasion across instances; 关闭 returns to per-person messages (Art. 37, 40,
43)."""

from __future__ import annotations

from sqlalchemy import select

from bot.wecom.standin import AppChat
from storage.models import DigestChat, GroupChat
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, COUNTY2
from tests.results_support import drawn
from tests.support.draw_chat import ADMIN, CHIEF, TASK
from tests.support.draw_chat import OUTSIDER as COUNTY_ADMIN  # 新城区's admin
from tests.support.reminders import (
    PUBLISHER,
    UNIT_CHIEF,
    at,
    completed,
    tick_at,
    tick_on_two_instances,
)


def digest_chats(h: Harness) -> list[AppChat]:
    return [c for c in h.wecom.chats.values() if c.name.endswith("双随机提醒")]


def chat_texts(chat: AppChat) -> list[str]:
    return [m["text"]["content"] for m in chat.messages if m.get("msgtype") == "text"]


async def test_art37_digest_chat_is_created_with_the_units_admins_chiefs_and_publishers(
    h: Harness,
) -> None:
    await completed(h)  # 新城区 has a publisher and a chief
    (reply,) = await h.say(COUNTY_ADMIN, "提醒群 开通")
    assert "3 人" in reply
    (chat,) = digest_chats(h)
    assert sorted(chat.members) == sorted([COUNTY_ADMIN, PUBLISHER, UNIT_CHIEF])
    assert chat.name == "新城区分局双随机提醒" and chat.owner == COUNTY_ADMIN
    async with h.db.transaction() as s:
        row = await s.get(DigestChat, COUNTY)
        assert row is not None and row.chatid == chat.chatid and row.opened_by == COUNTY_ADMIN
        assert await s.scalar(select(GroupChat.name).where(GroupChat.chatid == chat.chatid))
    (again,) = await h.say(COUNTY_ADMIN, "提醒群 开通")
    assert "已开通" in again and len(digest_chats(h)) == 1


async def test_art37_digest_chat_needs_two_members_and_an_admin(h: Harness) -> None:
    await h.grant("hadmin", "admin", COUNTY2)  # alone in 回民区
    (reply,) = await h.say("hadmin", "提醒群 开通")
    assert "1 位" in reply and "2 人" in reply
    (wrong,) = await h.say("hadmin", "提醒群 开启")
    assert "开通" in wrong and "关闭" in wrong
    (other,) = await h.say("hadmin", f"提醒群 开通 {CITY}")
    assert CITY in other
    (closed,) = await h.say("hadmin", "提醒群 关闭")
    assert "尚未开通" in closed
    assert digest_chats(h) == []
    async with h.db.transaction() as s:
        assert (await s.execute(select(DigestChat))).first() is None


async def test_art37_the_chat_gets_one_morning_digest_and_nobody_is_messaged_individually(
    h: Harness,
) -> None:
    await completed(h)  # publication due 2026-12-29; 5 working days before is 12-22
    await h.say(COUNTY_ADMIN, "提醒群 开通")
    (chat,) = digest_chats(h)
    before = {u: len(h.wecom.texts_to(u)) for u in (PUBLISHER, UNIT_CHIEF, COUNTY_ADMIN)}
    assert await tick_at(h, at(2026, 12, 22, 8, 59)) == 0  # before working hours
    assert chat_texts(chat) == []
    assert await tick_at(h, at(2026, 12, 22, 9, 0)) == 1
    (digest,) = chat_texts(chat)
    assert TASK in digest and "2026-12-29" in digest
    assert PUBLISHER in digest and UNIT_CHIEF in digest  # who must act
    assert await tick_at(h, at(2026, 12, 22, 15)) == 0  # the same occasion: never twice
    assert len(chat_texts(chat)) == 1
    assert {u: len(h.wecom.texts_to(u)) for u in before} == before
    # 关闭: the next occasion (1 working day before, 12-28) goes to each person again.
    (closed,) = await h.say(COUNTY_ADMIN, "提醒群 关闭")
    assert "逐人" in closed
    assert await tick_at(h, at(2026, 12, 28, 9)) == 1
    for user in (PUBLISHER, UNIT_CHIEF):
        assert "2026-12-29" in h.wecom.texts_to(user)[-1]
    assert len(chat_texts(chat)) == 2  # only the closing note came after the digest


async def test_art40_43_the_city_digest_lists_every_item_once_across_two_instances(
    h: Harness,
) -> None:
    visits = await drawn(h)  # check period ends 2026-12-31; city admin and chief granted
    await h.say(ADMIN, "提醒群 开通")
    (chat,) = digest_chats(h)
    assert sorted(chat.members) == sorted([ADMIN, CHIEF])
    sent = await tick_on_two_instances(h, at(2026, 12, 29, 9))
    await h.settle()
    assert sum(sent) >= 2 and sent.count(0) >= 3  # one tick claimed them all
    (digest,) = chat_texts(chat)
    assert TASK in digest and "2027-01-05" in digest  # the task's results and the Q4 table
    assert CHIEF in digest
    assert not [t for t in h.wecom.texts_to(CHIEF) if "检查进度" in t or "2027-01-05" in t]
    assert not [t for t in h.wecom.texts_to(ADMIN) if "2027-01-05" in t]
    for v in visits:  # inspectors hold no role in the city: still reminded one by one
        assert any(str(v.number) in t for t in h.wecom.texts_to(v.members[0]))


async def test_art37_a_chat_wecom_refused_leaves_the_reminders_with_each_person(
    h: Harness,
) -> None:
    await completed(h)
    h.wecom.known_users = {COUNTY_ADMIN, UNIT_CHIEF}  # the publisher is outside the app's range
    await h.say(COUNTY_ADMIN, "提醒群 开通")
    assert digest_chats(h) == []
    assert await tick_at(h, at(2026, 12, 22, 9)) == 1
    assert "2026-12-29" in h.wecom.texts_to(UNIT_CHIEF)[-1]
