"""我的任务 / 记录 / 更正 / 保密 / 检查详情 / 检查统计: an inspection's record after the result
(Art. 14, 17, 35, 37, 38, 40): what is open, the on-site record number, corrections that keep
the original, secret results, who was assigned what and when, and the year's figures with
checks outside the draw kept apart (Art. 6)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import (
    MANAGERS,
    actor_name,
    load_inspection,
    local,
    manager_role,
    may_see,
    person,
    require_manager,
    require_member,
    send,
    subject,
    target_of,
    task_managers,
    task_of,
    within,
)
from handlers.results import (
    DESCRIBED,
    MAX_DESCRIPTION,
    deregister_if_closed,
    description_arrived,
    owes_description,
    parse_code,
    refer_case,
    reinstate_if_corrected,
    split_description,
    whole,
)
from inspection.results import ResultCode
from storage import followups, public
from storage import results as store
from storage.models import (
    Inspection,
    InspectionResult,
    SwapRequest,
    Target,
    Task,
    TeamMember,
)
from storage.results import CHANNEL_LABELS, HELD, ORIGIN_LABELS, Submission
from storage.swaps import SWAP_STATUS_LABELS

router = Router("records")
RECORD_NO_MAX = 64  # RecordNumber.record_no: a longer one is refused, never cut (Art. 35)


def not_allowed_text(exc: store.NotAllowed, verb: str, tz: dt.tzinfo | None = None) -> str:
    """The chat's wording of a refused correction, amendment, confirmation or secrecy mark."""
    n = exc.facts.get("number")
    match exc.reason:
        case "no_result" if verb in ("修改说明", "确认结果"):
            return f"编号 {n} 还没有检查结果，提交后才能{verb}。"
        case "not_yours":
            return (
                f"编号 {n} 的结果由{exc.facts.get('name')}提交，只有提交人本人能修改；"
                f"如需更正，请联系部门负责人发送「更正 {n} <结果文字> <原因>」。"
            )
        case "confirmed" if verb == "确认结果":
            return f"编号 {n} 的结果已确认，无需重复确认。"
        case "confirmed":
            at = exc.facts["at"].astimezone(tz or dt.UTC).strftime("%Y-%m-%d %H:%M")
            return (
                f"编号 {n} 的结果已于 {at} 经部门负责人确认，不能再{verb}；"
                f"如需更正，请联系部门负责人发送「更正 {n} <结果文字> <原因>」。"
            )
        case "published" if verb != "更正":
            return (
                f"编号 {n} 的结果已经公开，不能再{verb}；"
                f"如需更正，请联系部门负责人发送「更正 {n} <结果文字> <原因>」。"
            )
        case "unchanged_text":
            return f"编号 {n}：新内容与原内容相同，无需{verb}。"
        case "no_record_no":
            return f"编号 {n} 还没有您附上的记录号，请发送「记录 {n} <记录号>」附上。"
        case "record_no_taken":
            return f"编号 {n} 已附有记录号 {exc.facts.get('record_no')}。"
        case "no_result" if verb == "保密":
            return f"编号 {n} 还没有检查结果。结果提交后才能标记保密。"
        case "no_result":
            return f"编号 {n} 还没有检查结果，无需更正。"
        case "published":
            return f"编号 {n} 的结果已经公开，不能再更正。"
        case "unchanged":
            return f"编号 {n} 的结果已是「{exc.facts.get('phrase')}」。"
        case "already_secret":
            return f"编号 {n} 的结果已标记为保密。"
        case "export_served":
            served = exc.facts["served"].astimezone(tz or dt.UTC).strftime("%Y-%m-%d %H:%M")
            return (
                f"编号 {n} 所在抽取的公开记录已于 {served} 在公开页面发布，其中已含该检查对象，"
                "已无法再标记保密（第37条）。"
            )
    return f"编号 {n}：无法{verb}（{exc.reason}）。"


