"""进度: where a unit stands this quarter (Art. 25, 37): coverage per tier against the minimums
in force and how many targets are still needed, tasks with results missing, and completed
tasks awaiting publication with their deadlines. The level above sees its units side by side
(Art. 41)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from bot.chat.context import Context, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import MANAGERS, load_task, manager_role, send
from inspection.quotas import TIER_LABELS, QuarterCoverage, Tier
from storage import publication as publication_store
from storage import quotas
from storage import results as result_store
from storage import swaps as swap_store
from storage.repos import OrgNode

router = Router("progress")


def tier_line(cov: QuarterCoverage, tier: Tier) -> str:
    t = cov[tier]
    need = f"还需{t.shortfall}家" if t.shortfall else "已达标"
    return (
        f"{TIER_LABELS[tier]}：{t.size}家，已抽查{t.done}家，"
        f"至少{t.required}家（{float(t.ratio):.0%}），{need}"
    )


def unit_line(name: str, cov: QuarterCoverage) -> str:
    """One unit's tiers on one line, for the level above."""
    parts = [
        f"{TIER_LABELS[t.tier]}{t.done}/{t.required}"
        + (f"（差{t.shortfall}）" if t.shortfall else "✓")
        for t in cov.tiers
    ]
    return f"{name}：" + " · ".join(parts)


async def roots(ctx: Context) -> list[OrgNode]:
    """The actor's organisations as admin or chief, each once, none inside another."""
    codes = list(dict.fromkeys(c for role in MANAGERS for c in ctx.actor.orgs_for(role)))
    kept = [c for c in codes if not await ctx.repos.orgs.covers([o for o in codes if o != c], c)]
    nodes = [await ctx.repos.orgs.get(c) for c in sorted(kept)]
    return [n for n in nodes if n is not None]


async def coverage_lines(ctx: Context, root: OrgNode, quarter: quotas.Quarter) -> list[str]:
    tree = await ctx.repos.orgs.tree()
    units = sorted(
        (n for n in tree.values() if n.parent_code == root.code and n.level == "city"),
        key=lambda n: n.code,
    )
    if root.level == "region" and units:
        lines = [f"{root.name}各盟市（抽查数/最低要求）："]
        for unit in units:
            orgs = await ctx.repos.orgs.subtree(unit.code)
            lines.append(unit_line(unit.name, await quotas.coverage(ctx.session, orgs, quarter)))
        return lines
    orgs = await ctx.repos.orgs.subtree(root.code)
    cov = await quotas.coverage(ctx.session, orgs, quarter)
    return [f"{root.name}（含所辖旗县区）：", *(tier_line(cov, t) for t in Tier)]


async def task_lines(ctx: Context, orgs: list[str]) -> list[str]:
    lines = []
    missing = await quotas.tasks_missing_results(ctx.session, orgs)
    if missing:
        lines.append(f"待录入结果的任务（{len(missing)}个）：")
        lines += [
            f"  {t.code}「{t.name}」{t.missing}项未录结果，检查期至{t.check_end.isoformat()}"
            for t in missing
        ]
    waiting = await quotas.tasks_awaiting_publication(ctx.session, orgs)
    if waiting:
        calendar = result_store.work_calendar(
            tuple(ctx.settings.calendar.holidays), tuple(ctx.settings.calendar.makeup_workdays)
        )
        lines.append(f"待公开结果的任务（{len(waiting)}个，第37条）：")
        firsts = await first_unpublished(ctx, [t.id for t in waiting])
        for task in waiting:
            assert task.completed_at is not None
            on = task.completed_at.astimezone(ctx.settings.tz).date()
            due, unknown_year = result_store.publication_due(task, on, calendar, firsts[task.id])
            when = f"最迟{due.isoformat()}公开" if due else f"{unknown_year}年节假日未载入"
            lines.append(f"  {task.code}「{task.name}」完成于{on.isoformat()}，{when}")
    return lines or ["没有待录入结果或待公开的任务。"]


async def first_unpublished(ctx: Context, task_ids: list[int]) -> dict[int, list[dt.date]]:
    """Per task: the day its earliest unpublished result was recorded, in a list (empty when
    none): with the task's clock start it gives the first publication due (Art. 37)."""
    out: dict[int, list[dt.date]] = {t: [] for t in task_ids}
    for r in await publication_store.unit_results(ctx.session, task_ids):
        if r.first_unpublished_at is not None:
            day = r.first_unpublished_at.astimezone(ctx.settings.tz).date()
            out[r.task_id] = [min([day, *out[r.task_id]])]
    return out


