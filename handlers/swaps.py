"""申请替换 / 批准替换 / 驳回替换, and the department head's approval card (Art. 29).

A drawn inspector cannot be swapped at will: the member asks with a reason, their department
head (or a chief above) approves with one tap, and the replacement is the next inspector of the
draw's recorded cycle who may serve (``storage.draws.amend_swap``), appended to the draw's record.
An undecided request reminds the head and later lapses, through due actions the database owns.
"""

from __future__ import annotations

from typing import Any

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import CardEvent, TextCommand
from bot.chat.router import Router
from handlers.common import (
    CardRef,
    actor_name,
    card_decision,
    load_inspection,
    local,
    numbered,
    optional_reason,
    people,
    person,
    refusal_text,
    require_member,
    send,
    subject,
    target_of,
    task_of,
    within,
)
from handlers.reminders import calendar
from handlers.results import open_card, refresh_cards
from inspection.draw import BLOCK_REASONS, DrawError
from inspection.workdays import add_working_hours
from storage import draws, due
from storage import outbox as outbox_store
from storage import results as results_store
from storage import swaps as store
from storage.draws import DrawRefused, Member
from storage.models import (
    Inspection,
    Inspector,
    SwapRequest,
    Target,
    Task,
    TeamMember,
)
from storage.swaps import PENDING, SWAP_STATUS_LABELS

router = Router("swaps")
MAX_REASON = 500  # a reason or note: stored as typed, a longer one refused (never cut)

REMIND, LAPSE = "swap.remind", "swap.lapse"
OUTSIDE_DRAW = ("targeted", "joint")


# --- asking --------------------------------------------------------------------------------


