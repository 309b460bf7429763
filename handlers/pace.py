"""Pace warnings (Art. 25): a league/city whose tier is behind its quarterly minimum hears it
in time, once per occasion: the chief gets the number of targets still needed, the admin a
ready-made 新建任务 line that would close the gap."""

from __future__ import annotations

import datetime as dt

from bot.chat.context import Context
from handlers.common import send
from inspection.quotas import (
    TIER_LABELS,
    PaceOccasion,
    QuarterCoverage,
    Tier,
    TierCoverage,
    counts_to_draw,
    pace_occasion,
)
from storage import quotas
from storage.repos import OrgNode

OCCASION_TEXT = {
    PaceOccasion.behind: "本季度已过三分之二，完成不足最低要求的三分之二",
    PaceOccasion.final: "距季度末不足10个工作日，仍未达到最低要求",
}


def task_line(
    city: OrgNode, quarter: quotas.Quarter, today: dt.date, counts: dict[Tier, int]
) -> str:
    """A 新建任务 line (inspection.taskspec syntax) drawing exactly ``counts`` per tier."""
    tiers = " ".join(f"{TIER_LABELS[t]}={n}" for t, n in counts.items())
    return (
        f"新建任务 {quarter.year}年{quarter.quarter}季度比例补抽 范围={city.code} {tiers} "
        f"检查期={today.isoformat()}~{quarter.last.isoformat()}"
    )


def shortfall_text(
    city: OrgNode, quarter: quotas.Quarter, rows: list[tuple[TierCoverage, PaceOccasion]]
) -> str:
    lines = [f"【抽查比例提醒】{city.name}{quarter.label}（第25条）："]
    for t, occasion in rows:
        lines.append(
            f"{TIER_LABELS[t.tier]}监管对象{t.size}家，已抽查{t.done}家，至少须{t.required}家，"
            f"还需{t.shortfall}家（{OCCASION_TEXT[occasion]}）。"
        )
    return "\n".join(lines)


async def warn_on_pace(
    ctx: Context, city: OrgNode, quarter: quotas.Quarter, final_from: dt.date | None
) -> int:
    """Art. 25: each tier of ``city`` behind its minimum is warned about once per occasion;
    returns how many warnings were sent."""
    today = ctx.now().astimezone(ctx.settings.tz).date()
    orgs = await ctx.repos.orgs.subtree(city.code)
    cov: QuarterCoverage = await quotas.coverage(ctx.session, orgs, quarter)
    already = await quotas.warned(ctx.session, city.code, quarter)
    rows = []
    for t in cov.tiers:
        occasion = pace_occasion(quarter.first, quarter.last, today, final_from, t)
        if occasion is None or (t.tier.value, occasion.value) in already:
            continue
        if await quotas.claim_warning(ctx.session, city.code, quarter, t, occasion, ctx.now()):
            rows.append((t, occasion))
    if not rows:
        return 0
    text = shortfall_text(city, quarter, rows)
    send(ctx, await ctx.repos.roles.holders("chief", [city.code]), text)
    available = await quotas.available_for_draw(ctx.session, orgs, quarter.year, city.code)
    behind = QuarterCoverage(tuple(t for t, _ in rows))
    counts = counts_to_draw(behind, available)
    if counts:
        short = sum(t.shortfall for t, _ in rows) - sum(counts.values())
        pool = f"\n抽查范围内可抽对象不足，按现有可抽数量计（差{short}家）。" if short else ""
        admin_text = (
            f"{text}\n可发送以下指令新建补抽任务（已排除本年度已被随机抽查的市场主体，"
            f"特殊监管对象除外，第25条）：{pool}\n" + task_line(city, quarter, today, counts)
        )
    else:
        admin_text = (
            f"{text}\n抽查范围内已无可抽对象（本年度已被随机抽查的市场主体不再抽取，第25条）。"
        )
    send(ctx, await ctx.repos.roles.holders("admin", [city.code]), admin_text)
    await ctx.audit(
        action="quota.pace_warning",
        subject=f"org:{city.code}",
        payload={
            "quarter": f"{quarter.year}Q{quarter.quarter}",
            "tiers": {t.tier.value: occasion.value for t, occasion in rows},
            "draw": {t.value: n for t, n in counts.items()},
        },
    )
    return len(rows)
