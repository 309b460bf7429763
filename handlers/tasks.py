"""新建任务 (one line, or step by step) / 修改任务 / 取消任务 / 任务列表: an organisation's
random-inspection tasks (Art. 20, 22)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import DRAW_STATUS_LABELS, actor_name, load_task, refusal_text, send
from inspection.params import NoParamsInEffect
from inspection.pool import quotas_from_json
from inspection.quotas import TIER_LABELS
from inspection.taskdates import calendar_warning, covered_years, uncovered_years
from inspection.taskspec import (
    CANCEL_USAGE,
    CHAT_USAGE,
    EDIT_USAGE,
    SpecError,
    TaskSpec,
    example_line,
    example_period,
    parse_edit_line,
    parse_period,
    parse_task_line,
    percent,
    read_fields,
    spec_from_fields,
)
from storage import task_approval, task_edits
from storage import tasks as task_store
from storage.draws import DrawRefused
from storage.models import Draw, Task

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
    "cancelled": "已取消",  # 取消任务 before sealing; a task whose draw was cancelled: 已作废
}


@router.command("新建任务", roles={Role.ADMIN}, usage=CHAT_USAGE, summary="新建抽查任务（第22条）")
async def create(msg: TextCommand, ctx: Context) -> None:
    """Art. 22: a task holds its name, dates, scope, ratios, departments, items and focus; its
    dates are checked against today and the holiday calendar (Art. 20, 37). Sent alone, it asks
    for them step by step."""
    if not msg.text.strip():
        await _wizard_start(ctx)
        return
    try:
        spec = parse_task_line(msg.typed)  # free text kept as typed, the rest folded
    except SpecError as exc:
        raise UserError(await _own_usage(ctx, exc.zh)) from None
    await _create(ctx, spec)


async def _create(ctx: Context, spec: TaskSpec) -> None:
    org = spec.org_code or await _own_org(ctx)
    await ctx.require_scope(Role.ADMIN, org)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    try:
        task = await task_store.create_task(
            ctx.session, spec, org_code=org, actor=ctx.actor.userid, now=ctx.now(), today=today
        )
    except SpecError as exc:
        raise UserError(await _own_usage(ctx, exc.zh)) from None
    ctx.reply(
        f"已新建任务 {task.code}「{task.name}」\n"
        + await _terms(ctx, task)
        + "\n"
        + await _next_step(ctx, task)
        + _calendar_note(ctx, task)
    )


async def _terms(ctx: Context, task: Task) -> str:
    quotas = quotas_from_json(task.quotas)
    ratios = "、".join(f"{TIER_LABELS[t]}{q.label()}" for t, q in quotas.items())
    org = task.org_code
    return (
        f"抽取单位：{await ctx.repos.orgs.name(org)}（{org}）；范围：{'、'.join(task.scope_orgs)}\n"
        f"抽取：{ratios}；检查期 {task.check_start} 至 {task.check_end}；每组{task.team_size}人"
    )


def _calendar_note(ctx: Context, task: Task) -> str:
    calendar = ctx.settings.calendar
    gaps = uncovered_years(
        task.check_start,
        task.check_end,
        covered_years(calendar.holidays, calendar.makeup_workdays),
    )
    return f"\n{warning[0]}" if (warning := calendar_warning(gaps)) else ""


async def _example(ctx: Context, org: str = "") -> str:
    """A 新建任务 line from the admin's own organisation (``org``, or the first), ready to send;
    with 单位= when they administer several."""
    orgs = _admin_orgs(ctx) or ["150100"]
    org = org or orgs[0]
    today = ctx.now().astimezone(ctx.settings.tz).date()
    try:  # Art. 25, 45: the minimums in force when its check period starts
        minimums = task_store.rule_params(example_period(today)[0]).ratios()
    except NoParamsInEffect:
        minimums = None  # no rules then: the line names no ratios
    line = example_line(org, today, minimums)
    return f"{line} 单位={org}" if len(orgs) > 1 else line


async def _own_usage(ctx: Context, text: str) -> str:
    """A parse error's usage line, its example filled from the admin's own organisation."""
    orgs = sorted(set(ctx.actor.orgs_for(Role.ADMIN)))
    if CHAT_USAGE not in text or not orgs:
        return text
    own = CHAT_USAGE.replace("范围=150100", f"范围={orgs[0]}").replace(
        "单位=150100", f"单位={orgs[0]}"
    )
    return (
        text.replace(CHAT_USAGE, own)
        + f"\n例如：{await _example(ctx)}\n或只发送「新建任务」按步骤填写。"
    )


# --- step by step ---------------------------------------------------------------------------

WIZARD_STATE = "task_wizard"
WIZARD_MINUTES = 30
QUIT = {"放弃", "退出"}
DEFAULT = {"默认", "本单位", "是"}
STEPS = ("name", "period", "scope", "quotas", "confirm")


async def _wizard_start(ctx: Context) -> None:
    orgs = _admin_orgs(ctx)
    if not orgs:
        raise UserError("您不是任何单位的管理员，不能新建任务。")
    other = await ctx.repos.conversations.state(ctx.actor.userid, ctx.now())
    if other is not None and other != WIZARD_STATE:  # e.g. a result's description owed
        raise UserError(
            "您有一项正在进行的回复（如检查结果的说明）尚未完成，请先完成后再新建任务。"
        )
    if len(orgs) > 1:  # several organisations: which one first
        await _wizard_save(ctx, {"org": "", "step": "org", "fields": {}})
        ctx.reply(
            f"您在{len(orgs)}个单位任管理员，为哪个单位新建抽查任务？回复单位代码或名称：\n"
            + await _org_choices(ctx, orgs)
            + "\n随时发送「放弃」退出。"
        )
        return
    await ctx.require_scope(Role.ADMIN, orgs[0])
    await _wizard_save(ctx, {"org": orgs[0], "step": "name", "fields": {}})
    ctx.reply(await _wizard_intro(ctx, orgs[0]))


async def _org_choices(ctx: Context, orgs: list[str]) -> str:
    tree = await ctx.repos.orgs.tree()
    return "\n".join(f"· {tree[o].name if o in tree else o} {o}" for o in orgs)


async def _wizard_intro(ctx: Context, org: str) -> str:
    today = ctx.now().astimezone(ctx.settings.tz).date()
    year, quarter = today.year, (today.month - 1) // 3 + 1
    return (
        f"按步骤新建{await ctx.repos.orgs.name(org)}的抽查任务（第22条），共4步，"
        "随时发送「放弃」退出。\n"
        f"熟悉后也可以一行写完，例如：\n{await _example(ctx, org)}\n\n"
        f"第1步：任务名称？（如「{year}年第{quarter}季度双随机抽查」）"
    )


async def _wizard_save(ctx: Context, data: dict[str, Any]) -> None:
    until = ctx.now() + dt.timedelta(minutes=WIZARD_MINUTES)
    await ctx.repos.conversations.set(ctx.actor.userid, WIZARD_STATE, data, until)


def _rule_ratios(period: str) -> str:
    """The Art. 25 minimums in force on the check period's first day, as the wizard says them."""
    start = dt.date.fromisoformat(period.split("~", 1)[0])
    try:
        ratios = task_store.rule_params(start).ratios()
    except NoParamsInEffect as exc:
        raise UserError(str(exc)) from None
    return "、".join(f"{TIER_LABELS[t]}{percent(r)}" for t, r in ratios.items())


