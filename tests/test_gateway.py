"""End to end through the real callback endpoint: WeCom encryption, the database, the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.chat.context import Context, FixedClock
from bot.chat.inbound import TextCommand
from bot.chat.router import Dispatcher, Router
from bot.runtime.app import Runtime
from bot.runtime.worker import EventWorker
from bot.wecom.standin import WeComStandIn
from storage import inbound
from storage.models import InboundEvent
from tests.conftest import Harness, make_settings
from tests.support.waiting import within

SAMPLE = {
    "token": "QDG6eK",
    "corp_id": "wx5823bf96d3bd56c7",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}


async def _events(h: Harness) -> list[InboundEvent]:
    async with h.db.transaction() as session:
        return list(
            (await session.execute(select(InboundEvent).order_by(InboundEvent.id))).scalars()
        )


async def test_text_command_reaches_handler_and_reply_leaves_through_outbox(h: Harness) -> None:
    replies = await h.say("zhangsan", "帮助")
    assert len(replies) == 1
    assert "帮助" in replies[0] and "您还不是本系统的用户" in replies[0]
    (message,) = await h.outbox()
    assert message.status == "sent" and message.recipients == ["zhangsan"]
    (event,) = await _events(h)
    assert event.status == "done" and message.cause_event_id == event.id


async def test_the_same_event_twice_gets_one_reply(h: Harness) -> None:
    for _ in range(3):
        status, body = await h.post_text("lisi", "帮助", msg_id=777)
        assert (status, body) == (200, "")
    await h.settle()
    assert len(h.wecom.texts_to("lisi")) == 1
    assert len(await _events(h)) == 1


async def test_a_card_click_delivered_twice_is_recorded_once(h: Harness) -> None:
    fields = dict(
        event_key="x:1", task_id="T1", card_type="button_interaction", response_code="rc1"
    )
    assert (await h.post_card_event("lisi", **fields))[0] == 200
    assert (await h.post_card_event("lisi", **fields))[0] == 200
    assert len(await _events(h)) == 1


async def test_process_killed_between_recording_and_handling_is_handled_once_after_restart(
    h: Harness, db_url: str
) -> None:
    status, _ = await h.post_text("wangwu", "帮助")
    assert status == 200
    # A worker of the dead instance had claimed it, then the process died holding the lease.
    async with h.db.transaction() as session:
        claimed = await inbound.claim(
            session, "dead-instance", h.clock.now(), dt.timedelta(seconds=60)
        )
    assert len(claimed) == 1
    await h.settle()
    assert h.wecom.texts_to("wangwu") == []  # still leased by the dead instance

    h.clock.advance(seconds=61)
    restarted = Runtime(h.settings, clock=h.clock)
    await restarted.start(background=False)
    try:
        await restarted.worker.run_once()
        await restarted.sender.run_once()
        await h.settle()
    finally:
        await restarted.stop()
    assert len(h.wecom.texts_to("wangwu")) == 1
    (event,) = await _events(h)
    assert event.status == "done" and event.attempts == 2


async def test_a_lease_lost_midway_rolls_back_the_slow_handler(h: Harness) -> None:
    """Two instances never both commit the same event's effects."""
    await h.post_text("zhaoliu", "帮助")
    async with h.db.transaction() as session:
        (event_id,) = await inbound.claim(session, "slow", h.clock.now(), dt.timedelta(seconds=60))
    h.clock.advance(seconds=61)
    await h.settle()  # the live instance takes the expired lease and answers
    slow = EventWorker(h.db, h.runtime.worker.dispatcher, h.settings, h.clock, owner="slow")
    await slow.process(event_id)  # the slow one wakes up: its lease is gone, it does nothing
    await h.settle()
    assert len(h.wecom.texts_to("zhaoliu")) == 1


