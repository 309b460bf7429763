"""The figures behind the quarterly statistics table and the annual report (Art. 14, 17, 25, 37,
39, 41, 43), read with one grouped query per kind of figure, then summed into the rows a table
shows: a league/city's own row and one per banner/county; for the region, one per league/city.

Attribution: checks by where the target is (its organisation), draws by the organisation whose
task it is, publication figures by result and the checking unit that must publish it (Art. 37). A random check counts in the period of its recorded result (an
inter-agency joint check in that of its own check date, ``facts.check_time``);
drawn but not reported does not count. Checks outside the draw (Art. 6) are counted apart.
Targets per tier are those of the directory that are not deregistered when the table is made
(the directory keeps no dated snapshot of tiers; see the closing note).

The random checks of a period are read from their facts (``storage.facts``: ``check_fact`` and
``check_fact_member``, kept in the transaction of every change that moves a figure), one range
scan of a covering index each, grouped in the database: the table no longer joins every result
of the quarter to its inspection, target and team at read time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Integer, and_, case, cast, distinct, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.origins import QUOTA_ORIGINS
from inspection.quotas import Tier
from inspection.report import Figures, rolled_up
from inspection.workdays import WorkCalendar
from storage.facts import check_time
from storage.models import (
    CheckFact,
    CheckFactMember,
    CheckOutsideDraw,
    Draw,
    Inspection,
    InspectionResult,
    Inspector,
    JointCheck,
    Organisation,
    Publication,
    PublicationEvent,
    Target,
    Task,
    TeamMember,
)
from storage.publication import with_checking_unit
from storage.repos import Repositories
from storage.results import due_of

RANDOM_ORIGINS = QUOTA_ORIGINS  # inspection.origins: one definition
COUNTED = ("open", "done", "merged")  # a cancelled inspection's result does not count


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    figures: Figures


@dataclass(frozen=True)
class Sheet:
    """One league/city (or the region's summary): its rows and their total."""

    code: str
    name: str
    rows: list[Row]
    total: Figures


def _utc(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


async def figures_by_org(
    session: AsyncSession,
    start: dt.date,
    end: dt.date,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> dict[str, Figures]:
    """Every organisation's own figures for [start, end) in local dates, keyed by org code.
    ``calendar``: the working days of the Art. 37 due days (the packaged schedule if None)."""
    since, until = _utc(start, tz), _utc(end, tz)
    out: dict[str, Figures] = defaultdict(Figures)

    for org, tier, n in await session.execute(
        select(Target.org_code, Target.tier, func.count())
        .where(Target.status != "deregistered")
        .group_by(Target.org_code, Target.tier)
    ):
        if tier in Tier.__members__:
            out[org].targets[Tier(tier)] += n

    # The period's random checks from their facts (``storage.facts``): one range scan of the
    # covering index on their time, grouped in the database.
    period = and_(CheckFact.at >= since, CheckFact.at < until)
    for org, code, filing, n in await session.execute(
        select(CheckFact.org_code, CheckFact.code, CheckFact.case_filing, func.count())
        .where(period)
        .group_by(CheckFact.org_code, CheckFact.code, CheckFact.case_filing)
    ):
        f = out[org]
        f.by_result[code] = f.by_result.get(code, 0) + n
        f.cases_filed += n if code == "case_filed" or filing else 0
        f.handovers += n if code == "transferred" else 0
    for org, tier, n in await session.execute(
        select(CheckFact.org_code, CheckFact.tier, func.count(distinct(CheckFact.target_id)))
        .where(period)
        .group_by(CheckFact.org_code, CheckFact.tier)
    ):
        if tier in Tier.__members__:
            out[org].checked[Tier(tier)] += n
    for org, n in await session.execute(
        select(CheckFactMember.org_code, func.count(distinct(CheckFactMember.inspector_id)))
        .where(CheckFactMember.at >= since, CheckFactMember.at < until)
        .group_by(CheckFactMember.org_code)
    ):
        out[org].inspectors += n

    await outside_and_draws(session, out, since, until)
    await publications(session, out, end, since, until, tz, calendar)
    return out


async def outside_and_draws(
    session: AsyncSession, out: dict[str, Figures], since: dt.datetime, until: dt.datetime
) -> None:
    """The figures not read from the facts but publications: checks outside the draw by kind,
    draws witnessed, unwitnessed and cancelled."""
    for org, kind, n in await session.execute(
        select(Target.org_code, CheckOutsideDraw.kind, func.count())
        .join(Inspection, Inspection.id == CheckOutsideDraw.inspection_id)
        .join(Target, Target.id == Inspection.target_id)
        .where(CheckOutsideDraw.registered_at >= since, CheckOutsideDraw.registered_at < until)
        .group_by(Target.org_code, CheckOutsideDraw.kind)
    ):
        out[org].outside[kind] = out[org].outside.get(kind, 0) + n

    for org, status, witnessed, n in await session.execute(
        select(Task.org_code, Draw.status, Draw.witnessed, func.count())
        .join(Task, Task.id == Draw.task_id)
        .where(Draw.committed_at >= since, Draw.committed_at < until)
        .group_by(Task.org_code, Draw.status, Draw.witnessed)
    ):
        if status in ("abandoned", "superseded", "cancelled"):
            out[org].draws_cancelled += n
        elif status in ("drawn", "failed"):
            if witnessed:
                out[org].draws_witnessed += n
            else:
                out[org].draws_unwitnessed += n


async def publications(
    session: AsyncSession,
    out: dict[str, Figures],
    end: dt.date,
    since: dt.datetime,
    until: dt.datetime,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> None:
    """Art. 37, 43: results, counted by the checking unit that must publish them ("who checks,
    enters and publishes"; ``storage.publication.lead_units``). Published on time / late: the
    results each publication event made public in the period (a supplement 公示 too), judged
    against each result's own due day when published. Outstanding: the results recorded
    before the period's end whose due day (``storage.results.due_of``) was before ``end`` and
    that were not published by then. Secret results are never due; a targeted task's checks
    (outside the draw, Art. 6) are counted in none of the three."""
    for org, on_time, late in await session.execute(
        select(
            PublicationEvent.org_code,
            func.sum(PublicationEvent.on_time),
            func.sum(PublicationEvent.late),
        )
        .join(Publication, Publication.id == PublicationEvent.publication_id)
        .join(Task, Task.id == Publication.task_id)
        .where(
            PublicationEvent.published_at >= since,
            PublicationEvent.published_at < until,
            Task.status != "targeted",
        )
        .group_by(PublicationEvent.org_code)
    ):
        out[org].published_on_time += int(on_time or 0)
        out[org].published_late += int(late or 0)

    # Recorded before the period's end and unpublished at its end: not yet, or later. Both
    # read from the index on (published_at, at) alone, and the statement driven from them: it
    # reads those few results, not every result before the period's end.
    unpublished = union_all(
        select(InspectionResult.inspection_id.label("id")).where(
            InspectionResult.published_at.is_(None), InspectionResult.at < until
        ),
        select(InspectionResult.inspection_id.label("id")).where(
            InspectionResult.published_at >= until, InspectionResult.at < until
        ),
    ).subquery()
    due_unpublished, unit = with_checking_unit(
        select()
        .select_from(unpublished)
        .join(InspectionResult, InspectionResult.inspection_id == unpublished.c.id)
        .join(Inspection, Inspection.id == InspectionResult.inspection_id)
        .join(Task, Task.id == InspectionResult.task_id),
        InspectionResult.inspection_id,
    )
    due_unpublished = due_unpublished.where(
        InspectionResult.state == "recorded",
        InspectionResult.secret.is_(False),
        InspectionResult.at < until,
        # Wrapped so that no planner drives the statement from the index of every inspection's
        # status (SQLite does when grouping) instead of from the few results above.
        func.coalesce(Inspection.status, "").in_(COUNTED),
        Task.completed_at < until,
        Task.status != "targeted",
    )
    dues: dict[tuple[dt.date, dt.date, dt.date | None], dt.date] = {}

    def due(check_start: dt.date, clock: dt.datetime, at: dt.datetime | None) -> dt.date:
        key = (check_start, clock.astimezone(tz).date(), at and at.astimezone(tz).date())
        if key not in dues:
            recorded = [] if key[2] is None else [key[2]]
            dues[key] = due_of(check_start, key[1], calendar, recorded)[0]
        return dues[key]

    # Results in by the task clock's start are due with their task: counted per unit and task
    # in the database. The few recorded after it are each due from their own recording.
    later = case((InspectionResult.at > Task.completed_at, InspectionResult.at), else_=None)
    for org, check_start, completed_at, at, n in await session.execute(
        due_unpublished.add_columns(
            unit, Task.check_start, Task.completed_at, later, func.count()
        ).group_by(unit, Task.id, Task.check_start, Task.completed_at, later)
    ):
        if due(check_start, completed_at, at) < end:
            out[org].publication_outstanding += n


async def sheets(
    session: AsyncSession,
    org_code: str,
    start: dt.date,
    end: dt.date,
    tz: dt.tzinfo,
    calendar: WorkCalendar | None = None,
) -> list[Sheet]:
    """The table for ``org_code``: for a league/city, one sheet (its own row, then one per
    banner/county); for the region, a summary sheet (one row per league/city) then one
    sheet per league/city. Raises LookupError for an unknown organisation."""
    org = await session.get(Organisation, org_code)
    if org is None:
        raise LookupError(org_code)
    repos = Repositories(session)
    by_org = await figures_by_org(session, start, end, tz, calendar)
    orgs = {o.code: o for o in await session.scalars(select(Organisation))}
    children: dict[str, list[str]] = defaultdict(list)
    for o in orgs.values():
        if o.parent_code:
            children[o.parent_code].append(o.code)

    async def subtree_total(code: str) -> Figures:
        return rolled_up(by_org.get(c, Figures()) for c in await repos.orgs.subtree(code))

    async def unit_sheet(code: str) -> Sheet:
        unit = orgs[code]
        rows = [Row(code, f"{unit.name}（本级）", by_org.get(code, Figures()))]
        for child in sorted(children[code]):
            rows.append(Row(child, orgs[child].name, await subtree_total(child)))
        return Sheet(code, unit.name, rows, rolled_up(r.figures for r in rows))

    if org.level != "region":
        return [await unit_sheet(org.code)]
    cities = sorted(children[org.code])
    summary_rows = [Row(org.code, f"{org.name}（本级）", by_org.get(org.code, Figures()))]
    summary_rows += [Row(c, orgs[c].name, await subtree_total(c)) for c in cities]
    summary = Sheet(org.code, org.name, summary_rows, rolled_up(r.figures for r in summary_rows))
    return [summary, *[await unit_sheet(c) for c in cities]]


async def annual_counts(
    session: AsyncSession, orgs: list[str], year: int, tz: dt.tzinfo
) -> tuple[list[tuple[str, str, str, int, int]], list[tuple[str, str, str, int]]]:
    """Per target (Art. 14): random checks and checks outside the draw with a result recorded
    in the year; per inspector (Art. 17): the inspections they stayed on (a member swapped out
    does not count, Art. 29). Only the organisations in ``orgs``."""
    since, until = _utc(dt.date(year, 1, 1), tz), _utc(dt.date(year + 1, 1, 1), tz)
    made = check_time()  # an inter-agency joint check by its own date (Art. 6, 7)
    in_year = and_(
        InspectionResult.state == "recorded",
        InspectionResult.at >= since,  # the index's range: no check is recorded early
        made >= since,
        made < until,
        Inspection.status.in_(COUNTED),
    )
    is_outside = Inspection.id.in_(select(CheckOutsideDraw.inspection_id))
    names = {o.code: o.name for o in await session.scalars(select(Organisation))}
    targets = [
        (name, uscc or "", names.get(org, org), int(random_n or 0), int(outside_n or 0))
        for name, uscc, org, random_n, outside_n in await session.execute(
            select(
                Target.name,
                Target.uscc,
                Target.org_code,
                func.sum(cast(~is_outside, Integer)),
                func.sum(cast(is_outside, Integer)),
            )
            .join(Inspection, Inspection.target_id == Target.id)
            .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            .outerjoin(JointCheck, JointCheck.inspection_id == Inspection.id)
            .where(in_year, Target.org_code.in_(orgs))
            .group_by(Target.id, Target.name, Target.uscc, Target.org_code)
            .order_by(Target.org_code, Target.name)
        )
    ]
    people = [
        (name, cert, names.get(org, org), int(n))
        for name, cert, org, n in await session.execute(
            select(Inspector.name, Inspector.certificate_no, Inspector.org_code, func.count())
            .join(TeamMember, TeamMember.inspector_id == Inspector.id)
            .join(Inspection, Inspection.id == TeamMember.inspection_id)
            .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
            .outerjoin(JointCheck, JointCheck.inspection_id == Inspection.id)
            .where(in_year, TeamMember.active.is_(True), Inspector.org_code.in_(orgs))
            .group_by(Inspector.id, Inspector.name, Inspector.certificate_no, Inspector.org_code)
            .order_by(Inspector.org_code, Inspector.name)
        )
    ]
    return targets, people
