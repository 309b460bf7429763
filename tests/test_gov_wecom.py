"""政务微信 (the government edition of WeCom) differs only in `[wecom] api_base`: the stand-in is
served under another host and a path prefix, and every API call must land under that prefix.
A request that reaches the host outside the prefix (a URL built without api_base) is caught by
a catch-all and fails the test; so does an endpoint of the client that this test does not call.
SQLite only: the database plays no part."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.chat.context import FixedClock
from bot.runtime.app import Runtime
from bot.wecom.api import WeComClient
from bot.wecom.standin import WeComStandIn
from tests.conftest import Templates, make_settings

HOST = "127.0.0.2"  # another host than the callback's 127.0.0.1
PREFIX = "/gov/qyapi"


@dataclass
class GovWeCom:
    standin: WeComStandIn
    api_base: str
    strays: list[str] = field(default_factory=list)


@pytest.fixture
async def gov(clock: FixedClock) -> AsyncIterator[GovWeCom]:
    standin = WeComStandIn(clock=lambda: clock.now().timestamp())
    outer = web.Application()
    outer.add_subapp(PREFIX, standin.app)
    gov = GovWeCom(standin, "")

    async def stray(request: web.Request) -> web.Response:
        gov.strays.append(f"{request.method} {request.path_qs}")
        return web.json_response({"errcode": 404, "errmsg": "outside api_base"}, status=404)

    outer.router.add_route("*", "/{tail:.*}", stray)
    runner = web.AppRunner(outer, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    gov.api_base = f"http://{HOST}:{runner.addresses[0][1]}{PREFIX}"
    try:
        yield gov
    finally:
        await runner.cleanup()


async def test_every_api_call_of_the_client_lands_under_the_api_base_prefix(
    gov: GovWeCom,
) -> None:
    s = gov.standin
    async with aiohttp.ClientSession() as http:
        client = WeComClient(
            http,
            corp_id=s.corp_id,
            secret=s.secret,
            agent_id=s.agent_id,
            api_base=gov.api_base,
            max_attempts=1,
        )
        text = {"touser": "lisi", "msgtype": "text", "text": {"content": "你好"}}
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "token": client.token,
            "call": lambda: client.call(
                "/cgi-bin/message/send", json={"agentid": s.agent_id, **text}
            ),
            "send_message": lambda: client.send_message(text),
            "update_template_card": lambda: client.update_template_card(
                {"userids": ["lisi"], "response_code": s.new_response_code(), "button": {}}
            ),
            "upload_media": lambda: client.upload_media("file", "表.xlsx", b"x" * 64),
            "appchat_create": lambda: client.appchat_create(
                "群", "lisi", ["lisi", "wangwu"], chatid="chat1"
            ),
            "appchat_update": lambda: client.appchat_update("chat1", add=["zhaoliu"]),
            "appchat_send": lambda: client.appchat_send(
                {"chatid": "chat1", "msgtype": "text", "text": {"content": "群消息"}}
            ),
        }
        endpoints = {
            name
            for name, member in inspect.getmembers(WeComClient, inspect.iscoroutinefunction)
            if not name.startswith("_")
        }
        assert endpoints == set(calls), "a client endpoint is not exercised here"
        for make in calls.values():
            await make()
    assert gov.strays == []
    paths = {r.path for r in s.received}
    assert paths == {
        "/cgi-bin/gettoken",
        "/cgi-bin/message/send",
        "/cgi-bin/message/update_template_card",
        "/cgi-bin/media/upload",
        "/cgi-bin/appchat/create",
        "/cgi-bin/appchat/update",
        "/cgi-bin/appchat/send",
    }
    assert all(r.errcode == 0 for r in s.received), [(r.path, r.errcode) for r in s.received]


async def test_the_running_bot_answers_through_the_government_api_base(
    gov: GovWeCom, templates: Templates, clock: FixedClock
) -> None:
    """Through the real callback: the reply, its token and a card all go under the prefix."""
    settings = make_settings(await templates.sqlite(), gov.standin, gov.api_base)
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=False)
    try:
        xml = gov.standin.text_message_xml("lisi", "帮助", 7, int(clock.now().timestamp()))
        status, _ = await gov.standin.post_callback(
            f"http://127.0.0.1:{port}{settings.server.callback_path}", xml
        )
        assert status == 200
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while not gov.standin.texts_to("lisi"):
            assert dt.datetime.now() < deadline, "no reply arrived through the prefix"
            handled = await runtime.worker.run_once()
            sent = await runtime.sender.run_once()
            if not handled and not sent:
                break
    finally:
        await runtime.stop()
    assert gov.standin.texts_to("lisi"), "the reply did not arrive"
    assert gov.strays == []
    assert {r.path for r in gov.standin.received} >= {"/cgi-bin/gettoken", "/cgi-bin/message/send"}
