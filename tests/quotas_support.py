"""Shared set-up for the quota tests: the draw chat's task drawn, and the tier of each visit."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Inspection
from tests.conftest import Harness
from tests.results_support import Visit


async def tiers(h: Harness, visits: list[Visit]) -> dict[int, str]:
    """Inspection number -> its target's tier."""
    async with h.db.transaction() as s:
        rows = await s.execute(
            select(Inspection.number, Inspection.tier).where(
                Inspection.number.in_([v.number for v in visits])
            )
        )
        return {n: t for n, t in rows.all()}


async def target_key(h: Harness, visit: Visit) -> str:
    async with h.db.transaction() as s:
        inspection = await s.get(Inspection, visit.inspection_id)
        assert inspection is not None
        return inspection.target_key