@router.command(
    "申请替换",
    roles={Role.INSPECTOR},
    usage="申请替换 <编号> <原因>",
    summary="申请退出检查组，由部门负责人审批（第29条）",
)
async def request_swap(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: a member asks; the head decides; nobody is swapped at will."""
    number, _, reason = msg.text.partition(" ")
    reason = within(msg.typed_after_words(1), MAX_REASON, "替换原因") if reason.strip() else ""
    if not number or not reason:
        raise UserError(
            "用法：申请替换 <编号> <原因>，如「申请替换 1001 与检查对象存在利害关系」。"
        )
    inspection = await load_inspection(ctx, number, "申请替换")
    member = await require_member(ctx, inspection, "申请替换该检查的人员")
    n = inspection.number
    if inspection.origin in OUTSIDE_DRAW:
        raise UserError(f"编号 {n} 是双随机以外的检查，检查组由登记人调整，无需申请替换。")
    if inspection.result_code is not None:
        raise UserError(f"编号 {n} 已有检查结果，不能再替换检查人员。")
    pending = await store.pending_for(ctx.session, member.id)
    if pending is not None:
        raise UserError(
            f"您已于 {local(ctx, pending.created_at)} 申请替换（申请号 #{pending.id}），正在等待审批。"
        )
    inspector = await ctx.session.get(Inspector, member.inspector_id)
    assert inspector is not None
    heads = await store.heads_for(ctx.repos, inspector, exclude={ctx.actor.userid})
    if not heads:
        raise UserError(
            "没有找到可以审批您替换申请的部门负责人，请联系管理员授予本部门负责人角色。"
        )
    task = await task_of(ctx, inspection)
    request = await store.create(
        ctx.session, member, task_id=task.id, reason=reason, heads=heads, now=ctx.now()
    )
    target = await target_of(ctx, inspection)
    ctx.outbox.template_card(
        heads, approval_card(request, inspection, target, task, actor_name(ctx))
    )
    s = ctx.settings.swaps
    data = {"id": request.id}
    ref = f"swap:{request.id}"
    start, cal = ctx.now().astimezone(ctx.settings.tz), calendar(ctx)  # working hours only
    await due.schedule(
        ctx.session, REMIND, ref, add_working_hours(start, s.remind_hours, cal), data
    )
    await due.schedule(ctx.session, LAPSE, ref, add_working_hours(start, s.lapse_hours, cal), data)
    await ctx.audit(
        action="swap.request",
        subject=subject(task),
        payload={
            "request": request.id,
            "inspection": n,
            "leaving": member.certificate_no,
            "reason": reason,
            "notified": heads,
        },
    )
    who = "、".join(await people(ctx, heads))
    ctx.reply(
        f"已提交替换申请 #{request.id}（编号 {n}），等待部门负责人 {who} 审批（第29条）。"
        "获批前请继续按原安排准备检查。"
    )


def approval_card(
    request: SwapRequest, inspection: Inspection, target: Target, task: Task, name: str
) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "source": {"desc": "双随机、一公开 替换审批"},
        "main_title": {
            "title": f"替换申请 #{request.id}：编号 {inspection.number}",
            "desc": f"{name} 申请退出检查组（第29条）",
        },
        "sub_title_text": f"原因：{request.reason}"[:160],
        "horizontal_content_list": [
            {"keyname": "申请人", "value": f"{name}（{request.certificate_no}）"},
            {"keyname": "检查对象", "value": target.name[:30]},
            {"keyname": "任务", "value": task.code},
            {"keyname": "检查期", "value": f"{inspection.check_start}~{inspection.check_end}"},
        ],
        "task_id": request.card_task_id,
        "button_list": [
            {"text": "批准", "style": 1, "key": f"swap:{request.id}:approve"},
            {"text": "驳回", "style": 2, "key": f"swap:{request.id}:reject"},
        ],
    }


# --- deciding ------------------------------------------------------------------------------


@router.card("swap:")
async def swap_card(event: CardEvent, ctx: Context) -> None:
    """One tap on the approval card; duplicate clicks and two heads at once: decided once."""
    rid, approve = card_decision(event.event_key, "approve", "reject")
    card = CardRef(event.task_id, event.response_code)
    await decide(ctx, rid, approve=approve, note="", card=card)


@router.command(
    "批准替换",
    roles={Role.CHIEF},
    usage="批准替换 <申请号>",
    summary="批准检查人员的替换申请（替换人员随机产生）",
)
async def approve_text(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: the same decision as the card's 批准 button."""
    await decide(ctx, request_id(msg.text, "批准替换"), approve=True, note="", card=None)


@router.command(
    "驳回替换",
    roles={Role.CHIEF},
    usage="驳回替换 <申请号> [原因]",
    summary="驳回检查人员的替换申请",
)
async def reject_text(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: the same decision as the card's 驳回 button, with an optional reason."""
    rid, note = request_id(msg.text, "驳回替换"), optional_reason(msg, MAX_REASON, "驳回理由")
    await decide(ctx, rid, approve=False, note=note, card=None)


def request_id(text: str, verb: str) -> int:
    return numbered(text, verb, "申请号", "审批卡片")


async def decide(ctx: Context, rid: int, *, approve: bool, note: str, card: CardRef | None) -> None:
    request = await store.get(ctx.session, rid)
    if request is None:
        raise UserError(f"替换申请 #{rid} 不存在。")
    if request.userid == ctx.actor.userid:
        raise UserError("不能审批自己的替换申请（第29条），须由您的部门负责人审批。")
    member = await ctx.session.get(TeamMember, request.member_id)
    inspector = await ctx.session.get(Inspector, member.inspector_id) if member else None
    assert member is not None and inspector is not None
    bindings = [(b.role.value, b.org_code, b.dept_code) for b in ctx.actor.bindings]
    if not await store.may_decide(ctx.repos, bindings, inspector):
        raise UserError(f"替换申请 #{rid} 只能由申请人所在部门的负责人或上级负责人审批。")
    if request.status != PENDING:
        await tell_decided(ctx, request)
        return
    inspection = await ctx.session.get(Inspection, request.inspection_id)
    assert inspection is not None
    if approve and (not member.active or inspection.status != "open"):
        raise UserError(
            f"编号 {inspection.number} 已有结果、已撤销或该成员已不在检查组，无法执行替换。"
        )
    status = "approved" if approve else "rejected"
    if not await store.decide(
        ctx.session, rid, status=status, by=ctx.actor.userid, now=ctx.now(), note=note
    ):
        await tell_decided(ctx, await store.get(ctx.session, rid) or request)
        return
    await ctx.session.refresh(request)
    for kind in (REMIND, LAPSE):
        await due.cancel(ctx.session, kind, f"swap:{rid}")
    task = await task_of(ctx, inspection)
    target = await target_of(ctx, inspection)
    requester = await person(ctx, request.userid)
    if approve:
        await carry_out(ctx, request, inspection, task, requester)
    else:
        await turn_down(ctx, request, inspection, task, requester)
    if card is not None and card.response_code:
        label = "已批准" if approve else "已驳回"
        decided = approval_card(request, inspection, target, task, requester)
        decided["replace_text"] = f"{label}（{actor_name(ctx)}）"[:20]
        ctx.outbox.update_card(request.heads, card.response_code, decided)


async def tell_decided(ctx: Context, request: SwapRequest) -> None:
    label = SWAP_STATUS_LABELS.get(request.status, request.status).removeprefix("已")
    if request.status == "lapsed":
        ctx.reply(f"替换申请 #{request.id} 已逾期失效，无需处理。")
        return
    who = await person(ctx, request.decided_by) if request.decided_by else "负责人"
    when = f" 于 {local(ctx, request.decided_at)}" if request.decided_at else ""
    ctx.reply(f"替换申请 #{request.id} 已由 {who}{when} {label}，无需重复操作。")


async def carry_out(
    ctx: Context, request: SwapRequest, inspection: Inspection, task: Task, requester: str
) -> None:
    """The replacement is drawn from the recorded cycle; everyone concerned is told; the new
    member gets the task card and the group chat is updated."""
    head = actor_name(ctx)
    try:
        swap = await draws.amend_swap(
            ctx.session,
            inspection,
            leaving=request.certificate_no,
            reason=request.reason,
            approved_by=ctx.actor.userid,
            actor=ctx.actor.userid,
            now=ctx.now(),
            requested_at=request.created_at,
        )
    except DrawError as exc:
        raise UserError(unfilled_text(exc, request, inspection, task)) from None
    except DrawRefused as exc:
        if exc.reason == "replacement_unavailable":
            raise UserError(unavailable_text(exc, request, task)) from None
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    request.replacement_userid = swap.joining.userid
    request.amendment_id = swap.amendment.id
    n = inspection.number
    leaving, joining = swap.leaving, swap.joining
    card_task_id = await new_card_for(ctx, inspection, task, swap.amendment.id, joining.userid)
    # The cards the team already holds name the old team: each is updated while its response
    # code lasts, else voided by a short text (the new member's card was just sent).
    refreshed = await refresh_cards(
        ctx,
        inspection,
        task,
        None,
        row=await results_store.current(ctx.session, inspection.id),
        void_missing=True,
        skip=frozenset({card_task_id}),
    )
    ctx.outbox.text(
        [joining.userid],
        f"您经随机替换加入编号 {n} 的检查组（第29条，批准人 {head}），接替 {leaving.name}。"
        f"检查期 {inspection.check_start} 至 {inspection.check_end}，任务卡片随后送达。",
    )
    ctx.outbox.text(
        [leaving.userid],
        f"您的替换申请 #{request.id} 已获 {head} 批准：您已退出编号 {n} 的检查组，"
        f"由 {joining.name} 接替（按抽取记录的同一随机顺序产生）。",
    )
    team = await results_store.team_userids(ctx.session, inspection.id)
    mates = [u for u in team if u != joining.userid]
    send(
        ctx,
        mates,
        f"编号 {n} 检查组变更：{leaving.name} 退出，{joining.name} 加入"
        f"（第29条随机替换，批准人 {head}）。",
    )
    heads = [h for h in request.heads if h != ctx.actor.userid]
    send(ctx, heads, f"替换申请 #{request.id}（编号 {n}）已由 {head} 批准。")
    if inspection.chatid:
        await update_chat(ctx, inspection.chatid, leaving.userid, leaving.name, joining)
    ctx.reply(
        f"已批准替换申请 #{request.id}：编号 {n}，{leaving.name} → {joining.name}"
        f"（抽取记录第{swap.amendment.seq}项变更）。"
    )
    await ctx.audit(
        action="swap.approve",
        subject=subject(task),
        payload={
            "request": request.id,
            "inspection": n,
            "leaving": leaving.certificate_no,
            "joining": joining.certificate_no,
            "amendment": swap.amendment.seq,
            "card": card_task_id,
            "cards_updated_for": refreshed,
            "notified": sorted({joining.userid, leaving.userid, *mates, *heads}),
        },
    )


WHY_BLOCKED = BLOCK_REASONS | {"excluded": "停用、休假或无企业微信账号"}


def unfilled_text(exc: DrawError, request: SwapRequest, inspection: Inspection, task: Task) -> str:
    """Art. 29: nobody in the draw's recorded cycle can take the place: why, and what the chief
    can do (the request stays pending; nothing was changed)."""
    rid, n = request.id, inspection.number
    if exc.reason != "no_replacement":
        return f"替换申请 #{rid}（编号 {n}）无法执行：{exc}。申请仍待审批。"
    blocked = exc.blocked or {}
    why = "；".join(f"{label}{blocked[r]}人" for r, label in WHY_BLOCKED.items() if blocked.get(r))
    return (
        f"替换申请 #{rid}（编号 {n}）无法执行：抽取记录的轮转名单共{exc.pool_size}人，"
        f"没有人可以接替（{why or '均不符合条件'}）。替换人员只能按抽取时的名单顺序产生（第29条），"
        "抽取后加入名录的人员不在名单中。申请仍待审批，未作任何更改。您可以：\n"
        f"· 发送「驳回替换 {rid} <原因>」，由申请人按原安排检查；\n"
        f"· 名单中的人员恢复可选派后（如休假结束、重新启用），再发送「批准替换 {rid}」；\n"
        f"· 名单不足、本次抽取无法使用的，申请作废：「作废抽取 {task.code} <理由>」，"
        "经上级批准后以新任务替代（任务尚无检查结果时）。"
    )


def unavailable_text(exc: DrawRefused, request: SwapRequest, task: Task) -> str:
    """Art. 29: the person the cycle offers next cannot serve and has no register record from
    before the request, so nobody may pass them over (DRAW_ALGORITHM.md section 10)."""
    f, rid = exc.facts, request.id
    return (
        f"替换申请 #{rid} 无法执行：抽取记录依次产生的下一位 {f['name']}（{f['certificate']}）"
        "已停用或没有企业微信账号，且在申请替换前没有已确认的请假或回避登记，不能跳过（第29条）。"
        "申请仍待审批，未作任何更改。您可以：\n"
        f"· 发送「驳回替换 {rid} <原因>」，由申请人按原安排检查；\n"
        f"· 恢复其账号后再发送「批准替换 {rid}」，或为其登记请假后由申请人重新申请替换；\n"
        f"· 名单不足、本次抽取无法使用的，申请作废：「作废抽取 {task.code} <理由>」，"
        "经上级批准后以新任务替代（任务尚无检查结果时）。"
    )


async def update_chat(
    ctx: Context, chatid: str, leaving: str, leaving_name: str, joining: Member
) -> None:
    """The team's group chat follows the team: the leaver out, the replacement in. A leaver
    who owns the chat hands it to the replacement in the same change (WeCom removes an owner
    only when a new one is named)."""
    handover = await outbox_store.chat_owner(ctx.session, chatid) == leaving
    ctx.outbox.appchat_update(
        chatid,
        add=[joining.userid],
        remove=[leaving],
        owner=joining.userid if handover else None,
    )
    if handover:
        await outbox_store.hand_over_chat(ctx.session, chatid, joining.userid, ctx.now())
    note = f"，群主改为 {joining.name}" if handover else ""
    ctx.outbox.appchat_text(
        chatid, f"检查组变更：{leaving_name} 退出，{joining.name} 加入{note}（第29条）。"
    )


async def new_card_for(
    ctx: Context, inspection: Inspection, task: Task, amendment_id: int, joining: str
) -> str:
    """The new member's own task card: WeCom task ids are single use, so a new one."""
    rows = await results_store.team(ctx.session, inspection.id)
    seen = {m.card_task_id for m, _ in rows if m.card_task_id}
    card_task_id = f"insp-{inspection.number}-{len(seen) + 1}"
    for m, _ in rows:
        if m.amendment_id == amendment_id:
            m.card_task_id = card_task_id
    inspection.card_task_id = card_task_id
    card = await open_card(ctx, inspection, task, card_task_id)
    ctx.outbox.template_card([joining], card)
    return card_task_id


async def turn_down(
    ctx: Context, request: SwapRequest, inspection: Inspection, task: Task, requester: str
) -> None:
    head = actor_name(ctx)
    n = inspection.number
    why = f"，原因：{request.note}" if request.note else ""
    ctx.outbox.text(
        [request.userid],
        f"您的替换申请 #{request.id}（编号 {n}）已被 {head} 驳回{why}。请按原安排完成检查。",
    )
    heads = [h for h in request.heads if h != ctx.actor.userid]
    send(ctx, heads, f"替换申请 #{request.id}（编号 {n}）已由 {head} 驳回{why}。")
    ctx.reply(f"已驳回替换申请 #{request.id}（编号 {n}，{requester}）{why}。")
    await ctx.audit(
        action="swap.reject",
        subject=subject(task),
        payload={
            "request": request.id,
            "inspection": n,
            "leaving": request.certificate_no,
            "note": request.note,
            "notified": [request.userid, *heads],
        },
    )


# --- timers --------------------------------------------------------------------------------


async def _pending(
    ctx: Context, data: dict[str, Any]
) -> tuple[SwapRequest, Inspection, Task] | None:
    request = await store.get(ctx.session, int(data["id"]))
    if request is None or request.status != PENDING:
        return None
    inspection = await ctx.session.get(Inspection, request.inspection_id)
    assert inspection is not None
    return request, inspection, await task_of(ctx, inspection)


@router.due_action(REMIND)
async def remind(data: dict[str, Any], ctx: Context) -> None:
    """An undecided request reminds the head (after 24 hours by default)."""
    found = await _pending(ctx, data)
    if found is None:
        return
    request, inspection, task = found
    request.reminded_at = ctx.now()
    s = ctx.settings.swaps
    ctx.outbox.text(
        request.heads,
        f"提醒：替换申请 #{request.id}（编号 {inspection.number}，原因：{request.reason}）"
        f"已等待{s.remind_hours:g}小时（不计节假日）未审批。请在审批卡片上批准或驳回，或发送「批准替换 {request.id}」"
        f"/「驳回替换 {request.id} <原因>」；提交{s.lapse_hours:g}小时仍未审批的自动失效。",
    )
    await ctx.audit(  # as "system": the due worker's actor
        action="swap.remind",
        subject=subject(task),
        payload={"request": request.id, "inspection": inspection.number, "notified": request.heads},
    )


@router.due_action(LAPSE)
async def lapse(data: dict[str, Any], ctx: Context) -> None:
    """Undecided after 72 hours by default: the request lapses and the requester is told."""
    found = await _pending(ctx, data)
    if found is None:
        return
    request, inspection, task = found
    if not await store.decide(ctx.session, request.id, status="lapsed", by="system", now=ctx.now()):
        return
    await due.cancel(ctx.session, REMIND, f"swap:{request.id}")
    hours = ctx.settings.swaps.lapse_hours
    ctx.outbox.text(
        [request.userid],
        f"您的替换申请 #{request.id}（编号 {inspection.number}）{hours:g}小时内未获审批，已失效。"
        "请按原安排完成检查；确需替换的，可以重新申请。",
    )
    ctx.outbox.text(
        request.heads, f"替换申请 #{request.id}（编号 {inspection.number}）已逾期失效。"
    )
    await ctx.audit(
        action="swap.lapse",
        subject=subject(task),
        payload={
            "request": request.id,
            "inspection": inspection.number,
            "notified": [request.userid, *request.heads],
        },
    )
