"""Nothing lost under faults, at ingress: without the database the callback and /healthz answer
503 within the acknowledgement timeout, the outage is logged once each way, callbacks beyond the
in-flight cap are refused at once, and after recovery (no restart) every acknowledged event is
handled once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from bot.chat.context import FixedClock
from bot.runtime.app import Runtime
from bot.wecom.standin import WeComStandIn
from storage.db import sqlite_path
from tests.conftest import Harness, Templates, make_settings, pg_admin_url
from tests.support.blackhole import FaultyProxy
from tests.support.waiting import wait_until, within

ACK = 0.5  # the acknowledgement timeout these tests configure
BOUND = ACK + 0.5  # a 503 must come within this (WeCom waits 5 s)


async def _runtime(db_url: str, clock: FixedClock, **server: object) -> tuple[Harness, Runtime]:
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api = await wecom.start()
    settings = make_settings(db_url, wecom, api)
    settings.server = settings.server.model_copy(update={"ack_timeout_s": ACK, **server})
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=False)
    url = f"http://127.0.0.1:{port}{settings.server.callback_path}"
    return Harness(runtime, wecom, clock, url), runtime


async def _close(h: Harness) -> None:
    await h.runtime.stop()
    await h.wecom.stop()


async def _healthz(h: Harness) -> int:
    url = h.url.replace(h.settings.server.callback_path, "/healthz")
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status


async def _ack(h: Harness, user: str, msg_id: int) -> int:
    status, body = await within(h.post_text(user, "帮助", msg_id), "an answer", BOUND)  # type: ignore[misc]
    assert "Traceback" not in body
    return int(status)


async def _acknowledged(h: Harness, user: str, msg_id: int) -> bool:
    return await _ack(h, user, msg_id) == 200


def _outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    texts = [r.getMessage() for r in caplog.records if r.name == "bot.runtime.server"]
    began = sum("callback: database unavailable" in t for t in texts)
    ended = sum("callback: database available again" in t for t in texts)
    return began, ended


async def _handled_once(h: Harness, users: list[str]) -> None:
    await h.settle()
    for user in users:
        assert len(h.wecom.texts_to(user)) == 1, user


@pytest.fixture
async def pg_behind_proxy(templates: Templates) -> AsyncIterator[tuple[str, FaultyProxy]]:
    admin = pg_admin_url()
    if not admin:
        pytest.skip("needs SHUANGSUIJI_TEST_PG_URL")
    url, name = await templates.postgres(admin)
    parsed = make_url(url)
    proxy = FaultyProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    port = await proxy.start()
    try:
        yield parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.stop()
        await templates.drop(admin, name)


async def test_black_holed_postgresql_means_503_in_time_then_recovery_without_restart(
    pg_behind_proxy: tuple[str, FaultyProxy], clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = pg_behind_proxy
    caplog.set_level(logging.INFO, logger="bot.runtime.server")
    h, _ = await _runtime(url, clock)
    try:
        assert await _ack(h, "before", 1) == 200
        proxy.black_hole()
        statuses = await asyncio.gather(*(_ack(h, f"u{n}", 10 + n) for n in range(8)))
        assert statuses == [503] * 8
        assert await within(_healthz(h), "/healthz", BOUND) == 503
        assert await _ack(h, "u0", 10) == 503  # still down: still answered in time
        proxy.restore()
        # WeCom retries each message; the first answers after recovery may still meet a
        # connection the fault broke, but none takes longer than the bound.
        for n in range(8):
            await wait_until(lambda n=n: _acknowledged(h, f"u{n}", 10 + n), f"u{n} acknowledged")
        assert await _healthz(h) == 200
        await _handled_once(h, ["before"] + [f"u{n}" for n in range(8)])
        assert _outage_lines(caplog) == (1, 1)
    finally:
        await _close(h)


async def test_refused_postgresql_means_503_then_recovery(
    pg_behind_proxy: tuple[str, FaultyProxy], clock: FixedClock
) -> None:
    url, proxy = pg_behind_proxy
    h, _ = await _runtime(url, clock)
    try:
        proxy.refuse()
        assert await _ack(h, "a", 1) == 503
        assert await within(_healthz(h), "/healthz", BOUND) == 503
        proxy.restore()
        await wait_until(lambda: _acknowledged(h, "a", 1), "a acknowledged")
        await _handled_once(h, ["a"])
    finally:
        await _close(h)


def _lock_sqlite(url: str) -> sqlite3.Connection:
    path = sqlite_path(url)
    assert path is not None
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer holds the file
    return holder


async def test_sqlite_locked_by_another_connection_means_503_in_time_then_recovery(
    templates: Templates, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.runtime.server")
    h, _ = await _runtime(await templates.sqlite(), clock)
    try:
        assert await _ack(h, "before", 1) == 200
        holder = _lock_sqlite(h.settings.database.url)
        try:
            statuses = await asyncio.gather(*(_ack(h, f"u{n}", 10 + n) for n in range(5)))
            assert statuses == [503] * 5
            assert await within(_healthz(h), "/healthz", BOUND) in (200, 503)
        finally:
            holder.rollback()
            holder.close()
        for n in range(5):
            await wait_until(lambda n=n: _acknowledged(h, f"u{n}", 10 + n), f"u{n} acknowledged")
        await _handled_once(h, ["before"] + [f"u{n}" for n in range(5)])
        assert _outage_lines(caplog) == (1, 1)
    finally:
        await _close(h)


async def test_callbacks_beyond_the_inflight_cap_are_refused_at_once(
    templates: Templates, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.runtime.server")
    # A long acknowledgement timeout: the two callbacks inside the cap wait for the database.
    h, _ = await _runtime(await templates.sqlite(), clock, ack_timeout_s=4.0, max_inflight=2)
    holder = _lock_sqlite(h.settings.database.url)
    try:
        waiting = [asyncio.create_task(h.post_text(f"w{n}", "帮助", 10 + n)) for n in range(2)]
        await wait_until(lambda: h.runtime.gate.inflight == 2, "two callbacks in flight")
        extra = await asyncio.gather(*(_ack(h, f"x{n}", 20 + n) for n in range(3)))
        assert extra == [503] * 3
        assert not any(t.done() for t in waiting)
        # Logged once, as an overload, not as the database being down.
        texts = [r.getMessage() for r in caplog.records if r.name == "bot.runtime.server"]
        assert (
            sum("callback: overloaded (more than 2 callbacks in flight)" in t for t in texts) == 1
        )
        assert _outage_lines(caplog)[0] == 0
    finally:
        holder.rollback()
        holder.close()
    assert [s for s, _ in await within(asyncio.gather(*waiting), "the two in flight")] == [200, 200]  # type: ignore[misc]
    await _handled_once(h, ["w0", "w1"])
    assert h.wecom.texts_to("x0") == []
    await _close(h)