@router.conversation(WIZARD_STATE)
async def wizard_answer(msg: TextCommand, ctx: Context) -> None:
    """The admin's answer to the current step of a guided 新建任务."""
    me = ctx.actor.userid
    conv = await ctx.repos.conversations.get(me, ctx.now())
    assert conv is not None
    data: dict[str, Any] = dict(conv.data)
    fields: dict[str, str] = dict(data.get("fields", {}))
    answer = msg.typed.strip()
    folded = unicodedata.normalize("NFKC", msg.text).strip()
    if folded in QUIT:
        await ctx.repos.conversations.clear(me)
        ctx.reply("已放弃新建任务，没有保存任何内容。")
        return
    step = str(data.get("step", "name"))
    if step == "org":
        await _wizard_org(ctx, data, folded)
        return
    org = str(data["org"])
    today = ctx.now().astimezone(ctx.settings.tz).date()
    try:
        if step == "name":
            if not answer or len(answer) > 200:
                raise SpecError("任务名称不能为空，且不超过200字。", "")
            fields["名称"] = answer
            question = _period_question(today)
        elif step == "period":
            start, end = parse_period(folded)
            fields["检查期"] = f"{start.isoformat()}~{end.isoformat()}"
            question = await _scope_question(ctx, org)
        elif step == "scope":
            fields["范围"] = org if folded in DEFAULT else folded.replace(" ", ",")
            await _check_scope(ctx, org, fields["范围"])
            question = (
                "第4步：各类对象的抽取比例或数量？回复「默认」按检查期开始时施行的规则"
                f"（{_rule_ratios(fields['检查期'])}，第25条），或写成「特殊=30% 重点=20% 一般=15」。"
            )
        elif step == "quotas":
            if folded not in DEFAULT:
                tiers = {}
                for token in folded.split():
                    key, _, value = token.partition("=")
                    tiers[key] = value
                read_fields(tiers)  # a wrong word or value is said now
                fields.update(tiers)
            spec = spec_from_fields(fields)
            question = (
                "请核对：\n"
                + _wizard_summary(spec, org)
                + "\n回复「确认」新建，「放弃」退出。等同于一行命令：\n"
                + _as_line(fields)
            )
        else:  # confirm
            if folded != "确认":
                raise SpecError("请回复「确认」新建，或「放弃」退出。", "")
            spec = spec_from_fields(fields)
            await ctx.repos.conversations.clear(me)
            await _create(ctx, spec)
            return
    except SpecError as exc:
        ctx.reply(f"{exc.zh}\n请重新回复第{STEPS.index(step) + 1}步，或发送「放弃」退出。")
        await _wizard_save(ctx, {**data, "fields": fields})
        return
    data["step"] = STEPS[STEPS.index(step) + 1]
    data["fields"] = fields
    await _wizard_save(ctx, data)
    ctx.reply(question)


