"""结果 and the result card (Art. 33-38, 40); an inspection's later record is in ``handlers.records``.

Two taps on the task card report a result; the database decides which submission counts
(``storage.results.claim``). A result that found a problem (phrases 2, 3, 5, 7) needs a short
description: the tap holds the inspection for that member until the description arrives as
their next message or the configured minutes pass. Every step goes into the audit record
under the task, with who, when, through which channel and what was said.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import CardEvent, TextCommand
from bot.chat.router import Router
from handlers.common import (
    CardRef,
    actor_name,
    load_inspection,
    local,
    require_member,
    send,
    subject,
    target_of,
    task_managers,
    task_of,
)
from inspection.results import ResultCode, needs_description, parse_result
from storage import due
from storage import outbox as outbox_store
from storage import publication as publication_store
from storage import results as store
from storage.models import (
    Conversation,
    Inspection,
    InspectionResult,
    Target,
    Task,
    TeamMember,
)
from storage.results import CHANNEL_LABELS, HELD, RECORDED, Submission
from storage.tasks import rule_params

router = Router("results")

DESCRIPTION_STATE = "result.description"
HOLD_DUE = "result.hold"
MAX_DESCRIPTION = 500
DESCRIBED = frozenset(c.value for c in ResultCode if needs_description(c))


# --- small helpers -----------------------------------------------------------------------------


def split_description(code: str, text: str, number: int) -> tuple[str, str]:
    """(description, department), as typed: phrase 5 names the department it went to first."""
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise UserError(f"说明请简短（{MAX_DESCRIPTION}字以内），详细情况请附现场检查记录号。")
    if code != ResultCode.transferred.value:
        return text, ""
    department, description = [*re.split(r"\s+", text, maxsplit=1), ""][:2]
    if not description.strip():
        raise UserError(
            f"编号 {number}「发现问题已移交有关部门」请写明移交的部门和问题说明，"
            "部门在前，如「市水务局 废水直排入河」。"
        )
    return description.strip(), department[:100]


async def owes_description(ctx: Context, first_word: str) -> bool:
    """A description that happens to begin like a command (「结果显示……」「记录显示……」) is
    still the description the member owes, when what follows is not an inspection number."""
    if first_word.removeprefix("编号").isdigit():
        return False
    return await ctx.repos.conversations.state(ctx.actor.userid, ctx.now()) == DESCRIPTION_STATE


def with_name(name: str, msg: TextCommand) -> TextCommand:
    return TextCommand(msg.user, name + msg.text, msg.msg_id, msg.create_time, name + msg.typed)


def parse_code(inspection: Inspection, word: str) -> str:
    """The result code a member or chief typed: a phrase number or the phrase itself."""
    try:
        return str(parse_result(word, rule_params(inspection.check_start).extra_result_phrases))
    except ValueError as exc:
        raise UserError(str(exc)) from None


# --- submitting a result -------------------------------------------------------------------


@router.card("result:")
async def result_card(event: CardEvent, ctx: Context) -> None:
    """Art. 38: the result chosen on the task card and submitted (two taps)."""
    inspection = await load_inspection(ctx, event.event_key.removeprefix("result:"), "结果")
    await require_member(ctx, inspection)
    chosen = event.options("result")
    if not chosen:
        raise UserError("请先在卡片上选择一项检查结果，再点「提交」。")
    if chosen[0] not in store.phrases_for(inspection.check_start):
        raise UserError(
            f"卡片上的选项已失效。请发送「结果 {inspection.number} <序号>」提交，"
            "发送「结果」查看可选的结果。"
        )
    card = CardRef(event.task_id, event.response_code)
    await submit(ctx, inspection, chosen[0], channel="card", text=None, card=card)


@router.command(
    "结果",
    "提交结果",
    roles={Role.INSPECTOR},
    usage="结果 <编号> <1-7 或 结果文字> [说明]",
    summary="提交检查结果（也可在任务卡片上选择提交）",
)
async def result_text(msg: TextCommand, ctx: Context) -> None:
    """Art. 38: the text fallback of the card, also in the console."""
    words = msg.text.split(" ", 2)
    if len(words) < 2:
        choices = "\n".join(
            f"{i}. {p}" for i, p in enumerate(store.phrases_for(ctx.now().date()).values(), 1)
        )
        raise UserError(
            "用法：结果 <编号> <序号或结果文字> [说明]，如「结果 1001 1」或"
            f"「结果 1001 发现问题已责令整改 废气排放超标」。可选结果：\n{choices}"
        )
    if await owes_description(ctx, words[0]):
        await description_arrived(with_name("结果", msg), ctx)
        return
    inspection = await load_inspection(ctx, words[0], "结果")
    await require_member(ctx, inspection)
    code = parse_code(inspection, words[1])
    text = msg.typed_after_words(2) if len(words) > 2 else None
    await submit(ctx, inspection, code, channel=ctx.channel, text=text, card=None)


async def submit(
    ctx: Context,
    inspection: Inspection,
    code: str,
    *,
    channel: str,
    text: str | None,
    card: CardRef | None,
) -> None:
    require_check_period_begun(ctx, inspection)
    phrase = store.phrases_for(inspection.check_start)[code]
    existing = await store.current(ctx.session, inspection.id)
    if existing is not None and existing.state == RECORDED:
        tell_taken(ctx, inspection, existing)
        return
    if code in DESCRIBED and not text:
        await start_hold(ctx, inspection, code, phrase, channel, card)
        return
    description, department = split_description(code, text, inspection.number) if text else ("", "")
    s = Submission(
        code, phrase, ctx.actor.userid, actor_name(ctx), channel, description, department
    )
    won, row = await store.claim(ctx.session, inspection, s, now=ctx.now())
    if not won:
        tell_taken(ctx, inspection, row)
        return
    await after_record(ctx, inspection, row, card)


def require_check_period_begun(ctx: Context, inspection: Inspection) -> None:
    """Art. 22, 37: a result reports a visit made in the check period; before it begins there
    is none to report (a chief's or admin's correction is not a submission)."""
    today = ctx.now().astimezone(ctx.settings.tz).date()
    if today < inspection.check_start:
        raise UserError(
            f"编号 {inspection.number} 的检查期为 {inspection.check_start} 至 "
            f"{inspection.check_end}，尚未开始，{inspection.check_start} 起才能提交检查结果。"
        )


def tell_taken(ctx: Context, inspection: Inspection, row: InspectionResult) -> None:
    """A later submitter learns the recorded result and by whom (or who is filling it in)."""
    n = inspection.number
    who = "您" if row.userid == ctx.actor.userid else (row.name or row.userid)
    if row.state == RECORDED:
        detail = f"，说明：{row.description}" if row.description else ""
        ctx.reply(
            f"编号 {n} 的检查结果已由{who}于 {local(ctx, row.at)} 提交"
            f"（{CHANNEL_LABELS.get(row.channel, row.channel)}）：「{row.phrase}」{detail}。"
            "以先提交的为准；如需更正，请联系部门负责人。"
        )
        return
    until = local(ctx, row.held_until) if row.held_until else ""
    ctx.reply(
        f"编号 {n} 的结果正由{who}填写问题说明（已选「{row.phrase}」，{until} 前有效），请稍候。"
        "超时未提交的，组内成员可以重新提交。"
    )


async def start_hold(
    ctx: Context,
    inspection: Inspection,
    code: str,
    phrase: str,
    channel: str,
    card: CardRef | None,
) -> None:
    """The first tap on a problem phrase holds the inspection for this member."""
    minutes = ctx.settings.results.description_minutes
    until = ctx.now() + dt.timedelta(minutes=minutes)
    s = Submission(code, phrase, ctx.actor.userid, actor_name(ctx), channel)
    won, row = await store.claim(ctx.session, inspection, s, now=ctx.now(), hold_until=until)
    if not won:
        tell_taken(ctx, inspection, row)
        return
    n = inspection.number
    data: dict[str, Any] = {
        "inspection_id": inspection.id,
        "number": n,
        "channel": channel,
        "task_id": card.task_id if card else "",
        "response_code": card.response_code if card else "",
    }
    await ctx.repos.conversations.set(ctx.actor.userid, DESCRIPTION_STATE, data, until)
    await due.schedule(ctx.session, HOLD_DUE, f"inspection:{inspection.id}", until, data)
    what = (
        "移交的部门和问题说明（部门在前，如「市水务局 废水直排入河」）"
        if code == ResultCode.transferred.value
        else "问题说明（一两句话即可）"
    )
    ctx.reply(
        f"编号 {n}：您选择了「{phrase}」。请在{minutes}分钟内（{local(ctx, until)} 前）直接回复"
        f"{what}；也可发送「结果 {n} {phrase} <说明>」。超时未收到说明的，结果不记录。"
    )
    others = [u for u in await store.team_userids(ctx.session, inspection.id) if u != s.userid]
    send(
        ctx,
        others,
        f"编号 {n}：{s.name} 已选择「{phrase}」，正在填写问题说明（{local(ctx, until)} 前），"
        "请勿重复提交。",
    )
    task = await task_of(ctx, inspection)
    await ctx.audit(
        action="result.hold",
        subject=subject(task),
        payload={
            "inspection": n,
            "code": code,
            "phrase": phrase,
            "channel": channel,
            "until": until.isoformat(),
            "notified": others,
        },
    )


@router.conversation(DESCRIPTION_STATE)
async def description_arrived(msg: TextCommand, ctx: Context) -> None:
    """The description owed for a problem phrase, sent as the member's next message."""
    me = ctx.actor.userid
    conv = await ctx.repos.conversations.get(me, ctx.now())
    assert conv is not None
    inspection = await ctx.session.get(Inspection, int(conv.data["inspection_id"]))
    if inspection is None:
        await ctx.repos.conversations.clear(me)
        raise UserError("该检查已不存在。发送「我的任务」查看您的检查。")
    await require_member(ctx, inspection)
    row = await store.current(ctx.session, inspection.id)
    if row is None or row.state != HELD or row.userid != me:
        await ctx.repos.conversations.clear(me)
        if row is not None:
            tell_taken(ctx, inspection, row)
            return
        raise UserError(f"编号 {inspection.number} 的保留已过期，请重新选择检查结果。")
    description, department = split_description(row.code, msg.typed, inspection.number)
    s = Submission(
        row.code,
        row.phrase,
        me,
        actor_name(ctx),
        str(conv.data.get("channel") or "text"),
        description,
        department,
    )
    won, row = await store.claim(ctx.session, inspection, s, now=ctx.now())
    if not won:
        await ctx.repos.conversations.clear(me)
        tell_taken(ctx, inspection, row)
        return
    code = str(conv.data.get("response_code") or "")
    card = CardRef(str(conv.data.get("task_id") or ""), code) if code else None
    await after_record(ctx, inspection, row, card)


