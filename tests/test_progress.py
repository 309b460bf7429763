"""进度 (Art. 25, 37): coverage this quarter per tier and what is still needed, tasks with results
missing and tasks awaiting publication with their deadline; the region sees each league/city."""

from __future__ import annotations

from sqlalchemy import select

from inspection.quotas import Tier
from storage.models import Task
from storage.results import publication_due, work_calendar
from tests.conftest import Harness
from tests.quotas_support import tiers
from tests.results_support import ADMIN, TASK, click, drawn
from tests.support.draw_chat import ABOVE

REQUIRED = {Tier.special: 1, Tier.key: 2, Tier.general: 2}  # of 4, 8 and 20 targets
SIZES = {Tier.special: 4, Tier.key: 8, Tier.general: 20}
LABEL = {Tier.special: "特殊", Tier.key: "重点", Tier.general: "一般"}


async def progress(h: Harness, user: str) -> str:
    return "\n".join(await h.say(user, "进度"))


async def test_art25_art37_progress_shows_coverage_missing_results_and_publication(
    h: Harness,
) -> None:
    visits = await drawn(h)
    tier_of = await tiers(h, visits)
    first, rest = visits[:2], visits[2:]
    for v in first:
        await click(h, v.members[0], v, "no_problem")
    done = {t: sum(1 for v in first if tier_of[v.number] == t.value) for t in Tier}
    text = await progress(h, ADMIN)
    assert "2026年第4季度" in text
    for t in Tier:
        need = max(REQUIRED[t] - done[t], 0)
        line = next(ln for ln in text.splitlines() if ln.startswith(LABEL[t] + "："))
        assert f"{SIZES[t]}家" in line and f"已抽查{done[t]}家" in line
        assert f"至少{REQUIRED[t]}家" in line
        assert (f"还需{need}家" in line) if need else ("已达标" in line)
    assert f"{TASK}" in text and f"{len(rest)}项未录结果" in text
    assert "待公开" not in text

    # The region sees its leagues and cities side by side, 呼和浩特市 with its figures.
    above = await progress(h, ABOVE)
    city = next(ln for ln in above.splitlines() if ln.startswith("呼和浩特市"))
    for t in Tier:
        assert f"{LABEL[t]}{done[t]}/{REQUIRED[t]}" in city
    assert sum(1 for ln in above.splitlines() if "特殊" in ln and "/" in ln) == 12

    for v in rest:
        await click(h, v.members[0], v, "no_problem")
    final = await progress(h, ADMIN)
    assert "未录结果" not in final
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
    assert task.completed_at is not None
    on = task.completed_at.astimezone(h.settings.tz).date()
    due, _ = publication_due(task, on, work_calendar())
    assert due is not None
    assert "待公开结果的任务（1个" in final and f"最迟{due.isoformat()}公开" in final
    assert all(f"已抽查{REQUIRED[t]}家" in final for t in Tier) and "还需" not in final


async def test_art25_progress_is_for_admins_and_chiefs_only(h: Harness) -> None:
    await drawn(h)
    (reply,) = await h.say("cu1501020", "进度")
    assert "季度" not in reply and "管理员" in reply