async def test_a_lease_that_expires_while_the_handler_runs_gives_one_effect(h: Harness) -> None:
    """The lease runs out while the handler is still at work, and the live instance claims in
    the meantime. The handler holds its event locked in its own transaction, so the live
    instance cannot take it over: the event has exactly one effect, the slow handler's."""
    entered, release = asyncio.Event(), asyncio.Event()
    effects: list[str] = []
    router = Router("slow")

    @router.command("慢", summary="waits for the test, then answers once")
    async def slow_handler(message: TextCommand, ctx: Context) -> None:
        entered.set()
        await release.wait()
        effects.append(message.user)
        ctx.reply("慢处理完成")

    await h.post_text("zhaoliu", "慢")
    async with h.db.transaction() as session:
        (event_id,) = await inbound.claim(session, "slow", h.clock.now(), dt.timedelta(seconds=60))
    slow = EventWorker(h.db, Dispatcher([router]), h.settings, h.clock, owner="slow")
    claiming = asyncio.Event()

    async def live_instance() -> int:
        claiming.set()
        return await h.runtime.worker.run_once()

    handling = asyncio.create_task(slow.process(event_id))
    tasks: list[asyncio.Task[Any]] = [handling]
    try:
        await within(entered.wait(), "the slow handler to start")
        h.clock.advance(seconds=61)  # its lease expires while it runs
        live = asyncio.create_task(live_instance())
        tasks.append(live)
        await within(claiming.wait(), "the live instance to claim")
        if not h.db.is_sqlite:
            # PostgreSQL: the claim skips the locked row at once, while the handler still runs.
            assert await within(live, "the live instance's claim") == 0
        # SQLite has one writer: the live instance's claim waits for the handler's transaction.
        assert not handling.done() and effects == []
    except BaseException:
        release.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    release.set()
    await within(handling, "the slow handler")
    assert await within(live, "the live instance's claim") == 0
    await h.settle()
    assert effects == ["zhaoliu"]
    assert h.wecom.texts_to("zhaoliu") == ["慢处理完成"]
    (event,) = await _events(h)
    assert event.status == "done" and event.attempts == 1


async def test_one_users_events_run_in_arrival_order_across_instances(h: Harness) -> None:
    await h.post_text("sunqi", "帮助")
    await h.post_text("sunqi", "我的角色")
    await h.post_text("zhouba", "帮助")
    async with h.db.transaction() as session:
        first = await inbound.claim(session, "instance-a", h.clock.now(), dt.timedelta(seconds=60))
    async with h.db.transaction() as session:
        second = await inbound.claim(session, "instance-b", h.clock.now(), dt.timedelta(seconds=60))
    events = await _events(h)
    # Instance A took sunqi's first and zhouba's; sunqi's second waits for the first.
    assert first == [events[0].id, events[2].id]
    assert second == []


async def test_unknown_command_gets_a_hint_not_silence(h: Harness) -> None:
    (reply,) = await h.say("zhangsan", "抽签")
    assert "未识别的命令" in reply and "帮助" in reply


async def test_full_width_input_is_normalised(h: Harness) -> None:
    await h.grant("admin1", "admin", "150000")
    (reply,) = await h.say("admin1", "授权　ｃｈｉｅｆ１　部门负责人　１５０１００")
    assert "已授予 chief1" in reply


async def test_role_commands_are_refused_without_the_role(h: Harness) -> None:
    (reply,) = await h.say("nobody", "授权 x 管理员 150000")
    assert "还不是本系统的用户" in reply
    await h.grant("chief9", "chief", "150100")
    (reply,) = await h.say("chief9", "授权 x 管理员 150100")
    assert "仅限管理员使用" in reply


async def test_admin_grants_only_inside_own_subtree(h: Harness) -> None:
    await h.grant("cityadmin", "admin", "150100")
    (ok,) = await h.say("cityadmin", "授权 head1 部门负责人 150102")
    assert "已授予 head1" in ok
    (refused,) = await h.say("cityadmin", "授权 head2 部门负责人 150200")
    assert "权限不覆盖" in refused
    assert h.wecom.texts_to("head2") == []
    (notified,) = h.wecom.texts_to("head1")
    assert "部门负责人" in notified