@router.command(
    "我的任务",
    "我的检查",
    roles={Role.INSPECTOR},
    usage="我的任务",
    summary="列出您待提交结果的检查（编号与期限）",
)
async def my_inspections(msg: TextCommand, ctx: Context) -> None:
    """Art. 40: who was assigned what, by which deadline."""
    rows = await ctx.session.execute(
        select(Inspection, Target.name, Task.code, InspectionResult)
        .join(TeamMember, TeamMember.inspection_id == Inspection.id)
        .join(Target, Target.id == Inspection.target_id)
        .join(Task, Task.id == Inspection.task_id)
        .outerjoin(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .where(
            TeamMember.userid == ctx.actor.userid,
            TeamMember.active.is_(True),
            Inspection.status == "open",
        )
        .order_by(Inspection.check_end, Inspection.number)
    )
    found = rows.all()
    if not found:
        ctx.reply("您目前没有待提交结果的检查。")
        return
    today = ctx.now().astimezone(ctx.settings.tz).date()
    lines = [f"您待提交结果的检查（{len(found)}项）："]
    for inspection, name, code, row in found:
        left = (inspection.check_end - today).days
        when = f"剩{left}天" if left >= 0 else f"已超期{-left}天"
        origin = "" if inspection.origin == "random" else f"·{ORIGIN_LABELS[inspection.origin]}"
        held = ""
        if row is not None and row.state == HELD:
            held = f" · {row.name or row.userid}正在填写说明"
        lines.append(
            f"编号 {inspection.number} {name}（任务 {code}{origin}）"
            f"期限 {inspection.check_end.isoformat()}（{when}）{held}"
        )
    first = found[0][0].number
    lines.append(
        f"在任务卡片上选择结果提交，或发送「结果 <编号> <结果文字> [说明]」，"
        f"如「结果 {first} 未发现问题」「结果 {first} 发现问题已责令整改 废气排放超标」。"
    )
    send(ctx, [], "\n".join(lines), reply=True)


@router.command(
    "记录",
    "记录号",
    roles={Role.INSPECTOR},
    usage="记录 <编号> <记录号>",
    summary="附上现场检查记录或移动执法记录编号（第35条）",
)
async def attach_record(msg: TextCommand, ctx: Context) -> None:
    """Art. 35: the on-site record or mobile-enforcement record goes with the inspection."""
    words = msg.text.split()
    if await owes_description(ctx, words[0] if words else ""):
        await description_arrived(whole(msg), ctx)
        return
    if len(words) != 2:
        raise UserError("用法：记录 <编号> <记录号>，如「记录 1001 XCJL-2026-0815」。")
    inspection = await load_inspection(ctx, words[0], "记录")
    task = await task_of(ctx, inspection)
    if await store.active_member(ctx.session, inspection.id, ctx.actor.userid) is None:
        if await manager_role(ctx, task) is None:  # word it for the inspector who typed it
            await require_member(ctx, inspection, "为该检查附记录号")
        await require_manager(ctx, task)
    record_no = within(msg.typed_after_words(1), RECORD_NO_MAX, "记录号")
    if not await store.attach_record_no(
        ctx.session, inspection, record_no, by=ctx.actor.userid, now=ctx.now()
    ):
        ctx.reply(f"编号 {inspection.number} 已附有记录号 {record_no}。")
        return
    await ctx.audit(
        action="result.record_no",
        subject=subject(task),
        payload={"inspection": inspection.number, "record_no": record_no},
    )
    ctx.reply(f"已为编号 {inspection.number} 附上执法记录号 {record_no}（第35条）。")


@router.command(
    "修改说明",
    roles={Role.INSPECTOR},
    usage="修改说明 <编号> <新说明>",
    summary="提交人修改自己提交的问题说明（负责人确认或公开前，原说明保留）",
)
async def amend_description(msg: TextCommand, ctx: Context) -> None:
    """Art. 35, 38: the submitter amends their own description until a chief confirms the
    result or it is published; every version stays in the record."""
    words = msg.text.split(" ", 1)
    if len(words) < 2 or not words[1].strip():
        raise UserError("用法：修改说明 <编号> <新说明>，如「修改说明 1001 废气处理设施未运行」。")
    inspection = await load_inspection(ctx, words[0], "修改说明")
    await require_member(ctx, inspection, "修改该检查的说明")
    row = await store.current(ctx.session, inspection.id)
    code = row.code if row is not None else ""
    description, department = split_description(code, msg.typed_after_words(1), inspection.number)
    s = Submission(
        code, "", ctx.actor.userid, actor_name(ctx), ctx.channel, description, department
    )
    try:
        before, entry = await store.amend_description(ctx.session, inspection, s, now=ctx.now())
    except store.NotAllowed as exc:
        raise UserError(not_allowed_text(exc, "修改说明", ctx.settings.tz)) from None
    task = await task_of(ctx, inspection)
    text = (
        f"【问题说明修改】编号 {inspection.number}「{entry.phrase}」\n"
        f"原说明：{before.description or '（无）'}\n新说明：{entry.description}"
        + (f"\n移交部门：{entry.department}" if entry.department else "")
        + f"\n修改人：{entry.name}（提交人本人），原说明保留在检查记录中。"
    )
    ctx.reply(text)
    told = [u for u in await task_managers(ctx, task) if u != ctx.actor.userid]
    send(ctx, told, text + f"\n确认无误请发送「确认结果 {inspection.number}」。")
    await ctx.audit(
        action="result.amend",
        subject=subject(task),
        payload={
            "inspection": inspection.number,
            "seq": entry.seq,
            "before": before.description,
            "description": entry.description,
            "department": entry.department,
            "notified": told,
        },
    )


@router.command(
    "修改记录",
    roles={Role.INSPECTOR},
    usage="修改记录 <编号> <新记录号>",
    summary="提交人替换自己附上的记录号（负责人确认或公开前，原记录号保留）",
)
async def amend_record(msg: TextCommand, ctx: Context) -> None:
    """Art. 35: the inspector who attached a record number replaces it (a typo) until the
    result is confirmed or published; the old number stays, marked replaced."""
    words = msg.text.split()
    if len(words) != 2:
        raise UserError("用法：修改记录 <编号> <新记录号>，如「修改记录 1001 XCJL-2026-0816」。")
    inspection = await load_inspection(ctx, words[0], "修改记录")
    await require_member(ctx, inspection, "修改该检查的记录号")
    record_no = within(msg.typed_after_words(1), RECORD_NO_MAX, "记录号")
    try:
        old = await store.amend_record_no(
            ctx.session, inspection, record_no, by=ctx.actor.userid, now=ctx.now()
        )
    except store.NotAllowed as exc:
        raise UserError(not_allowed_text(exc, "修改记录号", ctx.settings.tz)) from None
    task = await task_of(ctx, inspection)
    await ctx.audit(
        action="result.record_no_amend",
        subject=subject(task),
        payload={"inspection": inspection.number, "before": old.record_no, "record_no": record_no},
    )
    ctx.reply(
        f"编号 {inspection.number} 的记录号已由 {old.record_no} 改为 {record_no}"
        "（原记录号保留在检查记录中，第35条）。"
    )


@router.command(
    "确认结果",
    roles={Role.CHIEF},
    usage="确认结果 <编号>",
    summary="确认检查结果：此后提交人不能再修改说明和记录号",
)
async def confirm_result(msg: TextCommand, ctx: Context) -> None:
    """Art. 38: the chief's explicit confirmation ends the submitter's own amendments (a
    correction after it is the chief's, with a reason)."""
    inspection = await load_inspection(ctx, msg.text, "确认结果")
    task = await task_of(ctx, inspection)
    await require_manager(ctx, task, {Role.CHIEF})
    try:
        row = await store.confirm_result(
            ctx.session, inspection, by=ctx.actor.userid, now=ctx.now()
        )
    except store.NotAllowed as exc:
        raise UserError(not_allowed_text(exc, "确认结果", ctx.settings.tz)) from None
    await ctx.audit(
        action="result.confirm",
        subject=subject(task),
        payload={"inspection": inspection.number, "by": ctx.actor.userid},
    )
    text = (
        f"编号 {inspection.number} 的结果「{row.phrase}」已经{actor_name(ctx)}确认"
        f"（{local(ctx, ctx.now())}），此后如需更正由部门负责人办理。"
    )
    ctx.reply(text)
    send(ctx, [row.userid] if row.userid != ctx.actor.userid else [], text)


@router.command(
    "更正",
    "更正结果",
    roles={Role.CHIEF},
    usage="更正 <编号> <结果> <原因>",
    summary="公开前更正检查结果（原结果保留在记录中）",
)
async def correct(msg: TextCommand, ctx: Context) -> None:
    """A chief corrects a result, with a reason; the original stays. A published result's
    public line is rewritten and says it was corrected, and when (Art. 37)."""
    words = msg.text.split(" ", 2)
    if len(words) < 3 or not words[2].strip():
        raise UserError(
            "用法：更正 <编号> <结果序号或文字> <原因>，如「更正 1001 2 复核发现超标」。"
        )
    inspection = await load_inspection(ctx, words[0], "更正")
    task = await task_of(ctx, inspection)
    await require_manager(ctx, task, {Role.CHIEF})
    code = parse_code(inspection, words[1])
    # Stored whole, as typed (it becomes the description where the new phrase needs one).
    reason = within(msg.typed_after_words(2), MAX_DESCRIPTION, "更正原因")
    old = await store.current(ctx.session, inspection.id)
    keep = old is not None and old.code in DESCRIBED and bool(old.description)
    description = "" if code not in DESCRIBED else (old.description if keep and old else reason)
    department = old.department if old and code == ResultCode.transferred.value else ""
    s = Submission(
        code,
        store.phrases_for(inspection.check_start)[code],
        ctx.actor.userid,
        actor_name(ctx),
        ctx.channel,
        description,
        department,
    )
    try:
        before, entry = await store.correct(
            ctx.session, inspection, s, reason=reason, now=ctx.now()
        )
    except store.NotAllowed as exc:
        raise UserError(not_allowed_text(exc, "更正", ctx.settings.tz)) from None
    target = await target_of(ctx, inspection)
    members = await store.team(ctx.session, inspection.id)
    told = list(dict.fromkeys([*(m.userid for m, _ in members), before.userid]))
    text = (
        f"【检查结果更正】编号 {inspection.number} {target.name}\n"
        f"「{before.phrase}」→「{entry.phrase}」\n"
        f"更正人：{entry.name}，原因：{reason}\n原结果保留在检查记录中。"
    )
    ctx.reply(text)
    send(ctx, [u for u in told if u != ctx.actor.userid], text)
    await ctx.audit(
        action="result.correct",
        subject=subject(task),
        payload={
            "inspection": inspection.number,
            "seq": entry.seq,
            "before": {"code": before.code, "phrase": before.phrase, "by": before.userid},
            "code": entry.code,
            "phrase": entry.phrase,
            "description": entry.description,
            "reason": reason,
            "notified": told,
        },
    )
    row = await store.current(ctx.session, inspection.id)
    if code == ResultCode.case_filed.value and before.code != code and row is not None:
        await refer_case(ctx, inspection, task, target, row, [n for _, n in members])
    if row is not None:
        await deregister_if_closed(ctx, inspection, task, row)
    await reinstate_if_corrected(ctx, inspection, task, before.code, entry.seq)
    if await public.republish(ctx.session, inspection, ctx.now(), ctx.settings.tz):
        ctx.reply(
            f"编号 {inspection.number} 已公开的检查结果已在公开页面更正，并注明更正时间（第37条）。"
        )


@router.command(
    "保密",
    roles=MANAGERS,
    usage="保密 <编号> <原因>",
    summary="将检查结果标记为保密，不予公开（第37条）",
)
async def mark_secret(msg: TextCommand, ctx: Context) -> None:
    """Art. 37: results touching state secrets, national or public safety are never published."""
    number, _, reason = msg.text.partition(" ")
    reason = msg.typed_after_words(1) if reason.strip() else ""
    if not reason:
        raise UserError("用法：保密 <编号> <原因>，如「保密 1001 涉及国家秘密」。")
    within(reason, MAX_DESCRIPTION, "保密原因")
    inspection = await load_inspection(ctx, number, "保密")
    task = await task_of(ctx, inspection)
    await require_manager(ctx, task)
    try:
        await store.mark_secret(
            ctx.session,
            inspection,
            reason=reason,
            by=ctx.actor.userid,
            now=ctx.now(),
        )
    except store.NotAllowed as exc:
        raise UserError(not_allowed_text(exc, "保密", ctx.settings.tz)) from None
    await ctx.audit(
        action="result.secret",
        subject=subject(task),
        payload={"inspection": inspection.number, "reason": reason},
    )
    ctx.reply(
        f"编号 {inspection.number} 的检查结果已标记为保密，不予公开（第37条）。原因：{reason}"
    )
    if await public.republish(ctx.session, inspection, ctx.now(), ctx.settings.tz):
        ctx.reply(f"编号 {inspection.number} 已从公开页面撤下。")


@router.command(
    "检查详情",
    roles={Role.INSPECTOR, Role.ADMIN, Role.CHIEF},
    usage="检查详情 <编号>",
    summary="查看一项检查的检查组、结果、更正和记录号",
)
async def details(msg: TextCommand, ctx: Context) -> None:
    """Art. 40: who was assigned what, when, by which deadline, and what they reported."""
    inspection = await load_inspection(ctx, msg.text, "检查详情")
    task = await task_of(ctx, inspection)
    if not await may_see(ctx, inspection, task):
        raise UserError(
            f"编号 {inspection.number} 仅限其检查组成员及任务的管理员、部门负责人查看。"
        )
    target = await target_of(ctx, inspection)
    members = await store.team(ctx.session, inspection.id)
    origin = ORIGIN_LABELS.get(inspection.origin, inspection.origin)
    lines = [
        f"编号 {inspection.number} {target.name}（{target.key}）",
        f"任务 {task.code}「{task.name}」· {origin}",
        f"检查期 {inspection.check_start} 至 {inspection.check_end}",
        "检查组：" + "、".join(n + ("（辅助）" if m.auxiliary else "") for m, n in members),
    ]
    row = await store.current(ctx.session, inspection.id)
    if row is None:
        lines.append("结果：尚未提交")
    elif row.state == HELD:
        lines.append(f"结果：{row.name}正在填写说明（「{row.phrase}」）")
    else:
        lines.append(f"结果：{row.phrase}" + ("（保密，不公开）" if row.secret else ""))
    for e in await store.entries(ctx.session, inspection.id):
        kind = {
            "result": "提交",
            "correction": "更正",
            "merged": "合并检查",
            "amendment": "修改说明",
        }.get(e.kind, e.kind)
        extra = f"，说明：{e.description}" if e.description else ""
        extra += f"，移交：{e.department}" if e.department else ""
        extra += f"，原因：{e.reason}" if e.reason else ""
        lines.append(
            f"  {e.seq}. {local(ctx, e.at)} {e.name or e.userid}{kind}「{e.phrase}」"
            f"（{CHANNEL_LABELS.get(e.channel, e.channel)}）{extra}"
        )
    if row is not None and row.confirmed_at is not None and row.confirmed_by:
        who = await person(ctx, row.confirmed_by)
        lines.append(f"已由{who}于 {local(ctx, row.confirmed_at)} 确认")
    lines.append(await task_state(ctx, task))
    numbers = [
        r.record_no + ("（已替换）" if r.superseded_at else "")
        for r in await store.record_numbers(ctx.session, inspection.id)
    ]
    if numbers:
        lines.append("执法记录号：" + "、".join(numbers))
    for f in await followups.of(ctx.session, inspection.id):
        if f.kind == followups.JUDICIARY:
            lines.append(f"移送司法机关：{f.body}（{f.on}，第34条）")
        else:
            lines.append(f"行政处罚决定：{f.reference}（{f.on}，随结果公开）")
    swaps = await ctx.session.execute(
        select(SwapRequest)
        .where(SwapRequest.inspection_id == inspection.id)
        .order_by(SwapRequest.id)
    )
    requests = list(swaps.scalars())
    names = await store.names_of(
        ctx.session, [u for r in requests for u in (r.userid, r.decided_by) if u]
    )
    for r in requests:
        lines.append(
            f"替换申请 #{r.id} {local(ctx, r.created_at)} {names.get(r.userid, r.userid)}："
            f"{r.reason}（{SWAP_STATUS_LABELS.get(r.status, r.status)}"
            + (f"，{names.get(r.decided_by, r.decided_by)}" if r.decided_by else "")
            + "）"
        )
    send(ctx, [], "\n".join(lines), reply=True)


async def task_state(ctx: Context, task: Task) -> str:
    """Art. 37: the task's completion date (its publication clock) and what is still missing."""
    missing = await store.missing_results(ctx.session, task.id)
    shown = "、".join(str(n) for n in missing[:20]) + ("等" if len(missing) > 20 else "")
    lacking = f"尚缺{len(missing)}项结果（编号 {shown}）" if missing else "全部检查已有结果"
    if task.completed_at is None:
        return f"任务 {task.code}：{lacking}"
    on = task.completed_at.astimezone(ctx.settings.tz).date()
    return f"任务 {task.code} 完成日期 {on}（第37条公开期限自此起算）：{lacking}"


@router.command(
    "检查统计",
    roles=MANAGERS,
    usage="检查统计 [年份]",
    summary="本年检查数量：双随机抽查与双随机以外的检查分别统计",
)
async def figures(msg: TextCommand, ctx: Context) -> None:
    """Art. 6, 14: checks outside the draw count too, but apart from random checks."""
    text = msg.text.strip()
    if text and not text.isdigit():
        raise UserError("用法：检查统计 [年份]，如「检查统计 2026」。")
    year = int(text) if text else ctx.now().astimezone(ctx.settings.tz).year
    orgs = await ctx.visible_orgs(MANAGERS)
    found = await store.counts(ctx.session, sorted(orgs), year)
    lines = [f"{year}年检查统计（您管辖范围内，按检查次数）："]
    for origin in ("random", "construction", "targeted", "joint"):
        n, done = found.get(origin, (0, 0))
        lines.append(f"{ORIGIN_LABELS[origin]}：{n}项，已有结果{done}项")
    outside = found.get("targeted", (0, 0))[0]  # joint checks are random checks (Art. 6)
    lines.append(f"双随机以外的检查合计{outside}项，不计入双随机抽查比例（第6条）。")
    ctx.reply("\n".join(lines))
