"""公示 (Art. 37): the checking unit's publishers and chiefs record a publication once, through
the callback; it stops the reminders and says whether it was on time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from storage.models import InspectionResult, Publication
from tests.conftest import Harness
from tests.factories import COUNTY2
from tests.results_support import audit_actions
from tests.support.draw_chat import ADMIN, TASK
from tests.support.reminders import PUBLISHER, UNIT_CHIEF, at, completed, reminder_keys, tick_at

URL = "https://sthjj.huhhot.gov.cn/gk/SSJ-2026-12?id=7&From=Bot"


async def publications(h: Harness) -> list[Publication]:
    async with h.db.transaction() as s:
        return list((await s.execute(select(Publication))).scalars())


async def test_art37_publication_is_recorded_once_with_its_deadline_and_stops_reminders(
    h: Harness,
) -> None:
    visits = await completed(h)
    h.clock.set(at(2026, 12, 22, 10))
    (ask,) = await h.say(PUBLISHER, f"公示 {TASK}")
    assert "网址" in ask and await publications(h) == []  # no address: nothing recorded
    (done,) = await h.say(PUBLISHER, f"公示 {TASK} {URL}")
    assert "2026-12-29" in done and "按期" in done and "公开 5 条" in done
    (row,) = await publications(h)
    assert (row.org_code, row.published_by, row.url) == ("150102", PUBLISHER, URL)  # as typed
    assert (row.deadline, row.on_time, row.results, row.withheld) == (
        dt.date(2026, 12, 29),
        True,
        5,
        0,
    )
    async with h.db.transaction() as s:
        stamped = (await s.execute(select(InspectionResult.published_at))).scalars().all()
    assert len(stamped) == len(visits) and all(t == row.published_at for t in stamped)
    assert "publication.record" in await audit_actions(h)
    # Once per (task, unit): a second 公示, by anyone of the unit, says when it was recorded.
    (again,) = await h.say(UNIT_CHIEF, f"公示 {TASK} https://example.org/other")
    assert "2026-12-22 10:30" in again and PUBLISHER in again
    assert len(await publications(h)) == 1
    # The reminders stop (deadline 12-29): no 1-day-before (12-28), no overdue mornings (12-30).
    assert await tick_at(h, at(2026, 12, 28, 9)) == 0
    assert await tick_at(h, at(2026, 12, 30, 9)) == 1  # only the city's Art. 43 table reminder
    assert await reminder_keys(h, "publication") == []


async def test_art37_a_late_publication_is_recorded_as_late(h: Harness) -> None:
    await completed(h)
    h.clock.set(at(2026, 12, 31, 16))  # the deadline was 12-29: 12-30 and 12-31 are over
    (done,) = await h.say(UNIT_CHIEF, f"公示 {TASK} {URL}")
    assert "逾期 2 个工作日" in done
    (row,) = await publications(h)
    assert row.on_time is False and row.deadline == dt.date(2026, 12, 29)


async def test_art37_only_the_checking_units_publishers_and_chiefs_record(h: Harness) -> None:
    await completed(h)
    await h.grant("pub2", "publisher", COUNTY2)  # another branch: not who checked
    (wrong_unit,) = await h.say("pub2", f"公示 {TASK} {URL}")
    assert "检查单位" in wrong_unit
    (admin,) = await h.say(ADMIN, f"公示 {TASK} {URL}")
    assert "仅限" in admin
    (not_url,) = await h.say(PUBLISHER, f"公示 {TASK} 门户网站")
    assert "网址" in not_url
    (no_task,) = await h.say(PUBLISHER, f"公示 T2026-150100-999 {URL}")
    assert "不存在" in no_task
    assert await publications(h) == []


async def test_art37_secret_results_are_withheld_and_an_all_secret_unit_is_never_nagged(
    h: Harness,
) -> None:
    visits = await completed(h)
    for v in visits:
        (marked,) = await h.say(ADMIN, f"保密 {v.number} 涉及国家安全")
        assert str(v.number) in marked
    assert await tick_at(h, at(2026, 12, 21, 9)) == 0
    assert await tick_at(h, at(2026, 12, 30, 9)) == 1  # the Art. 43 table reminder only
    assert await reminder_keys(h, "publication") == []
    h.clock.set(at(2026, 12, 30, 10))
    await h.say(PUBLISHER, f"公示 {TASK} {URL}")
    (row,) = await publications(h)
    assert (row.results, row.withheld) == (0, 5)
