"""The drill clock: simulated = start + speed x (wall - anchor), the anchor kept in the database
so every process agrees; it drives the domain (what is due, working hours, dates), while WeCom's
timestamp window stays on real time."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from bot.chat.context import DrillClock
from bot.runtime.app import Runtime
from bot.runtime.clock import domain_clock
from bot.tools.demo import standin_settings
from bot.wecom.standin import WeComStandIn
from storage import audit
from storage.clock import ClockRefused, drill_anchor, use_real
from storage.db import Database
from storage.models import AuditEntry
from tests.factories import CITY, add_targets
from tests.support.waiting import wait_until

CST = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 12, 17, 8, 50, tzinfo=CST)  # a Thursday, ten working days before Q4 ends
WALL0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


class Wall:
    """Real time as the test moves it."""

    def __init__(self, at: dt.datetime = WALL0) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def test_simulated_time_runs_from_the_start_at_its_speed() -> None:
    wall = Wall()
    clock = DrillClock(START, 60, WALL0, wall)
    assert clock.now() == START
    wall.advance(10)
    assert clock.now() == START + dt.timedelta(minutes=10)
    assert clock.wall_clock.now() == WALL0 + dt.timedelta(seconds=10)


async def test_the_anchor_is_kept_a_later_start_moves_it_an_earlier_one_is_refused(
    db: Database,
) -> None:
    async with db.transaction() as s:
        assert await drill_anchor(s, START, 60, WALL0) == WALL0
    later_wall = WALL0 + dt.timedelta(hours=1)
    async with db.transaction() as s:  # a restart, or a second process: the same anchor
        assert await drill_anchor(s, START, 60, later_wall) == WALL0
    async with db.transaction() as s:
        with pytest.raises(ClockRefused) as earlier:
            await drill_anchor(s, START - dt.timedelta(days=1), 60, later_wall)
        assert earlier.value.reason == "earlier_start"
        with pytest.raises(ClockRefused) as speed:
            await drill_anchor(s, START, 30, later_wall)
        assert speed.value.reason == "speed_changed"
    async with db.transaction() as s:
        new_start = START + dt.timedelta(days=1)
        assert await drill_anchor(s, new_start, 60, later_wall) == later_wall
        with pytest.raises(ClockRefused) as real:
            await use_real(s, later_wall)
        assert real.value.reason == "ran_drill"
        rows = await s.execute(
            select(AuditEntry).where(AuditEntry.action == "clock.drill").order_by(AuditEntry.id)
        )
        marks = list(rows.scalars())
    assert [m.payload["start"] for m in marks] == [START.isoformat(), new_start.isoformat()]


async def test_a_database_that_ran_on_the_real_clock_refuses_a_drill(db: Database) -> None:
    async with db.transaction() as s:
        await audit.append(s, at=WALL0, actor="x", action="role.grant", subject="u")
    async with db.transaction() as s:
        with pytest.raises(ClockRefused) as before:
            await drill_anchor(s, START, 60, WALL0)
    assert before.value.reason == "ran_real"


async def test_a_fresh_database_on_the_real_clock_then_refuses_a_drill(db: Database) -> None:
    settings = standin_settings(db.url, WeComStandIn(), "http://127.0.0.1:1")
    await domain_clock(db, settings)
    drill = settings.model_copy(
        update={"clock": settings.clock.model_copy(update={"start": START})}
    )
    with pytest.raises(ClockRefused):
        await domain_clock(db, drill)


@pytest.fixture
async def drill(db_url: str) -> AsyncIterator[tuple[Runtime, WeComStandIn, Wall, str]]:
    wall = Wall()
    wecom = WeComStandIn(clock=lambda: wall().timestamp())
    api_base = await wecom.start()
    settings = standin_settings(
        db_url, wecom, api_base, clock={"start": START, "speed": 60, "tick_seconds": 0.02}
    )
    probe = Database(db_url)
    try:
        clock = await domain_clock(probe, settings, wall)
    finally:
        await probe.dispose()
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=True)
    try:
        yield runtime, wecom, wall, f"http://127.0.0.1:{port}"
    finally:
        await runtime.stop()
        await wecom.stop()


async def test_art25_a_drill_sends_the_pace_warning_at_the_simulated_hour(
    drill: tuple[Runtime, WeComStandIn, Wall, str],
) -> None:
    runtime, wecom, wall, base = drill
    async with runtime.db.transaction() as s:
        await add_targets(s, 10, tier="general")
        from storage.repos import Repositories

        await Repositories(s).roles.grant("chief9", "chief", CITY, "", "test", START)
    # 08:50 simulated: before working hours, nothing is due.
    assert await runtime.pace.tick() == 0
    # Leases are measured on the domain clock, so they last as long in real time.
    assert runtime.settings.worker.lease_seconds == 60 * 60
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as r:
        health = await r.json()
    assert dt.datetime.fromisoformat(health["now"]) == START and health["drill"] is True
    # A callback signed with the real time is accepted: WeCom's window is on the wall clock.
    status, _ = await wecom.post_callback(
        base + runtime.settings.server.callback_path,
        wecom.text_message_xml("chief9", "进度", 1, int(wall().timestamp())),
    )
    assert status == 200
    await wait_until(lambda: bool(wecom.texts_to("chief9")), "the 进度 reply")
    assert "2026年第4季度" in wecom.texts_to("chief9")[0]
    # Eleven real seconds are eleven simulated minutes: 09:01, working hours, ten working days
    # before the quarter's end; the scheduler sends the warning by itself.
    wall.advance(11)
    await wait_until(
        lambda: any("抽查比例提醒" in t for t in wecom.texts_to("chief9")), "the pace warning"
    )
    (warning,) = [t for t in wecom.texts_to("chief9") if "抽查比例提醒" in t]
    assert "一般监管对象10家" in warning and "还需1家" in warning


def test_the_command_line_runs_on_the_drill_clock_and_refuses_going_back(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    base = ["--database-url", db_url]
    monkeypatch.setenv("SHUANGSUIJI_CLOCK__START", START.isoformat())
    monkeypatch.setenv("SHUANGSUIJI_CLOCK__SPEED", "60")
    assert main(["role", "grant", "boss", "admin", "150000", *base]) == 0
    assert main(["audit", "show", "--subject", "clock", *base]) == 0
    out = capsys.readouterr().out
    assert "2026-12-17" in out  # the drill's mark, stamped with the simulated start
    monkeypatch.setenv("SHUANGSUIJI_CLOCK__START", (START - dt.timedelta(days=1)).isoformat())
    assert main(["role", "list", *base]) == 2
    err = capsys.readouterr().err
    assert "earlier" in err and "Traceback" not in err and err.count("\n") == 1
    monkeypatch.delenv("SHUANGSUIJI_CLOCK__START")
    assert main(["role", "list", *base]) == 2
    err = capsys.readouterr().err
    assert "ran a drill" in err and err.count("\n") == 1
