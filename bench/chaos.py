"""The sender under faults, on loopback: nothing lost, nothing doubled, WeCom's budget kept.

Runs, each against the WeCom stand-in (real clock, real HTTP) and a fresh SQLite database:
- calm: the load below, no faults: the baseline of the same run;
- faults: the same load with a third of message/send calls faulted at random: -1, 45009,
  42001 then 40014 (two token errors in a row), HTTP 500, connection resets and timeouts, each
  of the last two before or after WeCom took the message;
- kill (``--kill``): 4 x ``--heavy`` members get 5 bulk notices each, sent by a separate
  process that is SIGKILLed 0.2-1.5 s after each start and restarted until everything is out
  (lease 2 s; bounded to 60 s).

A faulted call after WeCom took the message is answered 0 in WeCom's own record, so the share
of calls not answered 0 is below the third faulted.

Load: ``--heavy`` members get 35 bulk notices each at the start (more than WeCom's 30 a minute,
so the minute boundary is crossed), ``--singles`` members get one reply each at a random time
during ``--seconds``; the generator then stops by itself and the run ends when every message is
sent (about 65 s: the heavy members' last five wait out WeCom's minute).

Reported per run: messages, sent / failed, deliveries per (member, message) other than one,
WeCom's silent drops, the most deliveries to one member in any 60 s as WeCom counts them, and
delivery latency (enqueue to WeCom's arrival) p50 / p95 for single replies.

    .venv/bin/python bench/chaos.py [--seconds 40] [--heavy 10] [--singles 80] [--kill]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.chat.context import SystemClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime.sender import OutboxSender  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.api import WeComClient  # noqa: E402
from bot.wecom.standin import RATE_WINDOW, WeComStandIn  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402
from storage.outbox import BULK, Outbox  # noqa: E402

SEND = "/cgi-bin/message/send"
TIMEOUT = 1.0  # the client's per-call timeout in these runs (10 s in production)
FAULTS: list[list[dict[str, Any]]] = [
    [{"errcode": -1}],
    [{"errcode": 45009}],
    [{"errcode": 42001}, {"errcode": 40014}],
    [{"http_status": 500}],
    [{"drop_connection": True}],
    [{"drop_connection": True, "after": True}],
    [{"delay": TIMEOUT + 0.5}],
    [{"delay": TIMEOUT + 0.5, "after": True}],
]
HEAVY_EACH = 35


def _settings(url: str, wecom: WeComStandIn, api_base: str, lease: int) -> Settings:
    return standin_settings(url, wecom, api_base, worker={"lease_seconds": lease})


def _client(http: aiohttp.ClientSession, settings: Settings) -> WeComClient:
    w = settings.wecom
    return WeComClient(
        http,
        corp_id=w.corp_id,
        secret=w.secret.get_secret_value(),
        agent_id=w.agent_id,
        api_base=w.api_base,
        backoff=0.05,
        timeout=TIMEOUT,
    )


async def _queue(db: Database, items: list[tuple[str, str, int]]) -> None:
    async with db.transaction() as session:
        outbox = Outbox(session, SystemClock().now())
        for user, text, priority in items:
            outbox.text([user], text, priority=priority)


async def _pending(db: Database) -> int:
    from sqlalchemy import func, select

    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
            or 0
        )


async def _generate(db: Database, args: argparse.Namespace, rng: random.Random) -> None:
    """Bulk to the heavy members at once, then single replies at random times; then stop."""
    heavy = [
        (f"heavy{u}", f"通知 {u}-{i}", BULK) for i in range(HEAVY_EACH) for u in range(args.heavy)
    ]
    await _queue(db, heavy)
    start = time.monotonic()
    times = sorted(rng.uniform(0, args.seconds) for _ in range(args.singles))
    for n, at in enumerate(times):
        await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
        await _queue(db, [(f"single{n}", f"回复 {n}", 0)])


async def _rows(db: Database) -> list[OutboxMessage]:
    from sqlalchemy import select

    async with db.transaction() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


def _report(name: str, rows: list[OutboxMessage], wecom: WeComStandIn, wall: float) -> None:
    per = collections.Counter((d.userid, d.body.get("outbox_id")) for d in wecom.deliveries)
    first: dict[int, float] = {}
    for d in wecom.deliveries:
        first.setdefault(int(d.body["outbox_id"]), d.at)
    expected = {(m.recipients[0], m.id) for m in rows}
    missing = sum(1 for key in expected if per[key] == 0)
    doubled = sum(1 for n in per.values() if n > 1)
    by_user: dict[str, list[float]] = collections.defaultdict(list)
    for d in wecom.deliveries:
        by_user[d.userid].append(d.at)
    most = max((_most_in_window(ts) for ts in by_user.values()), default=0)
    replies = [
        first[m.id] - m.created_at.timestamp() for m in rows if m.priority == 0 and m.id in first
    ]
    calls = wecom.calls(SEND)
    faulted = sum(1 for c in calls if c.errcode != 0)
    status = collections.Counter(m.status for m in rows)
    for d in wecom.dropped:  # what to look into, should it happen
        near = sorted(x.at - d.at for x in wecom.deliveries if x.userid == d.userid)
        print(
            f"{name:7s} dropped: {d.userid} message {d.body.get('outbox_id')}; "
            f"its other deliveries at {near[0]:.2f} .. {near[-1]:.2f} s from it"
        )
    print(
        f"{name:7s} messages {len(rows):5d}  sent {status['sent']:5d}  failed {status['failed']:3d}"
        f"  missing {missing}  doubled {doubled}  dropped by WeCom {len(wecom.dropped)}"
        f"  most in any 60 s {most:2d}  send calls {len(calls)} ({faulted / max(len(calls), 1):.0%}"
        f" not answered 0)  reply latency p50 {_q(replies, 0.5):.2f} s"
        f" p95 {_q(replies, 0.95):.2f} s  wall {wall:.0f} s"
    )


def _q(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def _most_in_window(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= RATE_WINDOW:
            start += 1
        most = max(most, end - start + 1)
    return most


async def _send_until_done(sender: OutboxSender, db: Database, load: asyncio.Task[None]) -> None:
    while True:
        await sender.run_once()
        if load.done() and await _pending(db) == 0:
            return
        try:
            await asyncio.wait_for(sender.wake.wait(), 0.05)
        except TimeoutError:
            pass
        sender.wake.clear()


async def run(name: str, faulted: bool, args: argparse.Namespace, tmp: str) -> None:
    rng = random.Random(args.seed)
    wecom = WeComStandIn()
    api_base = await wecom.start()
    if faulted:
        wecom.chaos(SEND, 1 / 3, FAULTS, random.Random(args.seed + 1).random)
    url = f"sqlite+aiosqlite:///{tmp}/{name}.db"
    settings = _settings(url, wecom, api_base, lease=10)
    db = Database(url)
    await migrate.upgrade(db)
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        sender = OutboxSender(db, _client(http, settings), settings, SystemClock())
        load = asyncio.create_task(_generate(db, args, rng))
        async with asyncio.timeout(args.seconds + 60 + 30):  # bounded whatever happens
            await _send_until_done(sender, db, load)
        await load
    _report(name, await _rows(db), wecom, time.monotonic() - started)
    await db.dispose()
    await wecom.stop()


def _killable_sender(url: str, api_base: str) -> None:
    """A sending process: runs until killed."""

    async def main() -> None:
        wecom = WeComStandIn()  # only for its credentials
        settings = _settings(url, wecom, api_base, lease=2)
        db = Database(url)
        async with aiohttp.ClientSession() as http:
            sender = OutboxSender(db, _client(http, settings), settings, SystemClock())
            while True:
                if not await sender.run_once():
                    await asyncio.sleep(0.05)

    asyncio.run(main())


async def run_kill(args: argparse.Namespace, tmp: str) -> None:
    """Bulk to many members, a sending process SIGKILLed at random points and restarted."""
    rng = random.Random(args.seed + 2)
    wecom = WeComStandIn()
    api_base = await wecom.start()
    url = f"sqlite+aiosqlite:///{tmp}/kill.db"
    db = Database(url)
    await migrate.upgrade(db)
    members = args.heavy * 4
    await _queue(db, [(f"m{u}", f"批量 {u}-{i}", BULK) for i in range(5) for u in range(members)])
    started, kills = time.monotonic(), 0
    ctx = mp.get_context("fork")  # starts in milliseconds: the kill lands mid-send
    async with asyncio.timeout(60):
        while await _pending(db):
            proc = ctx.Process(target=_killable_sender, args=(url, api_base), daemon=True)
            proc.start()
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.join()
    print(f"kill    {kills} SIGKILLs of the sending process")
    _report("kill", await _rows(db), wecom, time.monotonic() - started)
    await db.dispose()
    await wecom.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await run("calm", False, args, tmp)
        await run("faults", True, args, tmp)
        if args.kill:
            await run_kill(args, tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--heavy", type=int, default=10)
    parser.add_argument("--singles", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill", action="store_true")
    asyncio.run(main(parser.parse_args()))
