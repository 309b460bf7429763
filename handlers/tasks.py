"""新建任务 / 任务列表: an organisation's random-inspection tasks (Art. 20, 22)."""

from __future__ import annotations

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import DRAW_STATUS_LABELS, send
from inspection.pool import quotas_from_json
from inspection.quotas import TIER_LABELS
from inspection.taskdates import calendar_warning, covered_years, uncovered_years
from inspection.taskspec import CHAT_USAGE, SpecError, parse_task_line
from storage import task_approval
from storage import tasks as task_store
from storage.models import Task

router = Router("tasks")

TASK_STATUS = {
    "proposed": "待盟市局批准",
    "refused": "已退回",
    "planned": "待抽取",
    "complete": "已完成",
    "targeted": "双随机以外的检查",
    "joint": "部门联合抽查（牵头部门抽取）",
    "imported": "启用前的检查（导入）",
    **DRAW_STATUS_LABELS,
}


@router.command("新建任务", roles={Role.ADMIN}, usage=CHAT_USAGE, summary="新建抽查任务（第22条）")
async def create(msg: TextCommand, ctx: Context) -> None:
    """Art. 22: a task holds its name, dates, scope, ratios, departments, items and focus; its
    dates are checked against today and the holiday calendar (Art. 20, 37)."""
    try:
        spec = parse_task_line(msg.typed)  # free text kept as typed, the rest folded
    except SpecError as exc:
        raise UserError(exc.zh) from None
    org = spec.org_code or _own_org(ctx)
    await ctx.require_scope(Role.ADMIN, org)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    try:
        task = await task_store.create_task(
            ctx.session, spec, org_code=org, actor=ctx.actor.userid, now=ctx.now(), today=today
        )
    except SpecError as exc:
        raise UserError(exc.zh) from None
    calendar = ctx.settings.calendar
    gaps = uncovered_years(
        task.check_start,
        task.check_end,
        covered_years(calendar.holidays, calendar.makeup_workdays),
    )
    quotas = quotas_from_json(task.quotas)
    ratios = "、".join(f"{TIER_LABELS[t]}{q.label()}" for t, q in quotas.items())
    ctx.reply(
        f"已新建任务 {task.code}「{task.name}」\n"
        f"抽取单位：{await ctx.repos.orgs.name(org)}（{org}）；范围：{'、'.join(task.scope_orgs)}\n"
        f"抽取：{ratios}；检查期 {task.check_start} 至 {task.check_end}；每组{task.team_size}人\n"
        + await _next_step(ctx, task)
        + (f"\n{warning[0]}" if (warning := calendar_warning(gaps)) else "")
    )


async def _next_step(ctx: Context, task: Task) -> str:
    """A branch's task goes to its league/city bureau for approval first (Art. 5)."""
    city = await task_approval.approving_org(ctx.repos, task)
    if task.status != "proposed" or city is None:
        return f"发送「抽查预览 {task.code}」查看可抽取的对象，「抽查 {task.code}」开始抽取。"
    deciders = await ctx.repos.roles.holders(Role.ADMIN, [city])
    deciders += await ctx.repos.roles.holders(Role.CHIEF, [city])
    city_name = await ctx.repos.orgs.name(city)
    send(
        ctx,
        sorted(set(deciders) - {ctx.actor.userid}),
        f"【任务待批准】{await ctx.repos.orgs.name(task.org_code)}提出抽查任务 {task.code}"
        f"「{task.name}」，检查期 {task.check_start} 至 {task.check_end}。\n"
        f"发送「抽查预览 {task.code}」查看，「批准任务 {task.code}」批准"
        f"（可加「授权=分局管理员账号」由其抽取），「退回任务 {task.code} <原因>」退回（第5条）。",
    )
    return (
        f"该任务待{city_name}批准（第5条），已通知其管理员和部门负责人；"
        f"批准后由{city_name}或其授权的分局管理员组织抽取。"
    )


def _own_org(ctx: Context) -> str:
    orgs = sorted(set(ctx.actor.orgs_for(Role.ADMIN)))
    if len(orgs) != 1:
        raise UserError("您在多个单位任管理员，请用「单位=150100」写明抽取单位。")
    return orgs[0]


@router.command(
    "任务列表",
    roles={Role.ADMIN, Role.CHIEF},
    usage="任务列表 [年份]",
    summary="列出您管辖范围内的抽查任务",
)
async def listing(msg: TextCommand, ctx: Context) -> None:
    """Art. 41: a level sees its own tasks and those of every level below it."""
    text = msg.text.strip()
    if text and not text.isdigit():
        raise UserError("用法：任务列表 [年份]，如「任务列表 2026」。")
    year = int(text) if text else None
    orgs = await ctx.visible_orgs((Role.ADMIN, Role.CHIEF))
    found = await task_store.list_tasks(ctx.session, orgs, year)
    if not found:
        ctx.reply("没有抽查任务。管理员可用「新建任务」创建，发送「帮助」查看格式。")
        return
    lines = [f"抽查任务（{len(found)}项）："]
    for t in found[-50:]:
        lines.append(
            f"{t.code} {t.name} · 检查期 {t.check_start}~{t.check_end} · "
            f"{TASK_STATUS.get(t.status, t.status)}"
        )
    if len(found) > 50:
        lines.insert(1, "（仅列出最近50项，可按年份查看）")
    send(ctx, [], "\n".join(lines), reply=True)
