"""WeComClient against the WeCom stand-in, over real HTTP on 127.0.0.1.

Nothing of ours is mocked: the client talks to the stand-in as it would to qyapi.weixin.qq.com,
and the tests assert on what the stand-in received and delivered. Only sleeping and the clock
are injected, so backoff is recorded instead of waited for and expiry needs no waiting; a slow
answer is held on an event the test releases, not timed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from defusedxml import ElementTree

from bot.wecom.api import (
    WeComClient,
    WeComError,
    appchat_message,
    markdown_message,
    template_card_message,
    text_message,
    textcard_message,
)
from bot.wecom.crypto import WeComCrypto
from bot.wecom.standin import WeComStandIn
from tests.support.waiting import wait_until, within

SEND = "/cgi-bin/message/send"
GETTOKEN = "/cgi-bin/gettoken"
UPLOAD = "/cgi-bin/media/upload"
MEMBERS = {"alice", "bob", "carol"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordedSleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass
class World:
    standin: WeComStandIn
    base_url: str
    http: aiohttp.ClientSession
    clock: FakeClock
    sleeps: RecordedSleeps
    client: WeComClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.new_client()

    def new_client(self, **overrides: Any) -> WeComClient:
        options: dict[str, Any] = {
            "corp_id": self.standin.corp_id,
            "secret": self.standin.secret,
            "agent_id": self.standin.agent_id,
            "api_base": self.base_url,
            "sleep": self.sleeps,
            "monotonic": self.clock,
            "timeout": 2.0,
        }
        return WeComClient(self.http, **(options | overrides))

    def errcodes(self, path: str) -> list[int | None]:
        return [r.errcode for r in self.standin.calls(path)]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    standin = WeComStandIn(known_users=MEMBERS, clock=clock)
    base_url = await standin.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield World(standin, base_url, http, clock, RecordedSleeps())
    finally:
        await standin.stop()


def interactive_card(task_id: str) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "main_title": {"title": "抽查任务确认", "desc": "2024年第三季度"},
        "task_id": task_id,
        "button_list": [{"text": "确认", "style": 1, "key": "confirm"}],
    }


# -- access token --------------------------------------------------------------------------------


async def test_concurrent_callers_share_one_token_fetch(world: World) -> None:
    world.standin.inject(GETTOKEN, delay=0.05)  # keep the fetch in flight while others arrive
    tokens = await asyncio.gather(*(world.client.token() for _ in range(10)))
    assert len(set(tokens)) == 1
    assert world.errcodes(GETTOKEN) == [0]


async def test_token_is_reused_until_shortly_before_it_expires(world: World) -> None:
    first = await world.client.token()
    world.clock.advance(7200 - 301)
    assert await world.client.token() == first
    assert len(world.standin.calls(GETTOKEN)) == 1
    world.clock.advance(2)  # inside the refresh margin
    await world.client.token()
    assert len(world.standin.calls(GETTOKEN)) == 2


async def test_expired_token_is_replaced_and_the_call_repeated(world: World) -> None:
    await world.client.send_message(text_message(["alice"], "第一条"))
    world.standin.expire_tokens()
    await world.client.send_message(text_message(["alice"], "第二条"))
    assert world.errcodes(SEND) == [0, 42001, 0]
    assert len(world.standin.calls(GETTOKEN)) == 2
    assert world.standin.texts_to("alice") == ["第一条", "第二条"]


@pytest.mark.parametrize("errcode", [40014, 42001, 40001])
async def test_rejected_token_is_dropped_and_fetched_again(world: World, errcode: int) -> None:
    world.standin.inject(SEND, errcode=errcode)
    await world.client.send_message(text_message(["alice"], "你好"))
    assert world.errcodes(SEND) == [errcode, 0]
    assert len(world.standin.calls(GETTOKEN)) == 2
    assert world.sleeps.delays == []


async def test_token_rejected_again_after_refresh_surfaces_as_transient(world: World) -> None:
    """Two token errors in a row are WeCom's trouble, not the request's: the caller retries."""
    world.standin.inject(SEND, errcode=40014, times=2)
    with pytest.raises(WeComError) as caught:
        await world.client.send_message(text_message(["alice"], "你好"))
    assert caught.value.errcode == 40014
    assert caught.value.retryable and not caught.value.maybe_delivered
    assert world.standin.messages() == []


async def test_wrong_secret_fails_at_once(world: World) -> None:
    client = world.new_client(secret="not-the-secret")
    with pytest.raises(WeComError) as caught:
        await client.send_message(text_message(["alice"], "你好"))
    assert (caught.value.errcode, caught.value.retryable) == (40001, False)
    assert world.errcodes(GETTOKEN) == [40001]
    assert world.standin.calls(SEND) == []


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", [-1, 45009, 45033])
async def test_transient_errors_are_retried_with_exponential_backoff(
    world: World, errcode: int
) -> None:
    world.standin.inject(SEND, errcode=errcode, times=2)
    receipt = await world.client.send_message(text_message(["alice"], "稍后重试"))
    assert receipt.msgid is not None
    assert world.sleeps.delays == [0.5, 1.0]
    assert world.errcodes(SEND) == [errcode, errcode, 0]
    assert world.standin.texts_to("alice") == ["稍后重试"]


async def test_transient_errors_give_up_after_max_attempts(world: World) -> None:
    world.standin.inject(SEND, errcode=45009, times=4)
    with pytest.raises(WeComError) as caught:
        await world.client.send_message(text_message(["alice"], "发不出去"))
    assert (caught.value.errcode, caught.value.retryable) == (45009, True)
    assert world.sleeps.delays == [0.5, 1.0, 2.0]
    assert len(world.standin.calls(SEND)) == 4
    assert world.standin.messages() == []


async def test_token_fetch_is_retried_too(world: World) -> None:
    world.standin.inject(GETTOKEN, errcode=-1)
    await world.client.token()
    assert world.errcodes(GETTOKEN) == [-1, 0]
    assert world.sleeps.delays == [0.5]


async def test_timeout_is_retried_and_the_slow_request_not_delivered(world: World) -> None:
    client = world.new_client(timeout=0.1)
    await client.token()
    release = asyncio.Event()  # the stand-in holds the first request until the test says so
    world.standin.inject(SEND, hold=release)
    try:
        await within(client.send_message(text_message(["alice"], "超时后重发")), "the retry")
    finally:
        release.set()  # the stand-in wakes up and finds the first caller gone
    assert world.sleeps.delays == [0.5]
    await wait_until(lambda: len(world.errcodes(SEND)) == 2, "the held request to be recorded")
    assert world.errcodes(SEND) == [0, None]
    assert world.standin.texts_to("alice") == ["超时后重发"]


async def test_dropped_connection_is_retried(world: World) -> None:
    world.standin.inject(SEND, drop_connection=True)
    await world.client.send_message(text_message(["alice"], "断线重发"))
    assert world.errcodes(SEND) == [None, 0]
    assert world.sleeps.delays == [0.5]
    assert world.standin.texts_to("alice") == ["断线重发"]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (text_message(["dave", "erin"], "没有这些人"), 81013),
        (text_message(["alice"], ""), 44004),
        ({"touser": "alice", "msgtype": "news", "news": {}}, 40008),
        (textcard_message(["alice"], "标题", "", "https://example.org"), 41033),
    ],
)
async def test_request_errors_surface_at_once(
    world: World, body: dict[str, Any], errcode: int
) -> None:
    with pytest.raises(WeComError) as caught:
        await world.client.send_message(body)
    assert (caught.value.errcode, caught.value.retryable) == (errcode, False)
    assert world.sleeps.delays == []
    assert len(world.standin.calls(SEND)) == 1


async def test_wrong_agentid_is_refused(world: World) -> None:
    client = world.new_client(agent_id=999)
    with pytest.raises(WeComError) as caught:
        await client.send_message(text_message(["alice"], "你好"))
    assert caught.value.errcode == 40056


async def test_secrets_stay_out_of_the_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = await world.client.token()
    world.standin.inject(SEND, errcode=-1)
    world.standin.inject(SEND, errcode=42001)
    await world.client.send_message(text_message(["alice"], "你好"))
    assert caplog.records, "retries should be logged"
    assert token not in caplog.text
    assert world.standin.secret not in caplog.text
    assert SEND in caplog.text


# -- message/send --------------------------------------------------------------------------------


async def test_unknown_recipients_come_back_in_the_receipt(world: World) -> None:
    receipt = await world.client.send_message(text_message(["alice", "Dave", "erin"], "通知"))
    assert receipt.invalid_users == ["dave", "erin"]  # WeCom lower-cases them
    assert receipt.invalid_parties == [] and receipt.invalid_tags == []
    assert receipt.response_code is None
    assert world.standin.texts_to("alice") == ["通知"]
    assert world.standin.messages("dave") == []
    assert world.standin.messages()[0]["agentid"] == world.standin.agent_id


async def test_duplicate_check_suppresses_an_identical_body_within_the_interval(
    world: World,
) -> None:
    body = text_message(
        ["alice"], "同一条通知", enable_duplicate_check=True, duplicate_check_interval=600
    )
    first = await world.client.send_message(body)
    again = await world.client.send_message(body)
    assert again.msgid == first.msgid
    assert world.standin.texts_to("alice") == ["同一条通知"]
    assert len(world.standin.duplicates) == 1
    world.clock.advance(601)
    await world.client.send_message(body)
    assert world.standin.texts_to("alice") == ["同一条通知", "同一条通知"]


async def test_more_than_30_a_minute_to_one_member_are_silently_dropped(world: World) -> None:
    for n in range(31):
        receipt = await world.client.send_message(text_message(["alice", "bob"], f"第{n}条"))
        assert receipt.invalid_users == []
    assert len(world.standin.messages("alice")) == 30
    assert [d.body["text"]["content"] for d in world.standin.dropped] == ["第30条", "第30条"]
    world.clock.advance(60)
    await world.client.send_message(text_message(["alice"], "一分钟后"))
    assert world.standin.texts_to("alice")[-1] == "一分钟后"


async def test_message_helpers_build_wecom_shapes() -> None:
    assert text_message(["a", "b"], "hi") == {
        "touser": "a|b",
        "msgtype": "text",
        "text": {"content": "hi"},
    }
    assert markdown_message(["a"], "**x**")["markdown"] == {"content": "**x**"}
    assert textcard_message(["a"], "t", "d", "https://x")["textcard"] == {
        "title": "t",
        "description": "d",
        "url": "https://x",
        "btntxt": "详情",
    }
    card = template_card_message(["a"], interactive_card("t1"), enable_duplicate_check=True)
    assert card["msgtype"] == "template_card" and card["enable_duplicate_check"] == 1
    assert "duplicate_check_interval" not in card
    assert appchat_message("c1", text_message(["a"], "hi")) == {
        "chatid": "c1",
        "msgtype": "text",
        "text": {"content": "hi"},
    }
    with pytest.raises(TypeError):
        text_message("alice", "hi")  # a str is a Sequence[str]: refused at run time
    with pytest.raises(ValueError):
        text_message([], "hi")


# -- template cards ------------------------------------------------------------------------------


async def test_card_response_code_updates_the_card_once(world: World) -> None:
    receipt = await world.client.send_message(
        template_card_message(["alice"], interactive_card("task-1"))
    )
    assert receipt.response_code
    assert world.standin.texts_to("alice") == ["抽查任务确认\n2024年第三季度"]
    update = {
        "userids": ["alice"],
        "response_code": receipt.response_code,
        "button": {"replace_name": "已确认"},
    }
    await world.client.update_template_card(update)
    assert world.standin.card_updates[0]["button"] == {"replace_name": "已确认"}
    with pytest.raises(WeComError) as caught:
        await world.client.update_template_card(update)
    assert caught.value.errmsg == "response_code already used"


async def test_response_code_expires_after_72_hours(world: World) -> None:
    code = world.standin.new_response_code()
    world.clock.advance(72 * 3600 + 1)
    with pytest.raises(WeComError) as caught:
        await world.client.update_template_card(
            {"atall": 1, "response_code": code, "button": {"replace_name": "已过期"}}
        )
    assert caught.value.errmsg == "response_code expired"


async def test_card_task_id_cannot_be_reused(world: World) -> None:
    await world.client.send_message(template_card_message(["alice"], interactive_card("t-9")))
    with pytest.raises(WeComError):
        await world.client.send_message(template_card_message(["bob"], interactive_card("t-9")))


# -- media and group chats -----------------------------------------------------------------------


async def test_upload_keeps_the_chinese_filename_and_survives_a_retry(world: World) -> None:
    content = b"PK\x03\x04" + bytes(range(200))
    world.standin.inject(UPLOAD, errcode=-1)
    media_id = await world.client.upload_media("file", "2024年第三季度统计表.xlsx", content)
    stored = world.standin.media[media_id]
    assert (stored.filename, stored.content, stored.kind) == (
        "2024年第三季度统计表.xlsx",
        content,
        "file",
    )
    assert world.errcodes(UPLOAD) == [-1, 0]
    await world.client.send_message(
        {"touser": "alice", "msgtype": "file", "file": {"media_id": media_id}}
    )
    assert world.standin.messages("alice")[0]["file"] == {"media_id": media_id}


async def test_upload_of_a_tiny_file_is_refused(world: World) -> None:
    with pytest.raises(WeComError) as caught:
        await world.client.upload_media("file", "a.txt", b"12345")
    assert caught.value.errcode == 40006


async def test_group_chat_lifecycle(world: World) -> None:
    client = world.client
    chatid = await client.appchat_create("检查组一", "alice", ["alice", "bob"])
    await client.appchat_update(chatid, add=["carol"], name="检查组一（扩）")
    await client.appchat_send(appchat_message(chatid, text_message(["x"], "出发")))
    chat = world.standin.chats[chatid]
    assert (chat.name, chat.owner, chat.members) == (
        "检查组一（扩）",
        "alice",
        ["alice", "bob", "carol"],
    )
    assert world.standin.chat_messages(chatid) == [
        {"chatid": chatid, "msgtype": "text", "text": {"content": "出发"}}
    ]
    card = appchat_message(chatid, template_card_message(["x"], interactive_card("t")))
    with pytest.raises(WeComError) as caught:
        await client.appchat_send(card)
    assert caught.value.errcode == 40008
    with pytest.raises(WeComError) as caught:
        await client.appchat_send(appchat_message("nosuchchat", text_message(["x"], "?")))
    assert caught.value.errcode == 86003


async def test_group_chat_needs_two_known_members(world: World) -> None:
    with pytest.raises(WeComError) as caught:
        await world.client.appchat_create("独自", "alice", ["alice"])
    assert caught.value.errcode == 86006
    with pytest.raises(WeComError) as caught:
        await world.client.appchat_create("陌生人", "alice", ["alice", "mallory"])
    assert caught.value.errcode == 86216


# -- callbacks towards the bot -------------------------------------------------------------------


async def test_standin_callbacks_decrypt_with_wecom_crypto(world: World) -> None:
    standin = world.standin
    crypto = WeComCrypto(standin.token, standin.encoding_aes_key, standin.corp_id)
    inner = standin.text_message_xml("alice", "查询任务 ]]> <&>", 42, 1_700_000_000)
    params, body = standin.seal_callback(inner, 1_700_000_000)
    outer = ElementTree.fromstring(body)
    encrypt = outer.findtext("Encrypt")
    assert outer.findtext("ToUserName") == standin.corp_id
    assert crypto.verify(params["msg_signature"], params["timestamp"], params["nonce"], encrypt)
    assert crypto.decrypt(encrypt) == inner
    assert ElementTree.fromstring(inner).findtext("Content") == "查询任务 ]]> <&>"


async def test_standin_posts_sealed_callbacks_over_http(world: World) -> None:
    standin = world.standin
    crypto = WeComCrypto(standin.token, standin.encoding_aes_key, standin.corp_id)
    opened: list[str] = []

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        if request.method == "GET":
            echostr = q["echostr"]
            if not crypto.verify(q["msg_signature"], q["timestamp"], q["nonce"], echostr):
                return web.Response(status=403)
            return web.Response(text=crypto.decrypt(echostr))
        encrypt = ElementTree.fromstring(await request.text()).findtext("Encrypt")
        if not crypto.verify(q["msg_signature"], q["timestamp"], q["nonce"], encrypt):
            return web.Response(status=403)
        opened.append(crypto.decrypt(encrypt))
        return web.Response(text="success")

    app = web.Application()
    app.router.add_route("*", "/wecom/callback", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/wecom/callback"
    try:
        assert await standin.verify_url(url, "echo-123", 1_700_000_000) == (200, "echo-123")
        event = standin.template_card_event_xml(
            "alice",
            create_time=1_700_000_000,
            event_key="confirm",
            task_id="task-1",
            card_type="vote_interaction",
            response_code="rc-1",
            selected=[("q1", ["o1", "o2"])],
        )
        assert await standin.post_callback(url, event) == (200, "success")
        assert await standin.post_callback(url, standin.enter_agent_event_xml("bob", 1)) == (
            200,
            "success",
        )
    finally:
        await runner.cleanup()
    clicked = ElementTree.fromstring(opened[0])
    assert clicked.findtext("Event") == "template_card_event"
    assert clicked.findtext("ResponseCode") == "rc-1"
    assert [o.text for o in clicked.iter("OptionId")] == ["o1", "o2"]
    assert ElementTree.fromstring(opened[1]).findtext("Event") == "enter_agent"
    # The click's response_code is good for one card update, as a real one is.
    await world.client.update_template_card(
        {"userids": ["alice"], "response_code": "rc-1", "button": {"replace_name": "已投票"}}
    )


async def test_an_attempt_lost_before_a_token_refresh_still_counts_as_maybe_delivered(
    world: World,
) -> None:
    """WeCom took the first attempt (its answer was lost), then the token was rejected and the
    fresh token's attempts were all refused: the message may have arrived, and says so."""
    world.standin.inject(SEND, drop_connection=True, after=True)
    world.standin.inject(SEND, errcode=42001)
    world.standin.inject(SEND, errcode=-1, times=4)
    with pytest.raises(WeComError) as caught:
        await world.client.send_message(text_message(["alice"], "你好"))
    assert caught.value.retryable and caught.value.maybe_delivered
    assert len(world.standin.messages("alice")) == 1