async def after_record(
    ctx: Context, inspection: Inspection, row: InspectionResult, card: CardRef | None
) -> None:
    """Everyone on the team is told; the card closes; phrase 3 goes to enforcement; the
    record gets the step; the task completes when this was its last open inspection."""
    me = ctx.actor.userid
    task = await task_of(ctx, inspection)
    target = await target_of(ctx, inspection)
    members = await store.team(ctx.session, inspection.id)
    userids = list(dict.fromkeys(m.userid for m, _ in members))
    text = result_text_for(ctx, inspection, target, row)
    ctx.reply(text)
    send(ctx, [u for u in userids if u != me], text)
    updated = await close_card(ctx, inspection, target, row, members, card)
    conv = await ctx.repos.conversations.get(me, ctx.now())
    if conv is not None and conv.data.get("inspection_id") == inspection.id:
        await ctx.repos.conversations.clear(me)
    await due.cancel(ctx.session, HOLD_DUE, f"inspection:{inspection.id}")
    merged = await store.merged_into(ctx.session, inspection.id)
    payload = {
        "inspection": inspection.number,
        "target": inspection.target_key,
        "origin": inspection.origin,
        "code": row.code,
        "phrase": row.phrase,
        "description": row.description,
        "department": row.department,
        "by": row.userid,
        "name": row.name,
        "channel": row.channel,
        "notified": userids,
        "card_updated_for": updated,
        "merged": [m.number for m in merged],
    }
    await ctx.audit(action="result.record", subject=subject(task), payload=payload)
    for m in merged:
        other = await ctx.session.get(Task, m.task_id)
        if other is not None:
            await ctx.audit(
                action="result.record",
                subject=subject(other),
                payload=payload | {"inspection": m.number, "merged_into": inspection.number},
            )
    if row.code == ResultCode.case_filed.value:
        await refer_case(ctx, inspection, task, target, row, [n for _, n in members])
    await deregister_if_closed(ctx, inspection, task, row)
    calendar = store.work_calendar(
        tuple(ctx.settings.calendar.holidays), tuple(ctx.settings.calendar.makeup_workdays)
    )
    completed = await store.complete_if_done(
        ctx.session,
        [inspection.task_id, *(m.task_id for m in merged)],
        ctx.now(),
        ctx.settings.tz,
        calendar,
    )
    for c in completed:
        await announce_completion(ctx, c)
    late = store.late_result_due(task, row.at, ctx.settings.tz, calendar)
    if late is not None:
        due_on, missing_year = late
        days = rule_params(task.check_start).publication_working_days
        when = f"即最迟 {due_on}" if due_on else f"{missing_year}年的节假日安排尚未载入"
        assert task.completed_at is not None
        text = (
            f"【补录结果】编号 {inspection.number} 的结果在任务 {task.code} 完成"
            f"（{local(ctx, task.completed_at)}）后录入，按第37条须在录入后{days}个工作日内公开，"
            f"{when}。"
        )
        ctx.reply(text)
        send(ctx, [u for u in await task_managers(ctx, task) if u != me], text)
        await ctx.audit(
            action="result.late",
            subject=subject(task),
            payload={
                "inspection": inspection.number,
                "publication_due": due_on.isoformat() if due_on else None,
            },
        )


