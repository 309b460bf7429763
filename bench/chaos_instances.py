"""Two instances on one PostgreSQL with the load split, in one combined run (issue 10).

Both instances are whole bots (role all: endpoint, worker, sender, due actions on their own
schedulers) over one fresh PostgreSQL database, against one WeCom stand-in, on one injected
clock. Set-up (on the first instance alone): the draw chat's task drawn (5 inspections), and
swap requests from --swaps members. Then, all at once:
- --events distinct 帮助 messages from --users users, each posted to one instance at random,
  one in five posted again to the other instance (WeCom retrying to another node);
- for half of the swap requests, two heads tap at the same moment, one 批准 on one instance and
  one 驳回 on the other;
- the clock moved past the other half's reminder time, then past their lapse time: both
  instances' schedulers see the same reminders and lapses due.
Then every inspection is given a result (the task completes) and the clock is moved to a
working morning past its Art. 37 publication deadline: both schedulers find the same deadline
reminders due.

Reported: acknowledgements per instance; events recorded vs distinct messages, effects (outbox
rows) per event, replies per user against messages per user; decisions per raced swap (audit
entries, amendments); reminders and lapses fired per swap (audit entries, messages to the
heads); deadline reminders claimed and reminder messages per reminded person; transactions
PostgreSQL aborted as deadlocked; wall time.

    SHUANGSUIJI_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/chaos_instances.py [--events 600] [--users 300] [--swaps 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import logging
import os
import random
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.chat.context import FixedClock  # noqa: E402
from bot.runtime.app import Runtime  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402
from inspection.deadlines import publication_deadline  # noqa: E402
from storage.models import (  # noqa: E402
    AuditEntry,
    DrawAmendment,
    DueAction,
    InboundEvent,
    OutboxMessage,
    Reminder,
    SwapRequest,
)
from storage.results import work_calendar  # noqa: E402
from tests.conftest import PG_ENV, START, Harness, _pg_execute, pg_admin_url  # noqa: E402
from tests.factories import COUNTY  # noqa: E402
from tests.results_support import Visit, click, drawn  # noqa: E402
from tests.support.draw_chat import ADMIN, CHIEF  # noqa: E402
from tests.support.reminders import PUBLISHER, UNIT_CHIEF  # noqa: E402

HEADS = ("chief_county", "chief_county_2")  # the two heads who get every approval card
# Who the Art. 37 reminders go to: the checking unit's publisher and chief, and (the weekly
# overdue list) the city bureau's admin and chief above it.
REMINDED = (PUBLISHER, UNIT_CHIEF, ADMIN, CHIEF)


async def _wait(condition: Any, what: str, seconds: float) -> float:
    """Polls ``condition`` (async) until true; fails loudly after ``seconds``."""
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > seconds:
            raise SystemExit(f"gave up waiting for {what} after {seconds:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def _count(h: Harness, stmt: Any) -> int:
    async with h.db.transaction() as s:
        return int(await s.scalar(stmt) or 0)


async def _audit(h: Harness, action: str) -> collections.Counter[int]:
    async with h.db.transaction() as s:
        rows = (
            await s.execute(select(AuditEntry.payload).where(AuditEntry.action == action))
        ).scalars()
        return collections.Counter(int(p["request"]) for p in rows)


async def _setup(h: Harness, swaps: int) -> tuple[list[Visit], list[int]]:
    """The drawn task and ``swaps`` swap requests (each its own member); returns the visits
    and the requests' ids. The checking unit's publisher and chief get the Art. 37 reminders."""
    for head in HEADS:
        await h.grant(head, "chief", COUNTY)
    await h.grant(PUBLISHER, "publisher", COUNTY)
    await h.grant(UNIT_CHIEF, "chief", COUNTY)
    visits = await drawn(h)
    members = [(v, m) for v in visits for m in v.members]
    ids = []
    for v, member in members[:swaps]:
        status, _ = await h.post_text(member, f"申请替换 {v.number} 借调外地 无法参加")
        assert status == 200
        await h.settle()
        async with h.db.transaction() as s:
            ids.append(int(await s.scalar(select(func.max(SwapRequest.id))) or 0))
    if len(set(ids)) != swaps:
        raise SystemExit(f"set-up made {len(set(ids))} swap requests, not {swaps}")
    return visits, ids


async def _tap(h: Harness, head: str, rid: int, verb: str) -> int:
    """A head's tap on the approval card, posted until acknowledged (WeCom retries)."""
    xml = h.wecom.template_card_event_xml(
        head,
        event_key=f"swap:{rid}:{verb}",
        task_id=f"swap-{rid}",
        card_type="button_interaction",
        response_code=secrets.token_hex(12),
        create_time=int(h.clock.now().timestamp()),
    )
    return 200 if await _post(h, xml) else 0


