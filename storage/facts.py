"""The random checks as the statistics table counts them (Art. 17, 25, 29, 43): ``check_fact``
and ``check_fact_member``, derived from the record and rewritten by ``refresh`` in the same
transaction as each change that moves a figure:

* a result recorded or corrected (``storage.results``), merged visits included;
* a team member swapped (``storage.draws.amendments``);
* a target moved to another unit in the directory (checks count where the target is).

Nothing else moves them today: a re-draw cancels inspections only while none has a result
(``redraw_has_results``), and a check outside the draw (Art. 6) is registered with a new
inspection, before any result. Every end-to-end test ends by comparing the rows kept with a
rebuild (``tests/support/facts.py``), so a new write path that forgets them fails its test.

``refresh`` computes the rows from the raw record with the same conditions as the report used
to apply to every row at read time (recorded, an origin that counts, not cancelled, not outside
the draw), dated by ``check_time`` (an inter-agency joint check by the lead authority's check
date), so a rebuild from nothing (``refresh(session)``, the migration's backfill and the
generated record of the benches) and the rows kept up to date give the same table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.origins import QUOTA_ORIGINS
from storage.models import (
    CheckFact,
    CheckFactMember,
    CheckOutsideDraw,
    Inspection,
    InspectionResult,
    JointCheck,
    Target,
    TeamMember,
)

COUNTED = ("open", "done", "merged")  # a cancelled inspection's result does not count
CHUNK = 500  # inspection ids per statement (bound parameters stay well under every limit)


def check_time() -> ColumnElement[Any]:
    """When a random check was made, as every count dates it: an inter-agency joint check's
    check date (the lead authority's, Art. 6, 7), else its result's recording time. Needs
    ``JointCheck`` outer-joined on the inspection. Never on a later day than the recording (a
    joint check is registered on or after its date, its result after that), so the checks of a
    period of whole days are among the results recorded from the period's first day on."""
    return func.coalesce(JointCheck.checked_at, InspectionResult.at)


def checks(ids: list[int] | None = None) -> Select[*tuple[Any, ...]]:
    """The facts of these inspections (all when None), from the raw rows."""
    stmt = (
        select(
            InspectionResult.inspection_id,
            check_time(),
            Target.org_code,
            Inspection.target_id,
            Inspection.tier,
            InspectionResult.code,
            InspectionResult.case_filing,
        )
        .select_from(InspectionResult)
        .join(Inspection, Inspection.id == InspectionResult.inspection_id)
        .join(Target, Target.id == Inspection.target_id)
        .outerjoin(JointCheck, JointCheck.inspection_id == Inspection.id)
        .where(
            InspectionResult.state == "recorded",
            Inspection.origin.in_(QUOTA_ORIGINS),
            Inspection.status.in_(COUNTED),
            ~select(CheckOutsideDraw.inspection_id)
            .where(CheckOutsideDraw.inspection_id == Inspection.id)
            .exists(),
        )
    )
    return stmt if ids is None else stmt.where(InspectionResult.inspection_id.in_(ids))


def members(ids: list[int] | None = None) -> Select[*tuple[Any, ...]]:
    stmt = (
        select(CheckFact.inspection_id, TeamMember.inspector_id, CheckFact.at, CheckFact.org_code)
        .join(TeamMember, TeamMember.inspection_id == CheckFact.inspection_id)
        .where(TeamMember.active.is_(True), TeamMember.auxiliary.is_(False))
        .distinct()
    )
    return stmt if ids is None else stmt.where(CheckFact.inspection_id.in_(ids))


FACT_COLUMNS = ("inspection_id", "at", "org_code", "target_id", "tier", "code", "case_filing")
MEMBER_COLUMNS = ("inspection_id", "inspector_id", "at", "org_code")


async def refresh(session: AsyncSession, inspection_ids: Iterable[int] | None = None) -> None:
    """Rewrite the facts of these inspections from the record (every inspection when None).
    Call it in the transaction of the change, after the change is flushed."""
    await session.flush()
    if inspection_ids is None:
        await session.execute(delete(CheckFactMember))
        await session.execute(delete(CheckFact))
        await session.execute(insert(CheckFact).from_select(FACT_COLUMNS, checks()))
        await session.execute(insert(CheckFactMember).from_select(MEMBER_COLUMNS, members()))
        return
    ids = sorted(set(inspection_ids))
    for i in range(0, len(ids), CHUNK):
        part = ids[i : i + CHUNK]
        await session.execute(
            delete(CheckFactMember).where(CheckFactMember.inspection_id.in_(part))
        )
        await session.execute(delete(CheckFact).where(CheckFact.inspection_id.in_(part)))
        await session.execute(insert(CheckFact).from_select(FACT_COLUMNS, checks(part)))
        await session.execute(insert(CheckFactMember).from_select(MEMBER_COLUMNS, members(part)))


async def refresh_targets(session: AsyncSession, target_ids: Iterable[int]) -> None:
    """Targets moved to another unit: their checks' facts follow them."""
    ids = sorted(set(target_ids))
    for i in range(0, len(ids), CHUNK):
        inspections = await session.scalars(
            select(CheckFact.inspection_id).where(CheckFact.target_id.in_(ids[i : i + CHUNK]))
        )
        await refresh(session, list(inspections))