def result_text_for(
    ctx: Context, inspection: Inspection, target: Target, row: InspectionResult
) -> str:
    lines = [
        f"【检查结果已记录】编号 {inspection.number} {target.name}",
        f"结果：{row.phrase}",
    ]
    if row.department:
        lines.append(f"移交部门：{row.department}")
    if row.description:
        lines.append(f"说明：{row.description}")
    lines.append(
        f"提交人：{row.name or row.userid}，{local(ctx, row.at)}"
        f"（{CHANNEL_LABELS.get(row.channel, row.channel)}）"
    )
    return "\n".join(lines)


async def close_card(
    ctx: Context,
    inspection: Inspection,
    target: Target,
    row: InspectionResult,
    members: list[tuple[TeamMember, str]],
    card: CardRef | None,
) -> list[str]:
    """Show the result on the card and close its choices, for everyone who got that card: with
    the clicker's ResponseCode, or for a text submission the one the card's send returned. If
    WeCom refuses, the result stands: everyone already has the text."""
    task_id = card.task_id if card else (inspection.card_task_id or "")
    code = card.response_code if card else await send_response_code(ctx, task_id)
    if not code or not task_id:
        return []
    users = [m.userid for m, _ in members if m.card_task_id == task_id] or [ctx.actor.userid]
    users = list(dict.fromkeys(users))
    phrases = store.phrases_for(inspection.check_start)
    closed = {
        "card_type": "vote_interaction",
        "source": {"desc": "双随机、一公开 抽查任务"},
        "main_title": {
            "title": f"编号 {inspection.number} {target.name}"[:36],
            "desc": f"检查结果：{row.phrase}\n提交人：{row.name or row.userid} {local(ctx, row.at)}",
        },
        "task_id": task_id,
        "checkbox": {
            "question_key": "result",
            "option_list": [
                {"id": c, "text": p, "is_checked": c == row.code} for c, p in phrases.items()
            ],
            "disable": True,
            "mode": 0,
        },
        "submit_button": {"text": "提交", "key": f"result:{inspection.number}"},
        "replace_text": "已提交",
    }
    ctx.outbox.update_card(users, code, closed)
    return users


