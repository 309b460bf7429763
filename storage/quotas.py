"""Quarterly coverage per league/city (Art. 25): the directory as it stood at the quarter's
start and the targets randomly checked in the quarter, read from the database; the arithmetic
is ``inspection.quotas``.

"Targets at the quarter's start": each target's tier and status are rewound to the quarter's
start through ``DirectoryHistory`` (every tier or status change keeps the value it replaced).
The directory keeps no creation date, so a target added during the quarter counts from the
quarter's start: the denominator can only be too large, never too small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.deadlines import quarter_bounds
from inspection.origins import QUOTA_ORIGINS
from inspection.quotas import (
    Change,
    DirectoryEntry,
    PaceOccasion,
    QuarterCoverage,
    Tier,
    TierCoverage,
    coverage_of,
    value_at,
)
from storage import checks_this_year
from storage.db import insert_for
from storage.facts import check_time
from storage.models import (
    DirectoryHistory,
    Inspection,
    InspectionResult,
    JointCheck,
    PaceWarning,
    Publication,
    Target,
    Task,
)
from storage.publication import lead_units
from storage.repos import Repositories
from storage.results import LIVE, RECORDED
from storage.tasks import chunks, rule_params

# Inspections that are random checks (Art. 6, 25): our draws at every level (Art. 30 re-checks
# and internal joint tasks included), inter-agency joint checks (Art. 6, 7) and the
# construction part of a draw (Art. 25(4)).
RANDOM_ORIGINS = QUOTA_ORIGINS  # inspection.origins: one definition


@dataclass(frozen=True)
class Quarter:
    year: int
    quarter: int
    first: dt.date
    last: dt.date
    start: dt.datetime  # local midnight of ``first``, aware
    end: dt.datetime  # local midnight after ``last``, aware

    @classmethod
    def of(cls, year: int, quarter: int, tz: ZoneInfo) -> Quarter:
        first, last = quarter_bounds(year, quarter)
        start = dt.datetime.combine(first, dt.time(), tz)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
        return cls(year, quarter, first, last, start, end)

    @classmethod
    def containing(cls, at: dt.datetime, tz: ZoneInfo) -> Quarter:
        d = at.astimezone(tz).date()
        return cls.of(d.year, (d.month - 1) // 3 + 1, tz)

    @property
    def label(self) -> str:
        return f"{self.year}年第{self.quarter}季度"


def random_checks(quarter: Quarter) -> Select[Any]:
    """Keys of targets with a random check made in the quarter and its result recorded (the
    check's time is ``facts.check_time``: the result's recording, or an inter-agency joint
    check's own date, Art. 6, 7); drawn but not reported does not count."""
    made = check_time()
    return (
        select(Inspection.target_key)
        .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .outerjoin(JointCheck, JointCheck.inspection_id == Inspection.id)
        .where(
            Inspection.origin.in_(RANDOM_ORIGINS),
            Inspection.status.in_(LIVE),
            InspectionResult.state == RECORDED,
            InspectionResult.at >= quarter.start,  # the index's range: no check is recorded early
            made >= quarter.start,
            made < quarter.end,
        )
        .distinct()
    )


async def directory_at_start(
    session: AsyncSession, org_codes: Sequence[str], quarter: Quarter
) -> list[DirectoryEntry]:
    """The targets of these organisations with their tier and status at the quarter's start."""
    targets = (
        await session.execute(
            select(Target.key, Target.tier, Target.status).where(Target.org_code.in_(org_codes))
        )
    ).all()
    changes: dict[tuple[str, str], list[Change]] = {}
    keys = [key for key, _, _ in targets]
    for part in chunks(keys):
        rows = await session.execute(
            select(
                DirectoryHistory.subject_key,
                DirectoryHistory.field,
                DirectoryHistory.at,
                DirectoryHistory.before,
            ).where(
                DirectoryHistory.kind == "target",
                DirectoryHistory.field.in_(("tier", "status")),
                DirectoryHistory.at >= quarter.start,
                DirectoryHistory.subject_key.in_(part),
            )
        )
        for key, field, at, before in rows:
            changes.setdefault((key, field), []).append(Change(at, before))
    return [
        DirectoryEntry(
            key,
            str(value_at(tier, changes.get((key, "tier"), ()), quarter.start)),
            str(value_at(status, changes.get((key, "status"), ()), quarter.start)),
        )
        for key, tier, status in targets
    ]


async def checked_keys(
    session: AsyncSession, org_codes: Sequence[str], quarter: Quarter
) -> set[str]:
    """Targets of these organisations randomly checked in the quarter, whoever drew them."""
    checks = random_checks(quarter).subquery()
    rows = await session.execute(
        select(Target.key)
        .join(checks, checks.c.target_key == Target.key)
        .where(Target.org_code.in_(org_codes))
    )
    return set(rows.scalars())


async def coverage(
    session: AsyncSession, org_codes: Sequence[str], quarter: Quarter
) -> QuarterCoverage:
    """Art. 25 coverage of one league/city (``org_codes``: its subtree) in a quarter, against the
    minimums in force on the quarter's first day."""
    directory = await directory_at_start(session, org_codes, quarter)
    checked = await checked_keys(session, org_codes, quarter)
    return coverage_of(directory, checked, rule_params(quarter.first).ratios())


# --- what a unit still owes this quarter (进度) --------------------------------------------


@dataclass(frozen=True)
class OpenTask:
    """A task drawn by one of the organisations, with inspections still without a result."""

    code: str
    name: str
    check_end: dt.date
    missing: int


async def tasks_missing_results(session: AsyncSession, org_codes: Sequence[str]) -> list[OpenTask]:
    """Open tasks of these organisations, and of the levels above where these organisations
    check (a branch's inspections of its city's task, Art. 5): inspections without a result,
    all of a task's own, only those it checks of another's."""
    lead = lead_units()
    ours = or_(Task.org_code.in_(org_codes), lead.c.org_code.in_(org_codes))
    rows = await session.execute(
        select(Task.code, Task.name, Task.check_end, func.count())
        .join(Inspection, Inspection.task_id == Task.id)
        .outerjoin(lead, lead.c.inspection_id == Inspection.id)
        .where(
            ours,
            Task.completed_at.is_(None),
            Inspection.status.in_(LIVE),
            Inspection.result_code.is_(None),
        )
        .group_by(Task.id, Task.code, Task.name, Task.check_end)
        .order_by(Task.check_end, Task.code)
    )
    return [OpenTask(code, name, end, n) for code, name, end, n in rows.all()]


async def tasks_awaiting_publication(session: AsyncSession, org_codes: Sequence[str]) -> list[Task]:
    """Completed tasks whose results are still to be published (Art. 37): tasks of these
    organisations that no checking unit has published yet, and tasks of others where one of
    these organisations checked and has not published its part (who checks, publishes)."""
    published = select(Publication.id).where(Publication.task_id == Task.id).exists()
    lead = lead_units()
    checked_here = (
        select(Inspection.id)
        .join(lead, lead.c.inspection_id == Inspection.id)
        .where(
            Inspection.task_id == Task.id,
            Inspection.status.in_(LIVE),
            lead.c.org_code.in_(org_codes),
            ~select(Publication.id)
            .where(Publication.task_id == Task.id, Publication.org_code == lead.c.org_code)
            .exists(),
        )
        .exists()
    )
    rows = await session.execute(
        select(Task)
        .where(
            Task.completed_at.is_not(None),
            or_(and_(Task.org_code.in_(org_codes), ~published), checked_here),
        )
        .order_by(Task.completed_at, Task.code)
    )
    return list(rows.scalars())


# --- pace warnings (Art. 25) ------------------------------------------------------------------


async def available_for_draw(
    session: AsyncSession, org_codes: Sequence[str], year: int, org_code: str
) -> dict[Tier, int]:
    """Per tier, the targets a new draw by ``org_code`` (over ``org_codes``) could still pick
    with a task's default options: not deregistered, and not of a market entity randomly
    checked this year by anyone (Art. 25, once a year), the special sub-directory excepted.
    The exclusion is the draw pool's own (``storage.checks_this_year``)."""
    rows = await session.execute(
        select(Target.tier, func.count())
        .where(Target.org_code.in_(org_codes), Target.status != "deregistered")
        .group_by(Target.tier)
    )
    out = {Tier(tier): n for tier, n in rows.all() if tier in Tier.__members__}
    checked = await checks_this_year.checked_in_year(session, Repositories(session), org_code, year)
    # PoolRules' defaults: special_more_often (Art. 25), no re-check of the levels below (Art. 30).
    for part in chunks(sorted(checked)):
        taken = await session.execute(
            select(Target.tier, func.count())
            .where(
                Target.key.in_(part),
                Target.org_code.in_(org_codes),
                Target.status != "deregistered",
                Target.tier != Tier.special.value,
            )
            .group_by(Target.tier)
        )
        for tier, n in taken.all():
            if tier in Tier.__members__:
                out[Tier(tier)] = max(out.get(Tier(tier), 0) - n, 0)
    return out


async def warned(session: AsyncSession, org_code: str, quarter: Quarter) -> set[tuple[str, str]]:
    """(tier, occasion) pairs already warned about for this organisation and quarter."""
    rows = await session.execute(
        select(PaceWarning.tier, PaceWarning.occasion).where(
            PaceWarning.org_code == org_code,
            PaceWarning.year == quarter.year,
            PaceWarning.quarter == quarter.quarter,
        )
    )
    return {(tier, occasion) for tier, occasion in rows.all()}


async def claim_warning(
    session: AsyncSession,
    org_code: str,
    quarter: Quarter,
    tier: TierCoverage,
    occasion: PaceOccasion,
    now: dt.datetime,
) -> bool:
    """Record the warning; False when it was recorded already (by this or another instance)."""
    insert = insert_for(session)
    stmt = (
        insert(PaceWarning)
        .values(
            org_code=org_code,
            tier=tier.tier.value,
            year=quarter.year,
            quarter=quarter.quarter,
            occasion=occasion.value,
            required=tier.required,
            done=tier.done,
            sent_at=now,
        )
        .on_conflict_do_nothing()
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