async def test_help_lists_commands_by_role(h: Harness) -> None:
    """Long answers arrive as several texts, each within WeCom's 2,048-byte limit."""
    await h.grant("admin2", "admin", "150000")
    admin_help = "\n".join(await h.say("admin2", "帮助"))
    stranger_help = "\n".join(await h.say("stranger", "帮助"))
    assert "授权" in admin_help and "授权" not in stranger_help
    assert all(len(m["text"]["content"].encode()) <= 2048 for m in h.wecom.messages("admin2"))


async def test_non_text_messages_get_a_plain_answer(h: Harness) -> None:
    xml = (
        f"<xml><ToUserName><![CDATA[{h.wecom.corp_id}]]></ToUserName>"
        "<FromUserName><![CDATA[u1]]></FromUserName>"
        f"<CreateTime>{int(h.clock.now().timestamp())}</CreateTime>"
        "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://x/y.png]]></PicUrl>"
        "<MediaId><![CDATA[m1]]></MediaId><MsgId>99</MsgId><AgentID>1000002</AgentID></xml>"
    )
    assert (await h.wecom.post_callback(h.url, xml))[0] == 200
    await h.settle()
    (reply,) = h.wecom.texts_to("u1")
    assert "文字消息" in reply


# --- hostile and broken requests -------------------------------------------------------------


async def _post_raw(url: str, params: dict[str, str], body: bytes) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, params=params, data=body) as resp:
        return resp.status, await resp.text()


async def test_bad_signature_is_403(h: Harness) -> None:
    xml = h.wecom.text_message_xml("u", "帮助", 1, int(h.clock.now().timestamp()))
    params, body = h.wecom.seal_callback(xml, int(h.clock.now().timestamp()))
    params["msg_signature"] = "0" * 40
    assert (await _post_raw(h.url, params, body.encode()))[0] == 403
    assert await _events(h) == []


async def test_stale_timestamp_is_403(h: Harness) -> None:
    xml = h.wecom.text_message_xml("u", "帮助", 1, int(h.clock.now().timestamp()))
    status, _ = await h.wecom.post_callback(
        h.url, xml, timestamp=int(h.clock.now().timestamp()) - 301
    )
    assert status == 403


async def test_garbage_body_is_400(h: Harness) -> None:
    params = {"msg_signature": "a", "timestamp": "1", "nonce": "n"}
    assert (await _post_raw(h.url, params, b"\x00\xffnot xml at all"))[0] == 400
    assert (await _post_raw(h.url, {}, b"<xml/>"))[0] == 400


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><Encrypt>&lol3;</Encrypt></xml>"
)


async def test_entity_bomb_in_the_outer_body_is_400(h: Harness) -> None:
    params = {"msg_signature": "a", "timestamp": str(int(h.clock.now().timestamp())), "nonce": "n"}
    assert (await _post_raw(h.url, params, BOMB.encode()))[0] == 400


async def test_entity_bomb_inside_the_decrypted_payload_is_400(h: Harness) -> None:
    inner = BOMB.replace("<Encrypt>&lol3;</Encrypt>", "<FromUserName>&lol3;</FromUserName>")
    status, _ = await h.wecom.post_callback(h.url, inner)
    assert status == 400
    assert await _events(h) == []


async def test_huge_body_is_413_and_the_server_stays_up(h: Harness) -> None:
    params = {"msg_signature": "a", "timestamp": "1", "nonce": "n"}
    status, _ = await _post_raw(h.url, params, b"<xml>" + b"A" * (2 * 1024 * 1024) + b"</xml>")
    assert status == 413
    assert len(await h.say("u2", "帮助")) == 1


async def test_payload_for_another_corp_is_400(h: Harness) -> None:
    other = WeComStandIn(corp_id="ww_other", token=h.wecom.token)
    xml = other.text_message_xml("u", "帮助", 5, int(h.clock.now().timestamp()))
    params, body = other.seal_callback(xml, int(h.clock.now().timestamp()))
    body = body.replace("ww_other", h.wecom.corp_id)  # right outer id, foreign ciphertext
    assert (await _post_raw(h.url, params, body.encode()))[0] == 400