async def send_response_code(ctx: Context, task_id: str) -> str:
    """The response code WeCom returned when the card was delivered (the sender keeps it)."""
    return await outbox_store.card_response_code(ctx.session, task_id) if task_id else ""


async def refer_case(
    ctx: Context,
    inspection: Inspection,
    task: Task,
    target: Target,
    row: InspectionResult,
    team_names: list[str],
) -> None:
    """Phrase 3 (Art. 34): the inspection is marked for case filing and the enforcement
    contacts covering the target's organisation are told."""
    orgs = await ctx.repos.orgs.ancestors(target.org_code)
    contacts = await ctx.repos.roles.holders(Role.ENFORCEMENT, orgs)
    text = "\n".join(
        [
            f"【移交立案调查】编号 {inspection.number} {target.name}（{target.key}）",
            "检查结果：发现违法行为已立案调查（第34条）",
            f"说明：{row.description or '（无）'}",
            f"检查组：{'、'.join(team_names)}",
            f"任务：{task.code} {task.name}",
        ]
    )
    if contacts:
        ctx.outbox.text(contacts, text)
    else:
        org = await ctx.repos.orgs.name(target.org_code)
        ctx.reply(
            f"提示：{org}及其上级单位还没有指定执法联系人，立案材料暂未转送；"
            "结果已记录，请告知本单位管理员指定执法联系人后补送（第34条）。"
        )
    await ctx.audit(
        action="result.case_referral",
        subject=subject(task),
        payload={"inspection": inspection.number, "target": target.key, "notified": contacts},
    )


