"""A generated record of checks for report tests and benches: tasks, draws, inspections, teams,
results (the seven phrases, some secret), checks outside the draw, publications. Written with
bulk inserts (a million inspections in a bench), and returned as a plain ``Ledger`` from which
a test computes the expected figures by itself, without the report's queries."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.origins import OUTSIDE_KINDS as KINDS
from inspection.results import PHRASES, ResultCode
from storage import facts
from storage.bulk import binder, insert_rows
from storage.models import (
    CheckOutsideDraw,
    Draw,
    Inspection,
    InspectionResult,
    Inspector,
    Publication,
    Target,
    Task,
    TeamMember,
)

OUTSIDE_KINDS = tuple(KINDS)  # Art. 6
BATCH = 20_000


@dataclass(frozen=True)
class Check:
    target_org: str
    target_id: int
    tier: str
    origin: str
    status: str
    outside: str | None  # Art. 6 kind, or None for a random check
    code: str | None  # result code, None when not reported
    at: dt.datetime | None
    case_filing: bool
    members: tuple[int, ...]  # active, non-auxiliary inspector ids


@dataclass
class Ledger:
    targets: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, org, tier, status
    checks: list[Check] = field(default_factory=list)
    draws: list[tuple[str, str, bool, dt.datetime]] = field(default_factory=list)
    publications: list[tuple[str, bool | None, dt.datetime, int]] = field(default_factory=list)
    tasks: list[tuple[int, str, dt.datetime | None]] = field(default_factory=list)


async def _next_id(session: AsyncSession, column: object) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1


async def generate(
    session: AsyncSession,
    *,
    seed: int,
    inspections: int,
    year: int,
    per_task: int = 50,
    now: dt.datetime,
) -> Ledger:
    """Checks over the existing directory (targets and inspectors must be there), spread over
    the year's four quarters and the targets' organisations."""
    rng = random.Random(seed)
    ledger = Ledger()
    targets = (
        await session.execute(select(Target.id, Target.org_code, Target.tier, Target.status))
    ).all()
    ledger.targets = [tuple(t) for t in targets]  # type: ignore[misc]
    people: dict[str, list[int]] = {}
    for pid, org in (await session.execute(select(Inspector.id, Inspector.org_code))).all():
        people.setdefault(org[:4] + "00", []).append(pid)
    everyone = [p for ps in people.values() for p in ps]
    by_city: dict[str, list[tuple[int, str, str]]] = {}
    for tid, org, tier, _status in targets:
        by_city.setdefault(org[:4] + "00", []).append((tid, org, tier))
    cities = sorted(by_city)
    task_id, draw_id = await _next_id(session, Task.id), await _next_id(session, Draw.id)
    inspection_id = await _next_id(session, Inspection.id)
    number = await _next_id(session, Inspection.number)
    rows: dict[type, list[dict[str, object]]] = {
        m: []
        for m in (
            Task,
            Draw,
            Inspection,
            TeamMember,
            InspectionResult,
            CheckOutsideDraw,
            Publication,
        )
    }
    codes = [c.value for c in ResultCode]
    weights = [50, 20, 6, 2, 5, 2, 15]
    made = 0
    while made < inspections:
        city = rng.choice(cities)
        quarter = rng.randint(1, 4)
        start = dt.date(year, 3 * quarter - 2, 1)
        end = start + dt.timedelta(days=80)
        outside = rng.random() < 0.3  # one check each: a few per hundred inspections
        kind = rng.choice(OUTSIDE_KINDS) if outside else None
        size = min(per_task, inspections - made) if not outside else 1
        completed = dt.datetime.combine(end, dt.time(9), dt.UTC) if rng.random() < 0.8 else None
        rows[Task].append(
            {
                "id": task_id,
                "code": f"S{year}-{city}-{task_id:07d}",
                "year": year,
                "name": f"生成任务{task_id}",
                "org_code": city,
                "check_start": start,
                "check_end": end,
                "status": "targeted" if outside else ("complete" if completed else "drawn"),
                "created_by": "gen",
                "created_at": now,
                "completed_at": completed,
            }
        )
        ledger.tasks.append((task_id, city, completed))
        this_draw = None
        if not outside:
            status = rng.choices(["drawn", "abandoned", "superseded"], [90, 5, 5])[0]
            witnessed = rng.random() < 0.85
            committed = dt.datetime.combine(start, dt.time(10), dt.UTC) - dt.timedelta(days=3)
            rows[Draw].append(
                {
                    "id": draw_id,
                    "task_id": task_id,
                    "attempt": 1,
                    "org_code": city,
                    "status": status,
                    "algorithm_version": 1,
                    "fingerprint": "0" * 64,
                    "input_doc": b"",
                    "exclusions": [],
                    "summary": {},
                    "secret_hex": "0" * 64,
                    "commitment": "0" * 64,
                    "witnessed": witnessed,
                    "committed_by": "gen",
                    "committed_at": committed,
                    "drawn_at": committed,
                }
            )
            ledger.draws.append((city, status, witnessed, committed))
            this_draw = draw_id
            draw_id += 1
        pool = by_city[city]
        reported = 0
        for _ in range(size):
            tid, org, tier = rng.choice(pool)
            origin = "construction" if rng.random() < 0.05 and not outside else "random"
            status = rng.choices(["open", "done", "cancelled"], [20, 75, 5])[0]
            rows[Inspection].append(
                {
                    "id": inspection_id,
                    "number": number,
                    "task_id": task_id,
                    "draw_id": this_draw,
                    "target_id": tid,
                    "target_key": f"k{tid}",
                    "tier": tier,
                    "method": "onsite",
                    "origin": origin,
                    "check_start": start,
                    "check_end": end,
                    "status": status,
                    "created_at": now,
                }
            )
            members = tuple(rng.sample(people.get(city) or everyone, 2))
            for pos, pid in enumerate(members):
                rows[TeamMember].append(
                    {
                        "inspection_id": inspection_id,
                        "inspector_id": pid,
                        "certificate_no": f"c{pid}",
                        "userid": f"u{pid}",
                        "position": pos,
                        "active": True,
                        "joined_at": now,
                    }
                )
            swapped = rng.choice(everyone)
            rows[TeamMember].append(  # a member swapped out: never counted (Art. 17, 29)
                {
                    "inspection_id": inspection_id,
                    "inspector_id": swapped,
                    "certificate_no": f"c{swapped}",
                    "userid": f"u{swapped}",
                    "position": 9,
                    "active": False,
                    "joined_at": now,
                }
            )
            code = at = None
            filing = False
            if status != "open" or rng.random() < 0.3:
                code = rng.choices(codes, weights)[0]
                day = start + dt.timedelta(days=rng.randint(0, 88))
                at = dt.datetime.combine(day, dt.time(rng.randint(1, 12)), dt.UTC)
                filing = code == "case_filed" or (
                    code == "ordered_to_rectify" and rng.random() < 0.1
                )
                rows[InspectionResult].append(
                    {
                        "inspection_id": inspection_id,
                        "task_id": task_id,
                        "state": "recorded",
                        "code": code,
                        "phrase": PHRASES[ResultCode(code)],
                        "userid": f"u{members[0]}",
                        "channel": "card",
                        "at": at,
                        "case_filing": filing,
                        "secret": rng.random() < 0.02,
                    }
                )
                reported += 1
            if kind:
                rows[CheckOutsideDraw].append(
                    {
                        "inspection_id": inspection_id,
                        "kind": kind,
                        "registered_by": "gen",
                        "registered_at": dt.datetime.combine(start, dt.time(8), dt.UTC),
                    }
                )
            ledger.checks.append(
                Check(org, tid, tier, origin, status, kind, code, at, filing, members)
            )
            inspection_id += 1
            number += 1
        if completed and not outside and rng.random() < 0.7:
            on_time = rng.random() < 0.8
            published = completed + dt.timedelta(days=rng.randint(1, 40))
            rows[Publication].append(
                {
                    "task_id": task_id,
                    "org_code": city,
                    "published_at": published,
                    "published_by": "gen",
                    "url": "",
                    "on_time": on_time,
                    "results": reported,
                    "withheld": 0,
                }
            )
            ledger.publications.append((city, on_time, published, task_id))
        task_id += 1
        made += size
        if len(rows[Inspection]) >= BATCH:
            await _flush(session, rows)
    await _flush(session, rows)
    await facts.refresh(session)  # the statistics table's rows, as the record's writes keep them
    return ledger


async def _flush(session: AsyncSession, rows: dict[type, list[dict[str, object]]]) -> None:
    """The project's bulk path (``storage.bulk``: plain driver rows, COPY on PostgreSQL):
    every column given, JSON and defaults included."""
    bind = binder(session)
    for model, batch in rows.items():
        if not batch:
            continue
        table = model.__table__  # type: ignore[attr-defined]
        columns = [c.name for c in table.columns if c.name in batch[0] or _default(c) is not None]
        values = [
            tuple(bind(row[c] if c in row else _default(table.c[c])) for c in columns)
            for row in batch
        ]
        await insert_rows(session, table.name, columns, values)
        batch.clear()


def _default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    arg = default.arg
    return arg(None) if callable(arg) else arg
