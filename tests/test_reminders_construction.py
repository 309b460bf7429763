"""Art. 25(4): chiefs are told once when a key construction project approved by the Ministry or
the region is within 60 days of its one-year mark after going into operation, unchecked."""

from __future__ import annotations

import datetime as dt

from inspection.reminders import construction_occasion, one_year_mark
from tests.conftest import Harness
from tests.factories import add_targets
from tests.support.draw_chat import CHIEF
from tests.support.reminders import at, reminder_keys, tick_at


def test_art25_one_year_mark_and_the_60_day_window() -> None:
    assert one_year_mark(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)
    op = dt.date(2026, 2, 10)
    assert construction_occasion(op, dt.date(2026, 12, 11)) is None  # 61 days before
    assert construction_occasion(op, dt.date(2026, 12, 12)) == "mark:2027-02-10"
    assert construction_occasion(op, dt.date(2027, 2, 11)) is None  # the mark has passed


async def test_art25_chiefs_are_told_once_of_an_unchecked_key_project_near_its_mark(
    h: Harness,
) -> None:
    await h.grant(CHIEF, "chief", "150100")
    async with h.db.transaction() as s:
        (key,) = await add_targets(
            s,
            1,
            tier="key",
            start=900,
            approval_level="region",
            construction_started_on=dt.date(2025, 3, 1),
            operation_started_on=dt.date(2026, 2, 10),
        )
        await add_targets(  # approved by the city: not a key project of Art. 25(4)
            s,
            1,
            tier="key",
            start=901,
            approval_level="city",
            construction_started_on=dt.date(2025, 3, 1),
            operation_started_on=dt.date(2026, 2, 10),
        )
    await tick_at(h, at(2026, 12, 11, 10))
    assert await reminder_keys(h, "construction") == []
    await tick_at(h, at(2026, 12, 14, 10))
    await tick_at(h, at(2026, 12, 15, 10))
    assert await reminder_keys(h, "construction") == [(key, "mark:2027-02-10")]
    (told,) = [t for t in h.wecom.texts_to(CHIEF) if "建设项目全覆盖" in t]
    assert key in told and "2027-02-10" in told