async def deregister_if_closed(
    ctx: Context, inspection: Inspection, task: Task, row: InspectionResult
) -> None:
    """Phrase 4 (Art. 13, 38): the target is marked deregistered in the directory, with this
    inspection as the evidence, and is not drawn again."""
    if row.code != ResultCode.deregistered.value:
        return
    if await store.deregister_target(ctx.session, inspection, by=ctx.actor.userid, now=ctx.now()):
        await ctx.audit(
            action="target.change",
            subject=f"target:{inspection.target_key}",
            payload={
                "changes": [{"field": "status", "after": "deregistered"}],
                "evidence": f"inspection:{inspection.number}",
                "task": task.code,
            },
        )


def completion_text(c: store.Completion) -> str:
    task = c.task
    days = rule_params(task.check_start).publication_working_days
    if c.missing:
        numbers = "、".join(str(n) for n in c.missing)
        head = (
            f"【任务完成】任务 {task.code}「{task.name}」检查期已于 {c.completed_on.isoformat()} "
            f"结束，完成日期 {c.completed_on.isoformat()}；尚缺{len(c.missing)}项结果"
            f"（编号 {numbers}），补录的结果自录入之日起{days}个工作日内公开。"
        )
    else:
        head = (
            f"【任务完成】任务 {task.code}「{task.name}」的全部检查已有结果，"
            f"完成日期 {c.completed_on.isoformat()}。"
        )
    if c.publication_due is not None:
        return head + (
            f"按第37条，须在完成后{days}个工作日内公开检查结果，"
            f"即最迟 {c.publication_due.isoformat()}{provisional_note(c)}（保密结果不公开）。"
        )
    return head + (
        f"公开期限（{days}个工作日）暂无法计算：{c.calendar_missing}年的节假日安排尚未载入，"
        "请管理员在配置中补充。"
    )


def provisional_note(c: store.Completion) -> str:
    if c.calendar_missing is None:
        return ""
    return f"（暂定：{c.calendar_missing}年节假日安排尚未载入，按周末计算，载入后重新计算）"


