"""Reminder benchmark: computing what is due (Art. 37, 40, 43) for a region with 10,000 open
inspections and 500 tasks, on SQLite, against a plain count over the same tables (issue
"Deadlines, quotas and reminders").

    .venv/bin/python bench/bench_due.py [--open 10000] [--tasks 500] [--repeat 5]

The database is generated once: ``--tasks`` tasks of 呼和浩特市, half of them complete (20
inspections each, every one with a recorded result, so the Art. 37 clock runs for each checking
unit) and half open (``--open`` inspections between them, each with a team of two, whose check
period ends within the next days, so every one of them is due for an Art. 40 reminder). The
clock is a working morning on which every kind is due.

* ``compute``: what ``run_reminders`` computes before it claims anything: the publication,
  results and report reminders with their recipients and texts (median of ``--repeat``);
* ``first run``: the whole first run, which claims every reminder and queues one message (a
  digest) per person, committed;
* ``next run``: a run right after, which finds everything already claimed and sends nothing;
* ``cpu s``: the process's CPU time (median), less sensitive than wall clock to what else a
  shared machine runs;
* ``count``: the baseline, ``SELECT count(*)`` of open inspections joined to their team
  members and of completed tasks' results, in one transaction.

Target: ``compute`` < 1 s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 12, 21, 1, 30, tzinfo=dt.UTC)  # Monday 09:30 in Beijing
COUNTIES = ["150102", "150103", "150104", "150105", "150121", "150122", "150123", "150124"]


async def populate(db: Any, open_n: int, tasks: int) -> None:
    from sqlalchemy import insert

    from storage.models import (
        Inspection,
        InspectionResult,
        Inspector,
        RoleBinding,
        Target,
        Task,
        TeamMember,
    )

    done_tasks = tasks // 2
    per_done = 20
    per_open = max(1, open_n // (tasks - done_tasks))
    total = done_tasks * per_done + (tasks - done_tasks) * per_open
    people = 400
    async with db.transaction() as s:
        await s.execute(
            insert(Target),
            [
                {
                    "key": f"K{i:07d}",
                    "name": f"企业{i}",
                    "org_code": COUNTIES[i % len(COUNTIES)],
                    "tier": "general",
                    "updated_at": NOW,
                }
                for i in range(total)
            ],
        )
        await s.execute(
            insert(Inspector),
            [
                {
                    "certificate_no": f"C{i:05d}",
                    "name": f"检查员{i}",
                    "org_code": COUNTIES[i % len(COUNTIES)],
                    "userid": f"u{i}",
                    "updated_at": NOW,
                }
                for i in range(people)
            ],
        )
        await s.execute(
            insert(RoleBinding),
            [
                {
                    "userid": f"{role}{org}",
                    "role": role,
                    "org_code": org,
                    "granted_by": "bench",
                    "granted_at": NOW,
                }
                for org in [*COUNTIES, "150100"]
                for role in ("publisher", "chief", "admin")
            ],
        )
        await s.execute(
            insert(Task),
            [
                {
                    "code": f"T2026-150100-{t:04d}",
                    "year": 2026,
                    "name": f"任务{t}",
                    "org_code": "150100",
                    "check_start": dt.date(2026, 11, 1),
                    "check_end": dt.date(2026, 11, 20 if t < done_tasks else 23),
                    "status": "complete" if t < done_tasks else "drawn",
                    "created_by": "bench",
                    "created_at": NOW,
                    "completed_at": NOW - dt.timedelta(days=20 + t % 10)
                    if t < done_tasks
                    else None,
                }
                for t in range(tasks)
            ],
        )
        inspections, members, results = [], [], []
        n = 0
        for t in range(tasks):
            done = t < done_tasks
            for _ in range(per_done if done else per_open):
                inspections.append(
                    {
                        "id": n + 1,
                        "number": n + 1,
                        "task_id": t + 1,
                        "target_id": n + 1,
                        "target_key": f"K{n:07d}",
                        "tier": "general",
                        "method": "onsite",
                        "check_start": dt.date(2026, 11, 1),
                        "check_end": dt.date(2026, 12, 23),
                        "status": "done" if done else "open",
                        "result_code": "no_problem" if done else None,
                        "created_at": NOW,
                    }
                )
                for pos in (0, 1):
                    p = (n * 2 + pos) % people
                    members.append(
                        {
                            "inspection_id": n + 1,
                            "inspector_id": p + 1,
                            "certificate_no": f"C{p:05d}",
                            "userid": f"u{p}",
                            "position": pos,
                            "joined_at": NOW,
                        }
                    )
                if done:
                    results.append(
                        {
                            "inspection_id": n + 1,
                            "task_id": t + 1,
                            "state": "recorded",
                            "code": "no_problem",
                            "phrase": "未发现问题",
                            "userid": "u0",
                            "channel": "card",
                            "at": NOW,
                        }
                    )
                n += 1
        await s.execute(insert(Inspection), inspections)
        await s.execute(insert(TeamMember), members)
        await s.execute(insert(InspectionResult), results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from bot.chat.context import FixedClock
    from bot.config import load_settings
    from bot.runtime.contexts import build_context
    from handlers import reminders
    from storage import migrate
    from storage.db import Database
    from storage.gcpause import gc_paused
    from storage.models import Inspection, InspectionResult, OutboxMessage, Task, TeamMember

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{os.path.join(tmp, 'bench.db')}"
        db = Database(url)
        await migrate.upgrade(db)
        await populate(db, args.open, args.tasks)
        settings = load_settings(None, database={"url": url})
        clock = FixedClock(NOW)

        @gc_paused  # as run_reminders is
        async def compute() -> int:
            async with db.transaction() as s:
                ctx = await build_context(s, settings, clock)
                local = NOW.astimezone(settings.tz).date()
                cal = reminders.calendar(ctx)
                people = await reminders.People.load(ctx)
                due = [
                    *await reminders.publication_reminders(ctx, local, cal, people),
                    *await reminders.results_reminders(ctx, local, cal, people),
                    *reminders.report_reminders(local, cal, people),
                ]
                await s.rollback()
                return len(due)

        async def run() -> int:
            async with db.transaction() as s:
                return await reminders.run_reminders(await build_context(s, settings, clock))

        async def count() -> int:
            async with db.transaction() as s:
                a = await s.scalar(
                    select(func.count())
                    .select_from(Inspection)
                    .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                    .where(Inspection.status == "open")
                )
                b = await s.scalar(
                    select(func.count())
                    .select_from(InspectionResult)
                    .join(Task, Task.id == InspectionResult.task_id)
                    .where(Task.completed_at.is_not(None))
                )
                return int(a or 0) + int(b or 0)

        async def timed(fn: Any) -> tuple[float, int]:
            t0 = time.perf_counter()
            n = await fn()
            return time.perf_counter() - t0, n

        async def cpu(fn: Any) -> float:
            t0 = time.process_time()
            await fn()
            return time.process_time() - t0

        base = [await timed(count) for _ in range(args.repeat)]
        ours = [await timed(compute) for _ in range(args.repeat)]
        base_cpu = statistics.median([await cpu(count) for _ in range(args.repeat)])
        ours_cpu = statistics.median([await cpu(compute) for _ in range(args.repeat)])
        first = await timed(run)
        after = await timed(run)
        async with db.transaction() as s:
            messages = await s.scalar(select(func.count()).select_from(OutboxMessage))
        await db.dispose()

    med = statistics.median(t for t, _ in ours)
    bmed = statistics.median(t for t, _ in base)
    print(
        f"SQLite, {args.open:,} open inspections, {args.tasks} tasks, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':12} {'seconds':>9} {'items':>8}  {'x count':>8} {'cpu s':>8}")
    print(f"{'count':12} {bmed:9.3f} {base[0][1]:8d}  {1:8.1f} {base_cpu:8.3f}")
    print(f"{'compute':12} {med:9.3f} {ours[0][1]:8d}  {med / bmed:8.1f} {ours_cpu:8.3f}")
    print(f"{'first run':12} {first[0]:9.3f} {first[1]:8d}  {first[0] / bmed:8.1f}")
    print(f"{'next run':12} {after[0]:9.3f} {after[1]:8d}  {after[0] / bmed:8.1f}")
    print(f"messages queued by the first run (one per person): {messages}")
    print(f"target compute < 1 s: {'met' if med < 1 else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
