"""请假 / 回避 and the chief's confirmation: the register of leave and declared conflicts (Art. 29).

A swap's replacement is the next person of the draw's cycle; the only people it may pass over
are those with a reason on record before the swap was asked for (DRAW_ALGORITHM.md section
10). The inspector enters the reason here, their department head confirms it (a button card
or ``确认请假 <编号>``), and only a confirmed record counts, for the draw's pool and for swaps.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import CardEvent, TextCommand
from bot.chat.router import Router
from handlers.common import (
    CardRef,
    actor_name,
    card_decision,
    local,
    numbered,
    optional_reason,
    people,
    person,
    within,
)
from inspection.uscc import EXAMPLE_USCC, normalise_uscc
from storage import register as store
from storage import swaps as swap_store
from storage.directory.values import parse_date
from storage.models import Inspector, RegisterEntry, Target

router = Router("register")

MAX_REASON = 500
MAX_COMPANY = 200  # RegisterEntry.company


def _subject(entry: RegisterEntry) -> str:
    return f"register:{entry.record_id}"


async def _own_record(ctx: Context, verb: str) -> Inspector:
    inspector = await ctx.repos.inspectors.active_by_userid(ctx.actor.userid)
    if inspector is None:
        raise UserError(f"「{verb}」只适用于检查人员名录库中的在岗检查人员。")
    return inspector


def _day(word: str, what: str, today: dt.date) -> dt.date:
    try:
        day = parse_date(word, today=today, allow_future=True)
    except ValueError:
        day = None
    if day is None:
        raise UserError(f"{what}「{word}」不是日期，请写作 2026-12-01。")
    return day


# --- entering -------------------------------------------------------------------------------


@router.command(
    "请假",
    roles={Role.INSPECTOR},
    usage="请假 <起始日期> <结束日期> <理由>",
    summary="登记请假，经部门负责人确认后生效（第29条）",
)
async def enter_leave(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: a leave on record (confirmed by the chief) is the only reason a swap may pass
    someone over, and keeps them out of draws whose check window it overlaps."""
    words = msg.text.split(" ")
    if len(words) < 3 or not msg.typed_after_words(2).strip():
        raise UserError(
            "用法：请假 <起始日期> <结束日期> <理由>，如「请假 2026-12-01 2026-12-05 病假」。"
        )
    today = ctx.now().astimezone(ctx.settings.tz).date()
    start, end = _day(words[0], "起始日期", today), _day(words[1], "结束日期", today)
    if end < start:
        raise UserError(f"结束日期 {end} 早于起始日期 {start}。")
    if end < today:
        raise UserError(f"结束日期 {end} 已过，无需登记请假。")
    inspector = await _own_record(ctx, "请假")
    heads = await _heads(ctx, inspector)
    entry = await store.create(
        ctx.session,
        inspector,
        kind=store.LEAVE,
        entered_by=ctx.actor.userid,
        now=ctx.now(),
        date_from=start,
        date_until=end,
        reason=within(msg.typed_after_words(2), MAX_REASON, "请假事由"),
        heads=heads,
    )
    await _submitted(ctx, entry, heads, f"{start} 至 {end}")


