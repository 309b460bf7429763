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

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import CardEvent, TextCommand
from bot.chat.router import Router
from handlers.common import (
    CardRef,
    actor_name,
    inspection_card,
    item_names,
    load_inspection,
    local,
    people,
    require_member,
    send,
    subject,
    target_of,
    task_managers,
    task_of,
    within,
)
from handlers.publication import page_url, publish_late
from inspection.results import ResultCode, needs_description, parse_result
from storage import cards, due, followups
from storage import publication as publication_store
from storage import results as store
from storage.models import (
    Conversation,
    Draw,
    InboundEvent,
    Inspection,
    InspectionResult,
    Target,
    Task,
)
from storage.results import CHANNEL_LABELS, HELD, RECORDED, Submission
from storage.tasks import rule_params

router = Router("results")

DESCRIPTION_STATE = "result.description"
CONFIRM_STATE = "result.confirm"  # a description shown back, awaiting 确认 / 修改
CONFIRM_WORDS = frozenset({"确认", "确定", "是", "对"})
EDIT_WORDS = frozenset({"修改", "重写", "改"})
HOLD_DUE = "result.hold"
MAX_DESCRIPTION = 500
MAX_DEPARTMENT = 100  # InspectionResult.department: a longer name is refused, never cut
DESCRIBED = frozenset(c.value for c in ResultCode if needs_description(c))


# --- small helpers -----------------------------------------------------------------------------


def split_description(code: str, text: str, number: int) -> tuple[str, str]:
    """(description, department), as typed: phrase 5 names the department it went to, written
    as people write it («移交给鄂尔多斯市水务局，取水口未登记», «市水务局 废水直排入河»)."""
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise UserError(
            f"说明最长{MAX_DESCRIPTION}个字，您输入了{len(text)}个字，请精简后重新发送；"
            "详细情况请附现场检查记录号。"
        )
    if code != ResultCode.transferred.value:
        return text, ""
    department, description = parse_transfer(text)
    if not department:
        raise UserError(
            f"编号 {number}「发现问题已移交有关部门」请写明移交的部门和问题说明，"
            "如「移交给市水务局，废水直排入河」或「市水务局 废水直排入河」。"
        )
    if not description:
        raise UserError(
            f"编号 {number}：已知移交给{department}，请再写明移交的问题，"
            f"如「{department} 废水直排入河」。"
        )
    return description, within(department, MAX_DEPARTMENT, "移交部门")


TRANSFER_LEAD = re.compile(r"^(?:已经?)?(?:(?:移交|移送|转交)(?:给|至|到)?|交给|交由)?\s*")
SEPARATOR = re.compile(r"[\s，,：:；;。、]+")
AUTHORITY = re.compile(
    r"^(?P<dept>\S{1,40}?(?:公安分局|公安局|派出所|检察院|法院|委员会|局|委|厅|办公室|办|中心|"
    r"站|队|所|院|部门))(?P<rest>.*)$"
)
JUDICIARY_WORDS = ("公安", "派出所", "检察院", "检察机关", "司法机关", "警方")


def parse_transfer(text: str) -> tuple[str, str]:
    """(department, what was handed over) from a natural reply; ("", "") when no department
    can be told apart."""
    body = TRANSFER_LEAD.sub("", text.strip(), count=1)
    head, sep, rest = body.partition(next(iter(SEPARATOR.findall(body)), "\0"))
    if sep and head:
        return head, rest.strip()
    found = AUTHORITY.match(body)
    if found is None:
        return "", ""
    return found["dept"], found["rest"].strip(" ，,：:；;。")


def to_judiciary(department: str) -> bool:
    """The police or a procuratorate: a suspected crime handed to the judiciary (Art. 34), not
    a transfer to another authority (phrase 5)."""
    return any(w in department for w in JUDICIARY_WORDS)


async def owes_description(ctx: Context, first_word: str) -> bool:
    """A description that happens to begin like a command (「结果显示……」「记录显示……」) is
    still the description the member owes, when what follows is not an inspection number."""
    if first_word.removeprefix("编号").isdigit():
        return False
    state = await ctx.repos.conversations.state(ctx.actor.userid, ctx.now())
    return state in (DESCRIPTION_STATE, CONFIRM_STATE)  # a new description replaces the draft


def whole(msg: TextCommand) -> TextCommand:
    """The message as the person sent it, command word and spacing included."""
    return msg.whole or msg