@router.command(
    "进度",
    "抽查进度",
    roles=MANAGERS,
    usage="进度",
    summary="本季度各类监管对象抽查比例进度，待录结果和待公开的任务（第25、37条）",
)
async def progress(msg: TextCommand, ctx: Context) -> None:
    """Art. 25: quarterly coverage per tier and what is still needed; Art. 37: tasks awaiting
    results or publication, with their deadlines."""
    quarter = quotas.Quarter.containing(ctx.now(), ctx.settings.tz)
    lines = [f"{quarter.label}抽查进度（{quarter.first.isoformat()}至{quarter.last.isoformat()}）"]
    orgs: list[str] = []
    for root in await roots(ctx):
        lines += await coverage_lines(ctx, root, quarter)
        orgs += await ctx.repos.orgs.subtree(root.code)
    lines += await task_lines(ctx, sorted(set(orgs)))
    send(ctx, [], "\n".join(lines), reply=True)


def days_left(ctx: Context, start: dt.date, end: dt.date) -> str:
    today = ctx.now().astimezone(ctx.settings.tz).date()
    if today < start:
        return f"检查期尚未开始（{start.isoformat()} 起，距今{(start - today).days}天）"
    if today > end:
        return f"检查期已于 {end.isoformat()} 结束（{(today - end).days}天前）"
    return f"检查期剩{(end - today).days}天（至 {end.isoformat()}）"


@router.command(
    "任务进度",
    roles=MANAGERS,
    usage="任务进度 <任务代码>",
    summary="一个任务的结果进度：已有结果/总数、谁还没有报告、剩余天数（第37、40条）",
)
async def task_progress(msg: TextCommand, ctx: Context) -> None:
    """Art. 37, 40: a task's inspections with results against the total, who has still to
    report which, and the days left in the check period."""
    task = await load_task(ctx, msg.text, "任务进度")
    if await manager_role(ctx, task) is None:
        org = await ctx.repos.orgs.name(task.org_code)
        raise UserError(
            f"任务 {task.code} 由{org}抽取，仅限其抽取部门及上级的管理员、部门负责人查看。"
        )
    total, done = await result_store.task_tally(ctx.session, task.id)
    lines = [f"任务 {task.code}「{task.name}」", days_left(ctx, task.check_start, task.check_end)]
    if not total:
        lines.append("尚未抽取，没有检查。")
        send(ctx, [], "\n".join(lines), reply=True)
        return
    lines.append(f"已有结果 {done}/{total} 项（{done / total:.0%}）")
    if task.completed_at is not None:
        on = task.completed_at.astimezone(ctx.settings.tz).date()
        calendar = result_store.work_calendar(
            tuple(ctx.settings.calendar.holidays), tuple(ctx.settings.calendar.makeup_workdays)
        )
        firsts = await first_unpublished(ctx, [task.id])
        due, unknown_year = result_store.publication_due(task, on, calendar, firsts[task.id])
        when = f"最迟 {due.isoformat()} 公开" if due else f"{unknown_year}年节假日未载入"
        lines.append(f"任务完成日期 {on.isoformat()}，{when}（第37条）")
    missing = await result_store.outstanding(ctx.session, [task.id])
    if missing:
        owed: Counter[str] = Counter()
        for o in missing:
            owed.update(name for _, name in o.team)
        lines.append(
            "未报告人员："
            + "、".join(f"{name}（{k}项）" for name, k in sorted(owed.items(), key=lambda x: -x[1]))
        )
        lines.append(f"未报告的检查（{len(missing)}项）：")
        for o in missing[:SHOWN]:
            held = f" · {o.held_by}正在填写说明" if o.held_by else ""
            team = "、".join(name for _, name in o.team) or "无"
            lines.append(f"  编号 {o.number} {o.target}：{team}{held}")
        if len(missing) > SHOWN:
            lines.append(f"  ……另有{len(missing) - SHOWN}项，发送「检查详情 <编号>」查看。")
    else:
        lines.append("全部检查已有结果。")
    pending = await swap_store.pending_of_tasks(ctx.session, [task.id])
    if pending:
        lines.append(
            f"待审批的替换申请 {len(pending)} 项：" + "、".join(f"#{r.id}" for r in pending)
        )
    send(ctx, [], "\n".join(lines), reply=True)


SHOWN = 30
