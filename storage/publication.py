"""一公开 (Art. 37, "who checks, enters and publishes"): which unit checked what, and recording
that a checking unit published a task's results, once.

The checking unit of an inspection is the organisation of its team's lead inspector (the
first member drawn); an inspection without a team falls to the task's own organisation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from inspection.workdays import WorkCalendar
from storage.db import insert_for
from storage.models import (
    Inspection,
    InspectionResult,
    Inspector,
    Publication,
    PublicationEvent,
    Task,
    TeamMember,
)
from storage.results import result_due

LIVE = ("open", "done", "merged")


def lead_units() -> Any:
    """Subquery: inspection id -> the organisation of its team's lead (active, position 0)."""
    return (
        select(TeamMember.inspection_id, Inspector.org_code)
        .join(Inspector, Inspector.id == TeamMember.inspector_id)
        .where(TeamMember.position == 0, TeamMember.active.is_(True))
        .subquery()
    )


def with_checking_unit(stmt: Select[Any], inspection_id: Any) -> tuple[Select[Any], Any]:
    """``stmt`` outer-joined to its inspection's lead (active, position 0) and their person,
    and the checking unit as a column: the lead's organisation, else the task's (``Task``
    must be in ``stmt``). Joined per row through the team's index, for statements that read
    a few rows of a large record (``lead_units`` materialises every team)."""
    lead, person = aliased(TeamMember), aliased(Inspector)
    stmt = stmt.outerjoin(
        lead,
        and_(
            lead.inspection_id == inspection_id,
            lead.position == 0,
            lead.active.is_(True),
        ),
    ).outerjoin(person, person.id == lead.inspector_id)
    return stmt, func.coalesce(person.org_code, Task.org_code)


async def unit_of(session: AsyncSession, inspection: Inspection) -> str:
    """The checking unit of one inspection (its lead's organisation, else the task's)."""
    lead = lead_units()
    found = await session.scalar(
        select(lead.c.org_code).where(lead.c.inspection_id == inspection.id)
    )
    if found:
        return str(found)
    return str(await session.scalar(select(Task.org_code).where(Task.id == inspection.task_id)))


async def unit_of_inspections(session: AsyncSession, task_ids: Sequence[int]) -> dict[int, str]:
    """inspection id -> its checking unit, for the live inspections of ``task_ids``."""
    if not task_ids:
        return {}
    lead = lead_units()
    conn = await session.connection()  # plain rows: one per inspection, no ORM needed
    rows = await conn.execute(
        select(Inspection.id, lead.c.org_code, Task.org_code)
        .join(Task, Task.id == Inspection.task_id)
        .outerjoin(lead, lead.c.inspection_id == Inspection.id)
        .where(Inspection.task_id.in_(list(task_ids)), Inspection.status.in_(LIVE))
    )
    return {iid: unit or task_org for iid, unit, task_org in rows.all()}


@dataclass(frozen=True)
class UnitResults:
    """A checking unit's recorded results of a task: publishable and withheld (secret), and
    when the earliest publishable one not yet published was recorded (its Art. 37 due date
    comes first; None when every publishable one is published)."""

    task_id: int
    org_code: str
    results: int
    withheld: int
    first_unpublished_at: dt.datetime | None = None


async def unit_results(session: AsyncSession, task_ids: Sequence[int]) -> list[UnitResults]:
    """Per (task, checking unit): recorded results, split into publishable and secret."""
    units = await unit_of_inspections(session, task_ids)
    conn = await session.connection()
    rows = await conn.execute(
        select(
            InspectionResult.task_id,
            InspectionResult.inspection_id,
            InspectionResult.secret,
            InspectionResult.at,
            InspectionResult.published_at,
        ).where(InspectionResult.task_id.in_(list(task_ids)), InspectionResult.state == "recorded")
    )
    counts: dict[tuple[int, str], list[int]] = {}
    first: dict[tuple[int, str], dt.datetime] = {}
    for task_id, inspection_id, secret, at, published_at in rows.all():
        unit = units.get(inspection_id)
        if unit is None:
            continue
        c = counts.setdefault((task_id, unit), [0, 0])
        c[1 if secret else 0] += 1
        if not secret and published_at is None:
            key = (task_id, unit)
            first[key] = min(first.get(key, at), at)
    return [
        UnitResults(t, u, c[0], c[1], first.get((t, u))) for (t, u), c in sorted(counts.items())
    ]


async def published(session: AsyncSession, task_ids: Sequence[int]) -> set[tuple[int, str]]:
    rows = await session.execute(
        select(Publication.task_id, Publication.org_code).where(
            Publication.task_id.in_(list(task_ids))
        )
    )
    return {(t, o) for t, o in rows.all()}


async def publication_of(session: AsyncSession, task_id: int, org_code: str) -> Publication | None:
    return (
        await session.execute(
            select(Publication).where(
                Publication.task_id == task_id, Publication.org_code == org_code
            )
        )
    ).scalar_one_or_none()