async def _wizard_org(ctx: Context, data: dict[str, Any], answer: str) -> None:
    """The first answer of an admin of several organisations: which one the task is for."""
    orgs = _admin_orgs(ctx)
    tree = await ctx.repos.orgs.tree()
    names = {o: tree[o].name if o in tree else o for o in orgs}
    found = [o for o in orgs if answer == o or (answer and names[o].startswith(answer))]
    org = found[0] if len(found) == 1 else None
    if org is None:
        await _wizard_save(ctx, data)
        ctx.reply(
            f"「{answer}」不是您任管理员的单位。请回复其中一个单位代码或名称，或发送「放弃」退出：\n"
            + await _org_choices(ctx, orgs)
        )
        return
    await ctx.require_scope(Role.ADMIN, org)
    await _wizard_save(ctx, {"org": org, "step": "name", "fields": {"单位": org}})
    ctx.reply(await _wizard_intro(ctx, org))


def _period_question(today: dt.date) -> str:
    example = example_line("0", today).rsplit("检查期=", 1)[1]
    return f"第2步：检查期？写成 开始~结束，如「{example}」。"


async def _scope_question(ctx: Context, org: str) -> str:
    tree = await ctx.repos.orgs.tree()
    children = sorted(c.code for c in tree.values() if c.parent_code == org)
    names = "、".join(f"{tree[c].name} {c}" for c in children[:6])
    more = f"等{len(children)}个" if len(children) > 6 else ""
    below = f"；下级单位有：{names}{more}" if children else ""
    return (
        f"第3步：抽取范围？回复「默认」为{tree[org].name}（{org}）全部{below}。"
        "可写一个或几个单位代码，用逗号分开。"
    )


async def _check_scope(ctx: Context, org: str, codes: str) -> None:
    for code in [c for c in codes.replace("、", ",").split(",") if c]:
        if await ctx.repos.orgs.get(code) is None:
            raise SpecError(f"单位代码「{code}」不存在。", "")
        if not await ctx.repos.orgs.covers([org], code):
            raise SpecError(f"「{code}」不在本单位（{org}）的管辖范围内（第5条）。", "")


def _wizard_summary(spec: TaskSpec, org: str) -> str:
    ratios = "、".join(f"{TIER_LABELS[t]}{q.label()}" for t, q in spec.quotas.items())
    return (
        f"名称：{spec.name}\n检查期：{spec.check_start} 至 {spec.check_end}\n"
        f"范围：{'、'.join(spec.scope_orgs) or org}\n"
        f"抽取：{ratios or '按现行规则（第25条）'}"
    )


def _as_line(fields: dict[str, str]) -> str:
    rest = " ".join(f"{k}={v}" for k, v in fields.items() if k != "名称")
    return f"新建任务 {fields['名称'].replace(' ', '')} {rest}"


# --- editing and cancelling before the draw is sealed -----------------------------------------


async def _require_task_admin(ctx: Context, task: Task) -> None:
    await ctx.require_scope(Role.ADMIN, task.org_code)


def _split_reason(msg: TextCommand) -> tuple[str, str]:
    """``… 原因=<reason>``: the fields before it (folded) and the reason as typed."""
    folded = msg.text
    at = folded.find("原因=")
    if at < 0:
        raise UserError(f"请写明修改原因（原因=…）。用法：{EDIT_USAGE}")
    typed = msg.typed
    typed_at = max(typed.find("原因="), typed.find("原因＝"))
    reason = typed[typed_at + 3 :].strip() if typed_at >= 0 else folded[at + 3 :].strip()
    if not reason:
        raise UserError(f"请写明修改原因（原因=…）。用法：{EDIT_USAGE}")
    return folded[:at], reason