async def test_outer_body_naming_another_corp_is_400(h: Harness) -> None:
    xml = h.wecom.text_message_xml("u", "帮助", 6, int(h.clock.now().timestamp()))
    params, body = h.wecom.seal_callback(xml, int(h.clock.now().timestamp()))
    body = body.replace(h.wecom.corp_id, "ww_someone_else")
    assert (await _post_raw(h.url, params, body.encode()))[0] == 400


async def test_healthz_answers_200_when_the_database_is_reachable(h: Harness) -> None:
    health = h.url.replace(h.settings.server.callback_path, "/healthz")
    async with aiohttp.ClientSession() as http, http.get(health) as r:
        assert r.status == 200


async def test_database_down_means_503_for_events_and_health(clock: FixedClock) -> None:
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api = await wecom.start()
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none", wecom, api)
    runtime = Runtime(settings, clock=clock)
    port = await runtime.start(background=False)
    base = f"http://127.0.0.1:{port}"
    try:
        xml = wecom.text_message_xml("u", "帮助", 1, int(clock.now().timestamp()))
        status, body = await wecom.post_callback(base + settings.server.callback_path, xml)
        assert status == 503 and "Traceback" not in body
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as r:
            assert r.status == 503
    finally:
        await runtime.stop()
        await wecom.stop()


# --- WeCom's published sample vectors --------------------------------------------------------


@pytest.fixture
async def sample_runtime(db_url: str) -> tuple[Runtime, str, FixedClock]:
    clock = FixedClock(dt.datetime.fromtimestamp(1409659589, dt.UTC))
    wecom = WeComStandIn(
        corp_id=SAMPLE["corp_id"], token=SAMPLE["token"], encoding_aes_key=SAMPLE["aes_key"]
    )
    settings = make_settings(db_url, wecom, "http://127.0.0.1:9")
    runtime = Runtime(settings, clock=clock)
    port = await runtime.start(background=False)
    return runtime, f"http://127.0.0.1:{port}{settings.server.callback_path}", clock


async def test_sample_vectors_url_verification(
    sample_runtime: tuple[Runtime, str, FixedClock],
) -> None:
    runtime, url, _ = sample_runtime
    params = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    }
    try:
        async with aiohttp.ClientSession() as http, http.get(url, params=params) as r:
            assert (r.status, await r.text()) == (200, "1616140317555161061")
        params["msg_signature"] = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4"
        async with aiohttp.ClientSession() as http, http.get(url, params=params) as r:
            assert r.status == 403
    finally:
        await runtime.stop()


SAMPLE_POST = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
    "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
    "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)


async def test_sample_vectors_message_decrypts_into_the_queue(
    sample_runtime: tuple[Runtime, str, FixedClock],
) -> None:
    runtime, url, clock = sample_runtime
    clock.set(dt.datetime.fromtimestamp(1409659813, dt.UTC))
    params = {
        "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
        "timestamp": "1409659813",
        "nonce": "1372623149",
    }
    try:
        assert (await _post_raw(url, params, SAMPLE_POST.encode()))[0] == 200
        async with runtime.db.transaction() as session:
            event = (await session.execute(select(InboundEvent))).scalar_one()
            assert (event.userid, event.dedup_key) == ("mycreate", "msg:4561255354251345929")
            assert "<Content><![CDATA[hello]]></Content>" in event.payload
        clock.advance(seconds=301)  # the same request, replayed six minutes later
        assert (await _post_raw(url, params, SAMPLE_POST.encode()))[0] == 403
        async with runtime.db.transaction() as session:
            count = (await session.execute(select(func.count()).select_from(InboundEvent))).scalar()
            assert count == 1
    finally:
        await runtime.stop()


async def test_a_chunked_body_past_the_limit_is_413(h: Harness) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(200):
            yield b"A" * 1024

    params = {"msg_signature": "a", "timestamp": "1", "nonce": "n"}
    async with aiohttp.ClientSession() as http, http.post(h.url, params=params, data=chunks()) as r:
        assert r.status == 413
