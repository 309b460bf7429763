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
    PublicationEvent,
    Target,
    Task,
    TeamMember,
)
from storage.results import due_of

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


@dataclass(frozen=True)
class Result:
    """A recorded result as Art. 37 sees it: who must publish it (its lead's unit), whether it
    can be due (not secret, a live inspection of a drawn task), its task's clock start and
    rules' date, and when it was recorded and published (None: never)."""

    unit: str
    publishable: bool
    check_start: dt.date
    clock: dt.datetime | None  # the task's completion
    at: dt.datetime
    published_at: dt.datetime | None


@dataclass
class Ledger:
    targets: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, org, tier, status
    checks: list[Check] = field(default_factory=list)
    draws: list[tuple[str, str, bool, dt.datetime]] = field(default_factory=list)
    publications: list[tuple[str, bool | None, dt.datetime, int]] = field(default_factory=list)
    tasks: list[tuple[int, str, dt.datetime | None]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)


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
    tz: dt.tzinfo = dt.UTC,
) -> Ledger:
    """Checks over the existing directory (targets and inspectors must be there), spread over
    the year's four quarters and the targets' organisations. Each checking unit of a completed
    task publishes its results or not; results recorded after it publish by a supplement or
    stay unpublished; each publication event judges its results by their due days in ``tz``
    (Art. 37)."""
    rng = random.Random(seed)
    ledger = Ledger()
    targets = (
        await session.execute(select(Target.id, Target.org_code, Target.tier, Target.status))
    ).all()
    ledger.targets = [tuple(t) for t in targets]  # type: ignore[misc]
    people: dict[str, list[int]] = {}
    org_of: dict[int, str] = {}
    for pid, org in (await session.execute(select(Inspector.id, Inspector.org_code))).all():
        people.setdefault(org[:4] + "00", []).append(pid)
        org_of[pid] = org
    everyone = [p for ps in people.values() for p in ps]
    by_city: dict[str, list[tuple[int, str, str]]] = {}
    for tid, org, tier, _status in targets:
        by_city.setdefault(org[:4] + "00", []).append((tid, org, tier))
    cities = sorted(by_city)
    task_id, draw_id = await _next_id(session, Task.id), await _next_id(session, Draw.id)
    inspection_id = await _next_id(session, Inspection.id)
    publication_id = await _next_id(session, Publication.id)
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
            PublicationEvent,
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
        task_results: list[tuple[dict[str, Any], str, bool]] = []  # row, unit, publishable
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
                result: dict[str, Any] = {
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
                    "published_at": None,
                }
                rows[InspectionResult].append(result)
                publishable = not result["secret"] and status != "cancelled" and not outside
                task_results.append((result, org_of[members[0]], publishable))
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
        if completed and not outside:
            units = sorted({unit for _, unit, ok in task_results if ok})
            for unit in units:
                if rng.random() < 0.3:
                    continue  # this unit never publishes
                mine = [r for r, u, ok in task_results if ok and u == unit]
                soon = rng.random() < 0.5  # before the results recorded late are all in
                days = rng.randint(1, 4) if soon else rng.randint(5, 40)
                first = completed + dt.timedelta(days=days, hours=1)
                events = [(first, [r for r in mine if r["at"] <= first], False)]
                rest = [r for r in mine if r["at"] > first]
                if rest and rng.random() < 0.6:  # a supplement 公示 for those recorded after
                    later = max(r["at"] for r in rest) + dt.timedelta(days=rng.randint(1, 40))
                    events.append((later, rest, True))
                counted = []
                for when, published, supplement in events:
                    today = when.astimezone(tz).date()
                    dues = [
                        due_of(
                            start,
                            completed.astimezone(tz).date(),
                            None,
                            [r["at"].astimezone(tz).date()],
                        )[0]
                        for r in published
                    ]
                    for r in published:
                        r["published_at"] = when
                    on_time = sum(1 for d in dues if today <= d)
                    counted.append((when, supplement, min(dues, default=None), on_time, dues))
                when, _, due, on_time, dues = counted[0]
                ledger.publications.append((unit, on_time == len(dues), when, task_id))
                rows[Publication].append(
                    {
                        "id": publication_id,
                        "task_id": task_id,
                        "org_code": unit,
                        "published_at": when,
                        "published_by": "gen",
                        "url": "",
                        "deadline": due,
                        "on_time": on_time == len(dues),
                        "results": sum(len(c[4]) for c in counted),
                        "withheld": 0,
                    }
                )
                for at_, supplement, due_, n, all_dues in counted:
                    rows[PublicationEvent].append(
                        {
                            "publication_id": publication_id,
                            "org_code": unit,
                            "published_at": at_,
                            "supplement": supplement,
                            "due": due_,
                            "on_time": n,
                            "late": len(all_dues) - n,
                        }
                    )
                publication_id += 1
        ledger.results += [
            Result(unit, ok, start, completed, r["at"], r["published_at"])
            for r, unit, ok in task_results
        ]
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
