"""The statistics table's publication columns (Art. 37, 43), end to end through the callback:
counted by result, for the checking unit that must publish it ("who checks, enters and
publishes"), each result against its own due day."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
from sqlalchemy import select

from storage.models import Inspector, TeamMember
from tests.conftest import Harness
from tests.factories import COUNTY, COUNTY2, add_inspectors
from tests.results_support import Visit, visits
from tests.support.draw_chat import ADMIN, TASK, setup
from tests.support.reminders import CST, at

PUBLISHERS = {COUNTY: "pubA", COUNTY2: "pubB"}
COLUMNS = ("按时公开结果数", "逾期公开结果数", "到期未公开结果数（季末）")


async def lead_units(h: Harness, drawn: list[Visit]) -> dict[str, list[Visit]]:
    """The checking unit of each visit: its lead's organisation (Art. 37)."""
    async with h.db.transaction() as s:
        unit = dict(
            (
                await s.execute(
                    select(TeamMember.inspection_id, Inspector.org_code)
                    .join(Inspector, Inspector.id == TeamMember.inspector_id)
                    .where(TeamMember.position == 0, TeamMember.active.is_(True))
                )
            ).all()
        )
    out: dict[str, list[Visit]] = {}
    for v in drawn:
        out.setdefault(unit[v.inspection_id], []).append(v)
    return out


async def table(h: Harness, quarter: str) -> dict[str, dict[str, object]]:
    """统计 in chat, the file it sends read back: unit code -> the publication columns."""
    h.wecom.media.clear()
    await h.say(ADMIN, f"统计 {quarter}")
    (xlsx,) = [m for m in h.wecom.media.values() if m.filename.endswith(".xlsx")]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    headers = [c.value for c in sheet[2]]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0]}
    return {
        code: {name: row[headers.index(name)] for name in COLUMNS} for code, row in rows.items()
    }


async def test_art37_art43_each_checking_units_results_count_on_time_late_or_outstanding(
    h: Harness,
) -> None:
    """A city task checked by two county units. 新城区 publishes on time, then publishes a
    result recorded after that by a supplement 公示 past that result's own due day (late);
    回民区 never publishes: its results are outstanding once due. Q4 2026, before anything is
    due, counts nothing; Q1 2027 counts each result once, in its unit's row."""
    await setup(h)
    async with h.db.transaction() as s:
        await add_inspectors(s, 6, org=COUNTY2, prefix="Q")
    for org, user in PUBLISHERS.items():
        await h.grant(user, "publisher", org)
    await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    h.clock.advance(days=1)  # the check period, 2026-12-01 to 12-31
    units = await lead_units(h, await visits(h))
    assert set(units) == {COUNTY, COUNTY2}, units  # two checking units
    *in_time, recorded_late = units[COUNTY]
    for v in [*in_time, *units[COUNTY2]]:
        await h.say(v.members[0], f"结果 {v.number} 1")
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=CST))  # the period ends: clock starts
    assert await h.runtime.due.tick() == 1
    await h.settle()
    # Due 20 working days after the clock start (2027-01-28, weekends alone: 2027's schedule
    # is not loaded); nothing was due in Q4 2026, though the task was complete in it.
    q4 = await table(h, "2026Q4")
    assert all(v == 0 for code in (COUNTY, COUNTY2) for v in q4[code].values()), q4
    h.clock.set(at(2027, 1, 4, 9))
    (first,) = await h.say(PUBLISHERS[COUNTY], f"公示 {TASK} https://portal.example/a")
    assert "按期" in first and f"公开 {len(in_time)} 条" in first, first
    h.clock.set(at(2027, 1, 5, 10))  # recorded after the unit published: due 2027-02-02
    await h.say(recorded_late.members[0], f"结果 {recorded_late.number} 1")
    h.clock.set(at(2027, 2, 3, 10))  # one working day past that result's own due day
    (supplement,) = await h.say(PUBLISHERS[COUNTY], f"公示 {TASK} https://portal.example/b")
    assert "补充公开" in supplement and "1 条" in supplement, supplement
    q1 = await table(h, "2027Q1")
    on_time, late, outstanding = COLUMNS
    assert q1[COUNTY] == {on_time: len(in_time), late: 1, outstanding: 0}, q1
    assert q1[COUNTY2] == {on_time: 0, late: 0, outstanding: len(units[COUNTY2])}, q1
    assert q1["150100"] == {on_time: 0, late: 0, outstanding: 0}, q1  # the city checked none
