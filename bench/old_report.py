"""The statistics table's figures as they were read before ``check_fact`` (migration 0008):
every random check of the period joined to its inspection and target at read time. Kept for
``bench_reports.py`` only, as the baseline the facts are measured against (and compared with:
both must give the same figures)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.quotas import Tier
from inspection.report import Figures
from storage.models import (
    CheckOutsideDraw,
    Inspection,
    InspectionResult,
    Publication,
    Target,
    Task,
    TeamMember,
)
from storage.report import COUNTED, RANDOM_ORIGINS, _utc, outside_and_draws, publications


async def old_figures_by_org(
    session: AsyncSession, start: dt.date, end: dt.date, tz: dt.tzinfo
) -> dict[str, Figures]:
    """Every organisation's own figures for [start, end) in local dates, keyed by org code."""
    since, until = _utc(start, tz), _utc(end, tz)
    out: dict[str, Figures] = defaultdict(Figures)

    for org, tier, n in await session.execute(
        select(Target.org_code, Target.tier, func.count())
        .where(Target.status != "deregistered")
        .group_by(Target.org_code, Target.tier)
    ):
        if tier in Tier.__members__:
            out[org].targets[Tier(tier)] += n

    # ``|| ''`` on the inspection's columns: the period's results are found through the index
    # on their time, and each one's inspection by its key (the status index would read every
    # inspection ever made).
    recorded = and_(
        InspectionResult.state == "recorded",
        InspectionResult.at >= since,
        InspectionResult.at < until,
        (Inspection.origin + "").in_(RANDOM_ORIGINS),
        (Inspection.status + "").in_(COUNTED),
        ~select(CheckOutsideDraw.inspection_id)
        .where(CheckOutsideDraw.inspection_id == Inspection.id)
        .exists(),
    )
    # One pass over the period's random checks, summed here (the quarter's results through
    # the index on their time; grouping several ways in SQL would read them several times).
    checked: dict[tuple[str, str], set[int]] = defaultdict(set)
    rows = await session.execute(
        select(
            Target.org_code,
            Inspection.tier,
            Inspection.target_id,
            InspectionResult.code,
            InspectionResult.case_filing,
        )
        .select_from(InspectionResult)
        .join(Inspection, Inspection.id == InspectionResult.inspection_id)
        .join(Target, Target.id == Inspection.target_id)
        .where(recorded)
    )
    for org, tier, target_id, code, filing in rows.all():
        f = out[org]
        f.by_result[code] = f.by_result.get(code, 0) + 1
        f.cases_filed += code == "case_filed" or bool(filing)
        f.handovers += code == "transferred"
        checked[org, tier].add(target_id)
    for (org, tier), ids in checked.items():
        if tier in Tier.__members__:
            out[org].checked[Tier(tier)] += len(ids)
    people = (
        select(Target.org_code, func.count(distinct(TeamMember.inspector_id)))
        .select_from(InspectionResult)
        .join(Inspection, Inspection.id == InspectionResult.inspection_id)
        .join(Target, Target.id == Inspection.target_id)
        .join(TeamMember, TeamMember.inspection_id == Inspection.id)
        .where(recorded, TeamMember.active.is_(True), TeamMember.auxiliary.is_(False))
        .group_by(Target.org_code)
    )
    for org, n in await session.execute(people):
        out[org].inspectors += n

    await outside_and_draws(session, out, since, until)
    await publications(session, out, end, since, until, tz)
    return out


async def old_publication_columns(
    session: AsyncSession, out: dict[str, Figures], since: dt.datetime, until: dt.datetime
) -> None:
    """The publication columns as counted before migration 0011 (per task's organisation and
    first publication; wrong, see ``storage.report.publications``): the timing baseline."""
    for org, on_time, n in await session.execute(
        select(Publication.org_code, Publication.on_time, func.count())
        .where(Publication.published_at >= since, Publication.published_at < until)
        .group_by(Publication.org_code, Publication.on_time)
    ):
        if on_time is False:
            out[org].published_late += n
        else:
            out[org].published_on_time += n
    published = select(Publication.task_id).where(Publication.published_at < until)
    for org, n in await session.execute(
        select(Task.org_code, func.count())
        .where(
            Task.completed_at.is_not(None),
            Task.completed_at < until,
            Task.id.not_in(published),
            Task.status != "targeted",
        )
        .group_by(Task.org_code)
    ):
        out[org].publication_outstanding += n