@router.command(
    "回避",
    roles={Role.INSPECTOR},
    usage="回避 <检查对象名称/信用代码/许可证编号> <理由>",
    summary="申报与检查对象的利害关系，经部门负责人确认后生效（第29条）",
)
async def declare_conflict(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: a declared conflict (confirmed by the chief) keeps the person off that target's
    team in draws and swaps. A credit code names the company: all its targets."""
    word, _, rest = msg.text.partition(" ")
    if not word or not rest.strip():
        raise UserError(
            "用法：回避 <检查对象名称/信用代码/许可证编号> <理由>，"
            f"如「回避 {EXAMPLE_USCC} 配偶在该公司任职」。"
        )
    # Stored as typed; longer than their fields hold: refused, never cut.
    company = within(msg.typed_after_words(0).partition(" ")[0], MAX_COMPANY, "检查对象")
    reason = within(msg.typed_after_words(1), MAX_REASON, "回避理由")
    keys = await _targets(ctx, word)
    if not keys:
        raise UserError(f"检查对象名录库中没有「{word}」，请填写信用代码、许可证编号或单位全称。")
    inspector = await _own_record(ctx, "回避")
    heads = await _heads(ctx, inspector)
    entry = await store.create(
        ctx.session,
        inspector,
        kind=store.CONFLICT,
        entered_by=ctx.actor.userid,
        now=ctx.now(),
        targets=keys,
        company=company,
        reason=reason,
        heads=heads,
    )
    await _submitted(ctx, entry, heads, f"{entry.company}（检查对象 {len(keys)} 个）")


async def _targets(ctx: Context, word: str) -> list[str]:
    """Exact key (permit number) or credit code (every target of that company), else the
    exact name."""
    code = normalise_uscc(word)
    rows = await ctx.session.execute(
        select(Target.key).where(or_(Target.key == word, Target.key == code, Target.uscc == code))
    )
    keys = sorted(set(rows.scalars()))
    if keys:
        return keys
    rows = await ctx.session.execute(select(Target.key).where(Target.name == word))
    return sorted(set(rows.scalars()))


async def _heads(ctx: Context, inspector: Inspector) -> list[str]:
    heads = await swap_store.heads_for(ctx.repos, inspector, exclude={ctx.actor.userid})
    if not heads:
        raise UserError("没有找到可以确认您登记的部门负责人，请联系管理员授予本部门负责人角色。")
    return heads


async def _submitted(ctx: Context, entry: RegisterEntry, heads: list[str], what: str) -> None:
    label = store.KIND_LABELS[entry.kind]
    ctx.outbox.template_card(heads, confirm_card(entry, actor_name(ctx), what))
    await ctx.audit(
        action="register.enter",
        subject=_subject(entry),
        payload={
            "record": entry.record_id,
            "version": entry.version,
            "kind": entry.kind,
            "certificate": entry.certificate_no,
            "from": entry.date_from.isoformat() if entry.date_from else None,
            "until": entry.date_until.isoformat() if entry.date_until else None,
            "targets": entry.targets,
            "reason": entry.reason,
            "notified": heads,
        },
    )
    who = "、".join(await people(ctx, heads))
    ctx.reply(
        f"已提交{label}登记 #{entry.record_id}（{what}），等待部门负责人 {who} 确认。"
        "确认后生效；确认前提出的替换申请不能以此为由跳过您（第29条）。"
    )


def confirm_card(entry: RegisterEntry, name: str, what: str) -> dict[str, Any]:
    label = store.KIND_LABELS[entry.kind]
    return {
        "card_type": "button_interaction",
        "source": {"desc": "双随机、一公开 请假与回避登记"},
        "main_title": {
            "title": f"{label}登记 #{entry.record_id}",
            "desc": f"{name}（{entry.certificate_no}）申请{label}（第29条）",
        },
        "sub_title_text": f"理由：{entry.reason}"[:160],
        "horizontal_content_list": [
            {"keyname": label, "value": what[:30]},
        ],
        "task_id": f"reg-{entry.record_id}",
        "button_list": [
            {"text": "确认", "style": 1, "key": f"reg:{entry.record_id}:confirm"},
            {"text": "驳回", "style": 2, "key": f"reg:{entry.record_id}:reject"},
        ],
    }


# --- confirming -----------------------------------------------------------------------------


@router.card("reg:")
async def register_card(event: CardEvent, ctx: Context) -> None:
    """One tap on the confirmation card; duplicate clicks and two chiefs: decided once."""
    rid, confirm = card_decision(event.event_key, "confirm", "reject")
    card = CardRef(event.task_id, event.response_code)
    await decide(ctx, rid, confirm=confirm, note="", card=card)


@router.command(
    "确认请假",
    "确认回避",
    roles={Role.CHIEF},
    usage="确认请假 <编号>",
    summary="确认检查人员的请假或回避登记（第29条）",
)
async def confirm_text(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: the same decision as the card's 确认 button."""
    await decide(ctx, record_number(msg.text, "确认请假"), confirm=True, note="", card=None)


@router.command(
    "驳回请假",
    "驳回回避",
    roles={Role.CHIEF},
    usage="驳回请假 <编号> [原因]",
    summary="驳回检查人员的请假或回避登记",
)
async def reject_text(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: the same decision as the card's 驳回 button, with an optional reason."""
    rid, note = record_number(msg.text, "驳回请假"), optional_reason(msg, MAX_REASON, "驳回理由")
    await decide(ctx, rid, confirm=False, note=note, card=None)


def record_number(text: str, verb: str) -> int:
    return numbered(text, verb, "编号", "确认卡片")


async def _record(ctx: Context, rid: int) -> tuple[RegisterEntry, Inspector]:
    entry = await store.latest(ctx.session, rid)
    if entry is None:
        raise UserError(f"登记 #{rid} 不存在。")
    inspector = await ctx.session.get(Inspector, entry.inspector_id)
    assert inspector is not None
    return entry, inspector


async def _may_decide(ctx: Context, inspector: Inspector) -> bool:
    bindings = [(b.role.value, b.org_code, b.dept_code) for b in ctx.actor.bindings]
    return await swap_store.may_decide(ctx.repos, bindings, inspector)


def _what(entry: RegisterEntry) -> str:
    if entry.kind == store.LEAVE:
        return f"{entry.date_from} 至 {entry.date_until}"
    return f"{entry.company or '、'.join(entry.targets)}"


async def decide(ctx: Context, rid: int, *, confirm: bool, note: str, card: CardRef | None) -> None:
    entry, inspector = await _record(ctx, rid)
    label = store.KIND_LABELS[entry.kind]
    if entry.userid == ctx.actor.userid or inspector.userid == ctx.actor.userid:
        raise UserError(f"不能确认自己的{label}登记（第29条），须由您的部门负责人确认。")
    if not await _may_decide(ctx, inspector):
        raise UserError(f"{label}登记 #{rid} 只能由登记人所在部门的负责人或上级负责人确认。")
    if entry.state != store.PENDING or entry.version != 1:
        state = store.STATE_LABELS.get(entry.state, entry.state)
        who = await person(ctx, entry.confirmed_by) if entry.confirmed_by else ""
        ctx.reply(f"{label}登记 #{rid} {state}{f'（{who}）' if who else ''}，无需重复操作。")
        return
    if not await store.decide(
        ctx.session, entry, confirm=confirm, by=ctx.actor.userid, now=ctx.now(), note=note
    ):
        ctx.reply(f"{label}登记 #{rid} 已由他人处理，无需重复操作。")
        return
    head, name, what = actor_name(ctx), inspector.name, _what(entry)
    verdict = "已确认" if confirm else "已驳回"
    why = f"，原因：{note}" if note else ""
    if entry.userid:
        ctx.outbox.text(
            [entry.userid],
            f"您的{label}登记 #{rid}（{what}）{verdict}（{head}）{why}。"
            + ("自确认时起生效（第29条）。" if confirm else ""),
        )
    others = [h for h in entry.heads if h != ctx.actor.userid]
    if others:
        ctx.outbox.text(
            others,
            f"{label}登记 #{rid}（{name}，{what}）已由 {head} {verdict.removeprefix('已')}。",
        )
    if card is not None and card.response_code:
        decided = confirm_card(entry, name, what)
        decided["replace_text"] = f"{verdict}（{head}）"[:20]
        ctx.outbox.update_card(list(entry.heads), card.response_code, decided)
    await ctx.audit(
        action="register.confirm" if confirm else "register.reject",
        subject=_subject(entry),
        payload={
            "record": rid,
            "version": entry.version,
            "kind": entry.kind,
            "certificate": entry.certificate_no,
            "effective_at": entry.effective_at.isoformat() if entry.effective_at else None,
            "note": note,
            "notified": sorted({entry.userid, *others} - {""}),
        },
    )
    ctx.reply(f"{label}登记 #{rid}（{name}，{what}）{verdict}{why}。")


# --- withdrawing and listing ------------------------------------------------------------------


@router.command(
    "撤销请假",
    "撤销回避",
    roles={Role.INSPECTOR, Role.CHIEF},
    usage="撤销请假 <编号>",
    summary="撤销自己的（或所辖人员的）请假或回避登记，原记录保留",
)
async def withdraw(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: a record withdrawn stops counting from now; its versions stay on record."""
    rid = record_number(msg.text, "撤销请假")
    entry, inspector = await _record(ctx, rid)
    label = store.KIND_LABELS[entry.kind]
    own = ctx.actor.userid in (entry.userid, inspector.userid)
    if not own and not await _may_decide(ctx, inspector):
        raise UserError(f"{label}登记 #{rid} 只能由本人或其部门负责人撤销。")
    if entry.state not in (store.PENDING, store.CONFIRMED):
        state = store.STATE_LABELS.get(entry.state, entry.state)
        raise UserError(f"{label}登记 #{rid} {state}，无需撤销。")
    if entry.state == store.PENDING:
        ok = await store.decide(
            ctx.session, entry, confirm=False, by=ctx.actor.userid, now=ctx.now(), note="本人撤销"
        )
        if not ok:
            raise UserError(f"{label}登记 #{rid} 已由他人处理，请重新查看。")
        latest = entry
    else:
        latest = await store.new_version(
            ctx.session, entry, by=ctx.actor.userid, now=ctx.now(), state=store.WITHDRAWN
        )
    await ctx.audit(
        action="register.withdraw",
        subject=_subject(entry),
        payload={"record": rid, "version": latest.version, "kind": entry.kind},
    )
    if not own and entry.userid:
        ctx.outbox.text([entry.userid], f"您的{label}登记 #{rid} 已由 {actor_name(ctx)} 撤销。")
    ctx.reply(f"已撤销{label}登记 #{rid}（{_what(entry)}），自现在起不再生效；原记录保留。")


@router.command(
    "我的登记",
    roles={Role.INSPECTOR},
    usage="我的登记",
    summary="查看本人的请假与回避登记",
)
async def my_records(msg: TextCommand, ctx: Context) -> None:
    """Art. 29: what the register holds for me, each record's latest version."""
    inspector = await _own_record(ctx, "我的登记")
    entries = await store.of_person(ctx.session, inspector.id)
    if not entries:
        ctx.reply(
            "您没有请假或回避登记。发送「请假 <起> <止> <理由>」或「回避 <检查对象> <理由>」登记。"
        )
        return
    lines = [
        f"#{e.record_id} {store.KIND_LABELS[e.kind]} {_what(e)} "
        f"{store.STATE_LABELS.get(e.state, e.state)}"
        + (
            f"（{local(ctx, e.effective_at)} 起）"
            if e.effective_at and e.state == store.CONFIRMED
            else ""
        )
        for e in entries[:20]
    ]
    ctx.reply("您的请假与回避登记：\n" + "\n".join(lines))