async def _post(h: Harness, xml: str) -> int:
    """Posts until acknowledged with 200, as WeCom retries."""
    for _ in range(20):
        status, _ = await h.wecom.post_callback(h.url, xml)
        if status == 200:
            return 1
        await asyncio.sleep(0.2)
    raise SystemExit("a callback was never acknowledged")


class _Deadlocks(logging.Handler):
    """Counts the log records of transactions PostgreSQL aborted as deadlocked (the loops log
    them and retry at their next turn)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        self.count += "deadlock detected" in text


async def run(args: argparse.Namespace, url: str) -> None:
    deadlocks = _Deadlocks()
    logging.getLogger().addHandler(deadlocks)
    clock = FixedClock(START.astimezone(START.tzinfo))
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api_base = await wecom.start()
    settings = standin_settings(
        url, wecom, api_base, clock={"tick_seconds": 0.5}, worker={"poll_seconds": 0.2}
    )
    setup = Runtime(settings, clock=clock, wecom_backoff=0.0)
    await setup.migrate()
    port = await setup.start(background=False)
    h0 = Harness(setup, wecom, clock, f"http://127.0.0.1:{port}{settings.server.callback_path}")
    visits, ids = await _setup(h0, args.swaps)
    await setup.stop()
    raced, waiting = ids[: len(ids) // 2], ids[len(ids) // 2 :]

    instances = [Runtime(settings, clock=clock, wecom_backoff=0.0) for _ in range(2)]
    hs = []
    for rt in instances:
        p = await rt.start()
        hs.append(Harness(rt, wecom, clock, f"http://127.0.0.1:{p}{settings.server.callback_path}"))
    a, b = hs
    rng = random.Random(args.seed)
    started, cpu_started = time.monotonic(), time.process_time()
    sent_before = len(wecom.deliveries)
    try:
        # The load: messages split between the instances, one in five resent to the other.
        per_user: collections.Counter[str] = collections.Counter()
        acks = [0, 0]
        posts = []
        now = int(clock.now().timestamp())
        for i in range(args.events):
            user = f"load{i % args.users}"
            per_user[user] += 1
            xml = wecom.text_message_xml(user, "帮助", 9_000_000 + i, now)
            first = rng.randrange(2)
            posts.append((first, xml))
            if rng.random() < 0.2:
                posts.append((1 - first, xml))
        rng.shuffle(posts)

        async def post(k: int, xml: str) -> None:
            done = await _post(hs[k], xml)
            acks[k] += done

        async def race(rid: int) -> None:
            statuses = await asyncio.gather(
                _tap(a, HEADS[0], rid, "approve"), _tap(b, HEADS[1], rid, "reject")
            )
            assert statuses == [200, 200], statuses

        sem = asyncio.Semaphore(32)

        async def bounded(coro: Any) -> None:
            async with sem:
                await coro

        await asyncio.gather(
            *(bounded(post(k, xml)) for k, xml in posts), *(race(rid) for rid in raced)
        )
        acked = time.monotonic() - started

        async def handled() -> bool:
            pending = await _count(
                a,
                select(func.count())
                .select_from(InboundEvent)
                .where(InboundEvent.status == "pending"),
            )
            unsent = await _count(
                a,
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= clock.now()),
            )
            return pending == 0 and unsent == 0

        await _wait(handled, "the load to be handled and sent", 180)
        load_done = time.monotonic() - started

        # The due actions: past the undecided requests' reminder time, then their lapse time.
        async with a.db.transaction() as s:
            due = {
                kind: max(
                    (
                        await s.execute(
                            select(DueAction.due_at).where(
                                DueAction.kind == kind,
                                DueAction.ref.in_([f"swap:{r}" for r in waiting]),
                            )
                        )
                    ).scalars()
                )
                for kind in ("swap.remind", "swap.lapse")
            }
        clock.set(due["swap.remind"] + (due["swap.lapse"] - due["swap.remind"]) / 2)

        async def fired(action: str) -> bool:
            return sum((await _audit(a, action)).values()) >= len(waiting)

        await _wait(lambda: fired("swap.remind"), "the reminders", 60)
        await asyncio.sleep(2)  # several more ticks of both schedulers: nothing fires again
        clock.set(due["swap.lapse"] + (due["swap.lapse"] - due["swap.remind"]) / 2)
        await _wait(lambda: fired("swap.lapse"), "the lapses", 60)
        await asyncio.sleep(2)
        await _wait(handled, "the lapse notices to be sent", 60)

        # Deadline reminders (Art. 37): every inspection given a result on A completes the task;
        # the clock is moved to a working morning past its publication deadline, so both
        # schedulers find the same reminders due (one overdue reminder each for the unit's
        # publisher and chief, and the weekly overdue list for the city above).
        for v in visits:
            await click(a, v.members[0], v, "no_problem", settle=False)
        await _wait(handled, "the results to be recorded", 60)
        c = settings.calendar
        cal = work_calendar(tuple(c.holidays), tuple(c.makeup_workdays)).provisional()
        deadline = publication_deadline(clock.now().astimezone(settings.tz).date(), cal)
        morning = cal.add_working_days(deadline, 2)
        before_reminders = len(wecom.deliveries)
        clock.set(dt.datetime.combine(morning, dt.time(10), tzinfo=settings.tz))

        async def reminded() -> bool:
            return await _count(a, select(func.count()).select_from(Reminder)) > 0

        await _wait(reminded, "the deadline reminders", 60)
        await asyncio.sleep(2)  # several more ticks of both schedulers: nothing fires again
        await _wait(handled, "the deadline reminders to be sent", 60)
        async with a.db.transaction() as s:
            keys = collections.Counter(
                (await s.execute(select(Reminder.kind, Reminder.subject, Reminder.occasion))).all()
            )
        reminder_messages = collections.Counter(
            d.userid
            for d in wecom.deliveries[before_reminders:]
            if d.userid in REMINDED and "逾期" in json.dumps(d.body, ensure_ascii=False)
        )
        wall = time.monotonic() - started

        # The facts.
        load_events = await _count(
            a,
            select(func.count()).select_from(InboundEvent).where(InboundEvent.userid.like("load%")),
        )
        async with a.db.transaction() as s:
            effects = collections.Counter(
                (
                    await s.execute(
                        select(OutboxMessage.cause_event_id)
                        .join(InboundEvent, InboundEvent.id == OutboxMessage.cause_event_id)
                        .where(InboundEvent.userid.like("load%"))
                    )
                ).scalars()
            )
            decided = {
                r.id: r.status
                for r in (
                    await s.execute(select(SwapRequest).where(SwapRequest.id.in_(raced)))
                ).scalars()
            }
            amendments = int(await s.scalar(select(func.count()).select_from(DrawAmendment)) or 0)
        replies = collections.Counter(
            d.userid for d in wecom.deliveries[sent_before:] if d.userid.startswith("load")
        )
        wrong_replies = sum(1 for u, n in per_user.items() if replies[u] != n)
        decisions: collections.Counter[int] = collections.Counter()
        for action in ("swap.approve", "swap.reject"):
            decisions.update(await _audit(a, action))
        reminds, lapses = await _audit(a, "swap.remind"), await _audit(a, "swap.lapse")
        head_reminders = collections.Counter(
            (d.userid, t)
            for d in wecom.deliveries
            for t in [d.body.get("text", {}).get("content", "")]
            if t.startswith("提醒：替换申请") and d.userid in HEADS
        )
        print(f"two instances on one PostgreSQL; load {os.getloadavg()[0]:.2f}")
        print(
            f"callbacks posted {len(posts)} ({args.events} distinct, {len(posts) - args.events} "
            f"resent to the other instance), acknowledged {acks[0]} by A and {acks[1]} by B "
            f"in {acked:.1f} s; handled and sent after {load_done:.1f} s"
        )
        print(
            f"events recorded {load_events} of {args.events} distinct; effects per event: "
            f"{dict(collections.Counter(effects.values()))} (outbox rows: count of events); "
            f"users answered other than once per message: {wrong_replies} of {len(per_user)}"
        )
        print(
            f"raced swaps {len(raced)}: decisions per swap "
            f"{dict(collections.Counter(decisions[r] for r in raced))}, outcomes "
            f"{dict(collections.Counter(decided.values()))}, amendments {amendments} "
            f"(approved {sum(1 for v in decided.values() if v == 'approved')})"
        )
        print(
            f"waiting swaps {len(waiting)}: reminders fired per swap "
            f"{dict(collections.Counter(reminds[r] for r in waiting))}, reminder messages per "
            f"(head, swap) {dict(collections.Counter(head_reminders.values()))}, lapses fired "
            f"per swap {dict(collections.Counter(lapses[r] for r in waiting))}"
        )
        kinds = dict(collections.Counter(kind for kind, _, _ in keys))
        per_person = dict(collections.Counter(reminder_messages[u] for u in REMINDED))
        print(
            f"deadline reminders (Art. 37) {len(keys)} claimed {kinds}; reminder messages per "
            f"reminded person {per_person} ({len(REMINDED)} people, one digest each expected)"
        )
        print(f"transactions aborted as deadlocked (logged, retried): {deadlocks.count}")
        print(f"wall {wall:.1f} s, CPU {time.process_time() - cpu_started:.1f} s (this process)")
    finally:
        for rt in instances:
            await rt.stop()
        await wecom.stop()


async def main(args: argparse.Namespace) -> None:
    admin = pg_admin_url()
    if not admin:
        raise SystemExit(f"set {PG_ENV}")
    name = f"shuangsuiji_chaos_{uuid.uuid4().hex[:8]}"
    await _pg_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await run(args, url)
    finally:
        await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--swaps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    asyncio.run(main(parser.parse_args()))