@router.command("修改任务", roles={Role.ADMIN}, usage=EDIT_USAGE, summary="抽取前修改抽查任务")
async def edit(msg: TextCommand, ctx: Context) -> None:
    """Art. 22: a task's terms may change until its draw is sealed, with a reason on record; a
    branch's approved task goes back to its league/city bureau (Art. 5)."""
    fields, reason = _split_reason(msg)
    code, _, rest = fields.strip().partition(" ")
    task = await load_task(ctx, code, "修改任务")
    await _require_task_admin(ctx, task)
    try:
        changes = parse_edit_line(rest)
        today = ctx.now().astimezone(ctx.settings.tz).date()
        edited = await task_edits.edit_task(
            ctx.session,
            task,
            changes,
            actor=ctx.actor.userid,
            now=ctx.now(),
            today=today,
            reason=reason,
        )
    except SpecError as exc:
        raise UserError(exc.zh) from None
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    labels = {
        "name": "名称",
        "check_start": "检查开始",
        "check_end": "检查结束",
        "draw_on": "抽取日",
        "scope": "范围",
        "quotas": "抽取比例",
        "items": "事项",
        "focus": "检查重点",
        "team_size": "每组人数",
    }
    changed = "、".join(labels.get(k, k) for k in edited.changes)
    text = f"任务 {task.code}「{task.name}」已修改（{changed}），原因：{reason}\n" + await _terms(
        ctx, task
    )
    if edited.back_to_approval:
        text += "\n" + await _next_step(ctx, task)
    ctx.reply(text + _calendar_note(ctx, task))
    await _tell_others(
        ctx,
        task,
        f"【任务已修改】{actor_name(ctx)}修改了任务 {task.code}"
        f"「{task.name}」（{changed}），原因：{reason}",
    )


@router.command("取消任务", roles={Role.ADMIN}, usage=CANCEL_USAGE, summary="抽取前取消抽查任务")
async def cancel(msg: TextCommand, ctx: Context) -> None:
    """Art. 22: a task not yet drawn may be cancelled, with a reason on record; it is kept,
    marked cancelled, and never drawn."""
    code, _, _rest = msg.text.strip().partition(" ")
    task = await load_task(ctx, code, "取消任务")
    await _require_task_admin(ctx, task)
    reason = msg.typed_after_words(1)
    if not reason:
        raise UserError(f"请写明取消原因。用法：{CANCEL_USAGE}")
    try:
        await task_edits.cancel_task(
            ctx.session, task, actor=ctx.actor.userid, now=ctx.now(), reason=reason
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    ctx.reply(f"任务 {task.code}「{task.name}」已取消，不再抽取。原因：{reason}")
    await _tell_others(
        ctx,
        task,
        f"【任务已取消】{actor_name(ctx)}取消了任务 {task.code}「{task.name}」，原因：{reason}",
    )


async def _tell_others(ctx: Context, task: Task, text: str) -> None:
    """The task's other admins and its creator; for a branch's task, its city's deciders."""
    orgs = [task.org_code]
    city = await task_approval.approving_org(ctx.repos, task)
    people = set(await ctx.repos.roles.holders(Role.ADMIN, orgs)) | {task.created_by}
    if city is not None:
        people |= set(await ctx.repos.roles.holders(Role.ADMIN, [city]))
        people |= set(await ctx.repos.roles.holders(Role.CHIEF, [city]))
    send(ctx, sorted(people - {ctx.actor.userid}), text)


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


def _admin_orgs(ctx: Context) -> list[str]:
    return sorted(set(ctx.actor.orgs_for(Role.ADMIN)))


async def _own_org(ctx: Context) -> str:
    """The admin's one organisation; an admin of several is asked to name it, from theirs."""
    orgs = _admin_orgs(ctx)
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise UserError("您不是任何单位的管理员，不能新建任务。")
    raise UserError(
        f"您在{len(orgs)}个单位任管理员，请用「单位={orgs[0]}」写明抽取单位，"
        "或只发送「新建任务」按步骤选择：\n" + await _org_choices(ctx, orgs)
    )


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
    shown = found[-50:]
    voided = set(
        await ctx.session.scalars(
            select(Draw.task_id).where(
                Draw.task_id.in_([t.id for t in shown if t.status == "cancelled"]),
                Draw.status == "cancelled",
            )
        )
    )
    for t in shown:
        status = (
            DRAW_STATUS_LABELS["cancelled"]
            if t.id in voided
            else TASK_STATUS.get(t.status, t.status)
        )
        lines.append(f"{t.code} {t.name} · 检查期 {t.check_start}~{t.check_end} · {status}")
    if len(found) > 50:
        lines.insert(1, "（仅列出最近50项，可按年份查看）")
    send(ctx, [], "\n".join(lines), reply=True)