async def announce_completion(ctx: Context, c: store.Completion, *, reply: bool = True) -> None:
    """Art. 37 (谁检查、谁公开): the publication duty goes to the publishers and chiefs of the
    task's checking units and to the task's managers; whoever completed it (``reply``: not a
    due action's system actor) and holds no such duty learns only that the task is complete."""
    text = completion_text(c)
    units = sorted(
        set((await publication_store.unit_of_inspections(ctx.session, [c.task.id])).values())
    )
    duty = {
        *await ctx.repos.roles.holders(Role.PUBLISHER, units),
        *await ctx.repos.roles.holders(Role.CHIEF, units),
        *await task_managers(ctx, c.task),
    }
    me = ctx.actor.userid
    told = sorted(duty - {me})
    if reply and me in duty:
        ctx.reply(text)
    elif reply:
        orgs = "、".join([await ctx.repos.orgs.name(u) for u in units])
        ctx.reply(
            f"任务 {c.task.code}「{c.task.name}」的全部检查已有结果（完成日期 "
            f"{c.completed_on.isoformat()}）。检查结果由{orgs}公开（谁检查、谁公开，第37条），"
            "已通知其信息公开员和部门负责人，您无需操作。"
        )
    send(ctx, told, text)
    await ctx.audit(
        action="task.complete",
        subject=subject(c.task),
        payload={
            "completed_on": c.completed_on.isoformat(),
            "publication_due": c.publication_due.isoformat() if c.publication_due else None,
            "calendar_missing": c.calendar_missing,
            "missing": list(c.missing),
            "notified": told,
        },
    )


@router.due_action(store.PERIOD_END_DUE)
async def check_period_ended(data: dict[str, Any], ctx: Context) -> None:
    """Art. 37: the check period is over; the task completes with what is in, and its
    managers learn the publication deadline and what is still missing."""
    task = await ctx.session.get(Task, int(data["task_id"]))
    if task is None:
        return
    calendar = store.work_calendar(
        tuple(ctx.settings.calendar.holidays), tuple(ctx.settings.calendar.makeup_workdays)
    )
    completion = await store.complete_at_period_end(ctx.session, task, ctx.settings.tz, calendar)
    if completion is not None:
        await announce_completion(ctx, completion, reply=False)


@router.due_action(HOLD_DUE)
async def hold_ran_out(data: dict[str, Any], ctx: Context) -> None:
    """The description did not come in time: the hold lapses and the team may submit again."""
    inspection = await ctx.session.get(Inspection, int(data["inspection_id"]))
    row = await store.current(ctx.session, int(data["inspection_id"]))
    if inspection is None or row is None or row.state != HELD or row.held_until is None:
        return
    if row.held_until > ctx.now():  # a newer hold: wait for it
        await due.schedule(ctx.session, HOLD_DUE, str(data["ref"]), row.held_until, data)
        return
    holder, name, phrase = row.userid, row.name or row.userid, row.phrase
    await store.release_hold(ctx.session, inspection.id, ctx.now())
    conv = await ctx.session.get(Conversation, holder)
    if conv is not None and conv.data.get("inspection_id") == inspection.id:
        await ctx.repos.conversations.clear(holder)
    if inspection.status != "open":  # cancelled by a re-draw meanwhile: nobody to tell
        return
    n = inspection.number
    minutes = ctx.settings.results.description_minutes
    ctx.outbox.text(
        [holder],
        f"编号 {n}：{minutes}分钟内未收到「{phrase}」的问题说明，结果未记录。请重新选择结果并附说明，"
        f"或发送「结果 {n} {phrase} <说明>」。",
    )
    others = [u for u in await store.team_userids(ctx.session, inspection.id) if u != holder]
    send(ctx, others, f"编号 {n}：{name} 未在时限内填写说明，结果尚未记录，组内成员均可提交。")
    task = await task_of(ctx, inspection)
    await ctx.audit(  # as "system": the due worker's actor
        action="result.hold_lapsed",
        subject=subject(task),
        payload={
            "inspection": n,
            "holder": holder,
            "phrase": phrase,
            "notified": [holder, *others],
        },
    )


# --- 我的任务 ----------------------------------------------------------------------------------


# --- 记录 (Art. 35) --------------------------------------------------------------------------


# --- 更正 / 保密 (Art. 37) ------------------------------------------------------------------


# --- 检查详情 / 检查统计 ----------------------------------------------------------------------