async def record_publication(
    session: AsyncSession,
    task: Task,
    org_code: str,
    by: str,
    url: str,
    now: dt.datetime,
    *,
    deadline: dt.date | None,
    published_on: dt.date,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> tuple[Publication, bool]:
    """Record that ``org_code`` published its results of ``task`` (Art. 37), once per (task,
    unit): the row, ``published_at`` on that unit's non-secret results and the event that
    judges each of them against its own due day. Returns the row and whether this call made
    it (False: it was recorded before, and nothing changed)."""
    mine = [i for i, u in (await unit_of_inspections(session, [task.id])).items() if u == org_code]
    rows = await session.execute(
        select(InspectionResult.inspection_id, InspectionResult.secret).where(
            InspectionResult.inspection_id.in_(mine), InspectionResult.state == "recorded"
        )
    )
    flags = [secret for _, secret in rows.all()]
    on_time = None if deadline is None else published_on <= deadline
    inserted = (
        await session.execute(
            insert_for(session)(Publication)
            .values(
                task_id=task.id,
                org_code=org_code,
                published_at=now,
                published_by=by,
                url=url,
                deadline=deadline,
                on_time=on_time,
                results=flags.count(False),
                withheld=flags.count(True),
            )
            .on_conflict_do_nothing(index_elements=["task_id", "org_code"])
            .returning(Publication.id)
        )
    ).first()
    if inserted is None:
        existing = await publication_of(session, task.id, org_code)
        assert existing is not None
        return existing, False
    row = await session.get(Publication, inserted[0])
    assert row is not None
    await publish_now(session, task, row, mine, now, tz, calendar, supplement=False)
    return row, True


async def publish_now(
    session: AsyncSession,
    task: Task,
    publication: Publication,
    mine: Sequence[int],
    now: dt.datetime,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None,
    *,
    supplement: bool,
) -> PublicationEvent:
    """Art. 37: the unit's recorded, non-secret results of the task not yet published
    (``mine``: its inspections) are published now, and the event says how many were on time
    and late, each against its own due day (a result in by the task clock's start is due with
    the task, a later one n working days after its recording)."""
    conn = await session.connection()
    recorded = (
        await conn.execute(
            select(InspectionResult.at).where(
                InspectionResult.inspection_id.in_(list(mine)),
                InspectionResult.state == "recorded",
                InspectionResult.secret.is_(False),
                InspectionResult.published_at.is_(None),
            )
        )
    ).scalars()
    today = now.astimezone(tz).date()
    dues = [result_due(task, at, tz, calendar) for at in recorded]
    on_time = sum(1 for d in dues if d is None or today <= d)  # None: no clock, nothing due
    await session.execute(
        update(InspectionResult)
        .where(
            InspectionResult.inspection_id.in_(list(mine)),
            InspectionResult.state == "recorded",
            InspectionResult.secret.is_(False),
            InspectionResult.published_at.is_(None),
        )
        .values(published_at=now)
        .execution_options(synchronize_session=False)
    )
    event = PublicationEvent(
        publication_id=publication.id,
        org_code=publication.org_code,
        published_at=now,
        supplement=supplement,
        due=min((d for d in dues if d is not None), default=None),
        on_time=on_time,
        late=len(dues) - on_time,
    )
    session.add(event)
    await session.flush()
    return event


async def publish_late(
    session: AsyncSession,
    publication: Publication,
    now: dt.datetime,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> int:
    """Art. 37: results of the unit recorded after its publication of the task, published now
    (a supplement 公示), with their event (on time or late, each by its own due day). Returns
    how many."""
    task = await session.get(Task, publication.task_id)
    assert task is not None
    mine = [
        i
        for i, u in (await unit_of_inspections(session, [publication.task_id])).items()
        if u == publication.org_code
    ]
    event = await publish_now(session, task, publication, mine, now, tz, calendar, supplement=True)
    late = event.on_time + event.late
    publication.results += late
    return late


async def unpublished(session: AsyncSession, publication: Publication) -> int:
    """The unit's results of the task recorded since its publication and not yet published."""
    mine = [
        i
        for i, u in (await unit_of_inspections(session, [publication.task_id])).items()
        if u == publication.org_code
    ]
    return (
        await session.scalar(
            select(func.count()).where(
                InspectionResult.inspection_id.in_(mine),
                InspectionResult.state == "recorded",
                InspectionResult.secret.is_(False),
                InspectionResult.published_at.is_(None),
            )
        )
        or 0
    )


@dataclass(frozen=True)
class LateResults:
    """A unit's results of a task recorded after it published the task, not yet published
    (Art. 37: within 20 working days of their recording; a supplement 公示 publishes them)."""

    task_id: int
    org_code: str
    results: int
    first_recorded_at: dt.datetime  # the earliest: its deadline comes first


async def late_results(session: AsyncSession) -> list[LateResults]:
    """Per published (task, unit): its recorded, non-secret results still unpublished. Read
    from the few unpublished results of published tasks, not from the publications' tasks."""
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(
                InspectionResult.task_id, InspectionResult.inspection_id, InspectionResult.at
            ).where(
                InspectionResult.state == "recorded",
                InspectionResult.secret.is_(False),
                InspectionResult.published_at.is_(None),
                InspectionResult.task_id.in_(select(Publication.task_id)),
            )
        )
    ).all()
    if not rows:
        return []
    task_ids = sorted({t for t, _, _ in rows})
    units = await unit_of_inspections(session, task_ids)
    done = await published(session, task_ids)
    found: dict[tuple[int, str], tuple[int, dt.datetime]] = {}
    for task_id, inspection_id, at in rows:
        unit = units.get(inspection_id)
        if unit is None or (task_id, unit) not in done:
            continue
        n, first = found.get((task_id, unit), (0, at))
        found[(task_id, unit)] = (n + 1, min(first, at))
    return [LateResults(t, u, n, first) for (t, u), (n, first) in sorted(found.items())]