def parse_code(inspection: Inspection, word: str) -> str:
    """The result code a member or chief typed: a phrase number or the phrase itself."""
    try:
        return str(parse_result(word, rule_params(inspection.check_start).extra_result_phrases))
    except ValueError as exc:
        raise UserError(str(exc)) from None


# --- submitting a result -------------------------------------------------------------------


@router.card("result:")
async def result_card(event: CardEvent, ctx: Context) -> None:
    """Art. 38: the result chosen on the task card and submitted (two taps). A tap on a card
    that no longer shows the inspection as it is (voided after a swap, the tapper swapped out,
    the result already in) answers with its current state and team and changes nothing."""
    inspection = await load_inspection(ctx, event.event_key.removeprefix("result:"), "结果")
    await cards.remember(ctx.session, event.task_id, event.response_code, ctx.now())
    chosen = event.options("result")
    if await cards.voided(ctx.session, event.task_id, ctx.actor.userid) or (
        await store.active_member(ctx.session, inspection.id, ctx.actor.userid) is None
        and await store.was_member(ctx.session, inspection.id, ctx.actor.userid)
    ):
        await tell_stale(ctx, inspection)
        return
    await require_member(ctx, inspection)
    if not chosen:
        raise UserError("请先在卡片上选择一项检查结果，再点「提交」。")
    if chosen[0] not in store.phrases_for(inspection.check_start):
        raise UserError(
            f"卡片上的选项已失效。请发送「结果 {inspection.number} <结果文字>」提交，"
            "发送「结果」查看可选的结果。"
        )
    card = CardRef(event.task_id, event.response_code)
    await submit(ctx, inspection, chosen[0], channel="card", text=None, card=card)


async def state_text(ctx: Context, inspection: Inspection) -> str:
    """An inspection as it stands now: its result (or who is writing one) and its team."""
    n = inspection.number
    row = await store.current(ctx.session, inspection.id)
    names = [n_ for _, n_ in await store.team(ctx.session, inspection.id)]
    if inspection.status == "cancelled":
        state = "已撤销（任务经批准重新抽取）"
    elif row is None:
        state = "尚未提交结果"
    elif row.state == HELD:
        state = f"{row.name or row.userid}正在填写「{row.phrase}」的问题说明"
    else:
        state = f"已由{row.name or row.userid}于 {local(ctx, row.at)} 提交「{row.phrase}」"
    return f"编号 {n} 目前{state}；检查组：{'、'.join(names) or '无'}。"


async def tell_stale(ctx: Context, inspection: Inspection) -> None:
    """A tap on an out-of-date card: nothing changes; the tapper learns how things stand."""
    n = inspection.number
    mine = await store.active_member(ctx.session, inspection.id, ctx.actor.userid) is not None
    row = await store.current(ctx.session, inspection.id)
    if not mine:
        how = f"您已被替换出编号 {n} 的检查组，无需操作。"
    elif row is not None and row.state == RECORDED:
        how = f"如需更正，请联系部门负责人发送「更正 {n} <结果文字> <原因>」。"
    else:
        how = f"请以最新卡片为准，或发送「结果 {n} <结果文字>」提交。"
    ctx.reply(f"该卡片已过期，未作任何更改。{await state_text(ctx, inspection)}{how}")


@router.command(
    "结果",
    "提交结果",
    roles={Role.INSPECTOR},
    usage="结果 <编号> <结果文字或1-7> [说明]",
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
            "用法：结果 <编号> <结果文字或序号> [说明]，如「结果 1001 未发现问题」或"
            f"「结果 1001 发现问题已责令整改 废气排放超标」。可选结果：\n{choices}"
        )
    if await owes_description(ctx, words[0]):
        await description_arrived(whole(msg), ctx)
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
        await tell_taken(ctx, inspection, existing, code)
        return
    if code in DESCRIBED and not text:
        await start_hold(ctx, inspection, code, phrase, channel, card)
        return
    description, department = split_description(code, text, inspection.number) if text else ("", "")
    if department and to_judiciary(department):
        await hand_to_judiciary(ctx, inspection, department, description, held=False)
        return
    s = Submission(
        code, phrase, ctx.actor.userid, actor_name(ctx), channel, description, department
    )
    won, row = await store.claim(ctx.session, inspection, s, now=ctx.now())
    if not won:
        await tell_taken(ctx, inspection, row, code)
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


async def tell_taken(
    ctx: Context, inspection: Inspection, row: InspectionResult, chosen: str | None = None
) -> None:
    """A later submitter gets one message: what was recorded, by whom, that their own choice
    was not, and how to ask for a correction (or who is filling the result in)."""
    n = inspection.number
    mine = row.userid == ctx.actor.userid
    who = "您" if mine else (row.name or row.userid)
    phrases = store.phrases_for(inspection.check_start)
    if row.state == RECORDED:
        detail = f"，说明：{row.description}" if row.description else ""
        lost = ""
        if chosen is not None and not (mine and chosen == row.code):
            lost = f"您选择的「{phrases.get(chosen, chosen)}」未记录。"
        task = await task_of(ctx, inspection)
        chiefs = await people(ctx, await task_managers(ctx, task))
        ask = f"部门负责人（{'、'.join(chiefs)}）" if chiefs else "部门负责人"
        ctx.reply(
            f"编号 {n} 的检查结果已由{who}于 {local(ctx, row.at)} 提交"
            f"（{CHANNEL_LABELS.get(row.channel, row.channel)}）：「{row.phrase}」{detail}。"
            f"{lost}以先提交的为准；如需更正，请联系{ask}发送"
            f"「更正 {n} <结果文字> <原因>」。"
        )
        return
    until = local(ctx, row.held_until) if row.held_until else ""
    lost = ""
    if chosen is not None and not (mine and chosen == row.code):
        lost = f"您选择的「{phrases.get(chosen, chosen)}」未记录。"
    ctx.reply(
        f"编号 {n} 的结果正由{who}填写问题说明（已选「{row.phrase}」，{until} 前有效）。"
        f"{lost}以先选择的为准：超时未确认的，组内成员可以重新提交；记录后如需更正，"
        f"请联系部门负责人发送「更正 {n} <结果文字> <原因>」。"
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
        await tell_taken(ctx, inspection, row, code)
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
        "移交的部门和问题说明（如「移交给市水务局，废水直排入河」）"
        if code == ResultCode.transferred.value
        else "问题说明（一两句话即可）"
    )
    ctx.reply(
        f"编号 {n}：您选择了「{phrase}」。请在{minutes}分钟内（{local(ctx, until)} 前）直接回复"
        f"{what}，确认后记录；也可发送「结果 {n} {phrase} <说明>」。超时未收到说明的，结果不记录。"
    )
    others = [u for u in await store.team_userids(ctx.session, inspection.id) if u != s.userid]
    racing = await pending_taps(ctx, inspection, others)  # each gets tell_taken instead
    send(
        ctx,
        [u for u in others if u not in racing],
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


async def held_row(ctx: Context) -> tuple[Conversation, Inspection, InspectionResult] | None:
    """The member's own live hold and its conversation; when the hold is gone, the member is
    told why and None is returned."""
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
            await tell_taken(ctx, inspection, row)
            return None
        raise UserError(f"编号 {inspection.number} 的保留已过期，请重新选择检查结果。")
    return conv, inspection, row


@router.conversation(DESCRIPTION_STATE)
async def description_arrived(msg: TextCommand, ctx: Context) -> None:
    """The description owed for a problem phrase, sent as the member's next message: shown
    back as what will be recorded, to confirm (a mistyped command is not a finding)."""
    found = await held_row(ctx)
    if found is None:
        return
    conv, inspection, row = found
    description, department = split_description(row.code, msg.typed, inspection.number)
    if department and to_judiciary(department):
        await hand_to_judiciary(ctx, inspection, department, description, held=True)
        return
    seq = int(conv.data.get("drafts", 0)) + 1
    data = conv.data | {
        "drafts": seq,
        "description": description,
        "department": department,
    }
    assert row.held_until is not None
    await ctx.repos.conversations.set(ctx.actor.userid, CONFIRM_STATE, data, row.held_until)
    n = inspection.number
    shown = f"移交部门：{department}\n" if department else ""
    token = ctx.entropy.token_bytes(4).hex()
    # One card: what will be recorded, whole (as typed), with 确认 / 修改; typing 确认 or 修改,
    # or a new description, does the same where cards cannot be tapped.
    ctx.outbox.template_card(
        [ctx.actor.userid],
        {
            "card_type": "button_interaction",
            "source": {"desc": "双随机、一公开 检查结果"},
            "main_title": {
                "title": f"编号 {n} 将记录为：{row.phrase}"[:36],
                "desc": f"请确认（{local(ctx, row.held_until)} 前）",
            },
            "sub_title_text": f"{shown}说明：{description}\n"
            "点「确认」记录；要改写点「修改」或直接发送新的说明（也可回复「确认」「修改」）。",
            "task_id": f"desc-{n}-{seq}-{token}",
            "button_list": [
                {"text": "确认", "style": 1, "key": f"desc:{n}:{seq}:confirm"},
                {"text": "修改", "style": 2, "key": f"desc:{n}:{seq}:edit"},
            ],
        },
    )


@router.conversation(CONFIRM_STATE)
async def confirm_reply(msg: TextCommand, ctx: Context) -> None:
    """The text fallback of the confirmation card: 确认, 修改, or a new description."""
    word = msg.text.strip()
    if word in CONFIRM_WORDS:
        await confirm_description(ctx, None)
    elif word in EDIT_WORDS:
        await edit_description(ctx)
    else:
        await description_arrived(msg, ctx)


@router.card("desc:")
async def confirm_card(event: CardEvent, ctx: Context) -> None:
    """确认 / 修改 on the confirmation card; only the newest draft's card counts."""
    parts = event.event_key.split(":")
    if len(parts) != 4 or parts[3] not in ("confirm", "edit") or not parts[2].isdigit():
        raise UserError("该卡片已失效或无法识别。")
    await cards.remember(ctx.session, event.task_id, event.response_code, ctx.now())
    conv = await ctx.repos.conversations.get(ctx.actor.userid, ctx.now())
    current = (
        conv is not None
        and conv.state == CONFIRM_STATE
        and str(conv.data.get("number")) == parts[1]
        and int(conv.data.get("drafts", 0)) == int(parts[2])
    )
    if not current:
        inspection = await load_inspection(ctx, parts[1], "结果")
        ctx.reply(
            "该确认卡片已过期（已有更新的说明、已确认或已超时），未作任何更改。"
            + await state_text(ctx, inspection)
        )
        return
    if parts[3] == "edit":
        await edit_description(ctx)
        return
    await confirm_description(ctx, CardRef(event.task_id, event.response_code))


async def edit_description(ctx: Context) -> None:
    found = await held_row(ctx)
    if found is None:
        return
    conv, inspection, row = found
    assert row.held_until is not None
    await ctx.repos.conversations.set(
        ctx.actor.userid, DESCRIPTION_STATE, conv.data, row.held_until
    )
    ctx.reply(
        f"请直接发送编号 {inspection.number}「{row.phrase}」的新说明（{local(ctx, row.held_until)} 前）。"
    )


async def confirm_description(ctx: Context, confirm_card_ref: CardRef | None) -> None:
    """The member confirmed the description shown back: the result is recorded."""
    found = await held_row(ctx)
    if found is None:
        return
    conv, inspection, row = found
    me = ctx.actor.userid
    s = Submission(
        row.code,
        row.phrase,
        me,
        actor_name(ctx),
        str(conv.data.get("channel") or "text"),
        str(conv.data.get("description") or ""),
        str(conv.data.get("department") or ""),
    )
    won, row = await store.claim(ctx.session, inspection, s, now=ctx.now())
    if not won:
        await ctx.repos.conversations.clear(me)
        await tell_taken(ctx, inspection, row, s.code)
        return
    if confirm_card_ref is not None and await cards.spend(
        ctx.session, confirm_card_ref.response_code, ctx.now()
    ):
        ctx.outbox.update_button(
            [me], confirm_card_ref.response_code, "已确认", task_id=confirm_card_ref.task_id
        )
    code = str(conv.data.get("response_code") or "")
    card = CardRef(str(conv.data.get("task_id") or ""), code) if code else None
    await after_record(ctx, inspection, row, card)


async def hand_to_judiciary(
    ctx: Context, inspection: Inspection, department: str, description: str, *, held: bool
) -> None:
    """Art. 34: the police or a procuratorate is the judiciary: a suspected crime handed over
    is recorded as such (``storage.followups``), not as phrase 5 (another authority). The
    result itself is still to be chosen; a hold on phrase 5 is let go."""
    n = inspection.number
    on = ctx.now().astimezone(ctx.settings.tz).date()
    await followups.add(
        ctx.session,
        inspection,
        followups.JUDICIARY,
        on=on,
        by=ctx.actor.userid,
        now=ctx.now(),
        body=department,
    )
    if held:
        await store.drop_hold(ctx.session, inspection.id, ctx.actor.userid)
        await ctx.repos.conversations.clear(ctx.actor.userid)
        await due.cancel(ctx.session, HOLD_DUE, f"inspection:{inspection.id}")
    task = await task_of(ctx, inspection)
    await ctx.audit(
        action=f"result.{followups.JUDICIARY}",
        subject=subject(task),
        payload={
            "inspection": n,
            "body": department,
            "description": description,
            "on": on.isoformat(),
            "from": "transfer_reply",
        },
    )
    phrases = store.phrases_for(inspection.check_start)
    filed = phrases[ResultCode.case_filed.value]
    later = phrases[ResultCode.pending_followup.value]
    ctx.reply(
        f"移交{department}属于「涉嫌犯罪，移送司法机关」（第34条），不是「发现问题已移交有关部门」"
        f"（该项指移交其他行政部门）。已记录：编号 {n} 于 {on} 移送{department}。\n"
        f"检查结果尚未记录，请另行提交，如「结果 {n} {filed} {description}」"
        f"或「结果 {n} {later} {description}」。"
    )


async def pending_taps(ctx: Context, inspection: Inspection, userids: list[str]) -> set[str]:
    """Teammates whose own tap on this inspection's card is queued behind this one: each will
    get one message of their own (``tell_taken``), not the team's notice too."""
    if not userids:
        return set()
    rows = await ctx.session.execute(
        select(InboundEvent.userid).where(
            InboundEvent.status == "pending",
            InboundEvent.kind == "event:template_card_event",
            InboundEvent.userid.in_(userids),
            InboundEvent.payload.contains(f"result:{inspection.number}]]"),
            InboundEvent.id != (ctx.event_id or 0),
        )
    )
    return set(rows.scalars())


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
    updated = await refresh_cards(
        ctx, inspection, task, card, row=row, void_missing=True, notify=False
    )
    holders = await store.card_holders(ctx.session, inspection.id)
    voided = {u for users in holders.values() for u in users} - set(updated)
    void_note = "\n您此前收到的该检查任务卡片已失效（无法更新），无需再点选。"
    ctx.reply(text + (void_note if me in voided else ""))
    others = [u for u in userids if u != me]
    racing = await pending_taps(ctx, inspection, others)
    told = [u for u in others if u not in racing]
    send(ctx, [u for u in told if u not in voided], text)
    send(ctx, [u for u in told if u in voided], text + void_note)
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
        unit = await publication_store.unit_of(ctx.session, inspection)
        publication = await publication_store.publication_of(ctx.session, task.id, unit)
        if publication is not None:
            if ctx.settings.public.enabled and publication.url == page_url(ctx, task, unit):
                await publish_late(ctx, task, publication, "")
                text += "本单位已在本系统公开页面公开该任务，此结果已同步公开。"
            else:
                text += (
                    f"本单位已于{local(ctx, publication.published_at)}公开该任务，请在门户网站补充"
                    f"公开后发送「公示 {task.code} <网址>」登记。"
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


async def refresh_cards(
    ctx: Context,
    inspection: Inspection,
    task: Task,
    clicked: CardRef | None,
    *,
    row: InspectionResult | None,
    void_missing: bool = False,
    notify: bool = True,
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """Every task card of the inspection shows it as it now is (its team; its result, choices
    closed): each copy is updated with one response code of its own (the click's for the card
    clicked, else the newest unspent one within 72 hours). With ``void_missing`` a copy left
    without a code is voided (a tap on it then changes nothing), and with ``notify`` its active
    holders get a short text saying so (else the caller says it in its own message). If WeCom
    refuses an update, the result stands: everyone has the text."""
    holders = await store.card_holders(ctx.session, inspection.id)
    active = set(await store.team_userids(ctx.session, inspection.id))
    target = await target_of(ctx, inspection)
    updated: list[str] = []
    for task_id, users in holders.items():
        if task_id in skip:
            continue
        code = None
        if clicked is not None and clicked.task_id == task_id and clicked.response_code:
            await cards.remember(ctx.session, task_id, clicked.response_code, ctx.now())
            if await cards.spend(ctx.session, clicked.response_code, ctx.now()):
                code = clicked.response_code
        code = code or await cards.take(ctx.session, task_id, ctx.now())
        if code is not None:
            if row is not None and row.state == RECORDED:
                content = closed_card(ctx, inspection, target, row, task_id)
            else:
                content = await open_card(ctx, inspection, task, task_id)
            ctx.outbox.update_card(users, code, content)
            updated += users
        elif void_missing:
            await cards.void(ctx.session, task_id, users, ctx.now())
            told = [u for u in users if u in active and notify]
            send(
                ctx,
                told,
                f"您此前收到的编号 {inspection.number} 任务卡片已失效（检查组已变更）。"
                f"{await state_text(ctx, inspection)}"
                f"提交结果请发送「结果 {inspection.number} <结果文字> [说明]」。",
            )
    return list(dict.fromkeys(updated))


async def open_card(
    ctx: Context, inspection: Inspection, task: Task, task_id: str
) -> dict[str, Any]:
    """The task card as it stands now (its current team), under its own task id."""
    draw = await ctx.session.get(Draw, inspection.draw_id) if inspection.draw_id else None
    assignment = await store.assignment_of(ctx.session, inspection)
    return inspection_card(
        assignment,
        task,
        await item_names(ctx, task),
        card_task_id=task_id,
        unwitnessed=draw is not None and not draw.witnessed,
    )


def closed_card(
    ctx: Context, inspection: Inspection, target: Target, row: InspectionResult, task_id: str
) -> dict[str, Any]:
    phrases = store.phrases_for(inspection.check_start)
    return {
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
    marked = await store.deregister_target(
        ctx.session, inspection, by=ctx.actor.userid, now=ctx.now()
    )
    for key in marked:  # every site of the visit (Art. 19)
        await ctx.audit(
            action="target.change",
            subject=f"target:{key}",
            payload={
                "changes": [{"field": "status", "after": "deregistered"}],
                "evidence": f"inspection:{inspection.number}",
                "task": task.code,
            },
        )


async def reinstate_if_corrected(
    ctx: Context, inspection: Inspection, task: Task, before: str, seq: int
) -> None:
    """A correction away from phrase 4 gives each site back its earlier status (Art. 13, 38),
    with the correction as the evidence."""
    if before != ResultCode.deregistered.value:
        return
    evidence = f"correction:{inspection.number}:{seq}"
    restored = await store.reinstate_target(
        ctx.session, inspection, by=ctx.actor.userid, now=ctx.now(), evidence=evidence
    )
    for key, status in restored:
        await ctx.audit(
            action="target.change",
            subject=f"target:{key}",
            payload={
                "changes": [{"field": "status", "before": "deregistered", "after": status}],
                "evidence": evidence,
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
    if c.publication_due is not None and c.recorded_later:
        return head + (
            f"检查结果在完成日期后录入，按第37条须在录入后{days}个工作日内公开，"
            f"即最迟 {c.publication_due.isoformat()}{provisional_note(c)}（保密结果不公开）。"
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
    draft = ""
    if conv is not None and conv.data.get("inspection_id") == inspection.id:
        said = (str(conv.data.get(k) or "") for k in ("department", "description"))
        draft = " ".join(w for w in said if w)
        await ctx.repos.conversations.clear(holder)
    if inspection.status != "open":  # cancelled by a re-draw meanwhile: nobody to tell
        return
    n = inspection.number
    minutes = ctx.settings.results.description_minutes
    if draft:  # received but never confirmed: shown back, to resend in one line
        ctx.outbox.text(
            [holder],
            f"编号 {n}：已收到「{phrase}」的问题说明「{draft}」，但{minutes}分钟内未确认，"
            f"结果未记录。如无误，请发送「结果 {n} {phrase} {draft}」直接记录。",
        )
    else:
        ctx.outbox.text(
            [holder],
            f"编号 {n}：{minutes}分钟内未收到「{phrase}」的问题说明，结果未记录。"
            f"请重新选择结果并附说明，或发送「结果 {n} {phrase} <说明>」。",
        )
    others = [u for u in await store.team_userids(ctx.session, inspection.id) if u != holder]
    late = "确认" if draft else "填写"
    send(ctx, others, f"编号 {n}：{name} 未在时限内{late}说明，结果尚未记录，组内成员均可提交。")
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
