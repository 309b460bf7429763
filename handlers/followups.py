"""移送司法 / 处罚决定: what followed an inspection (Art. 34, 38). A suspected crime is handed
to the judiciary (beside case filing and transfer to another authority, result phrases 3 and
5), and a penalty decision made later is linked to the inspection, to be published with it."""

from __future__ import annotations

import datetime as dt
import re

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import load_inspection, require_manager, subject, task_of, within
from storage import followups, public
from storage import results as store
from storage.models import Inspection

router = Router("followups")

FOLLOW_UP_ROLES = {Role.INSPECTOR, Role.CHIEF, Role.ADMIN}
DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
FOLLOW_UP_MAX = 100


async def parse(
    msg: TextCommand, ctx: Context, verb: str, what: str
) -> tuple[Inspection, str, dt.date]:
    """(inspection, what was typed after the number, the date: the last word or today)."""
    words = msg.text.split(" ")
    usage = f"用法：{verb} <编号> <{what}> [日期]，如「{verb} 1001 {EXAMPLES[verb]} 2026-12-10」。"
    if len(words) < 2:
        raise UserError(usage)
    inspection = await load_inspection(ctx, words[0], verb)
    task = await task_of(ctx, inspection)
    if await store.active_member(ctx.session, inspection.id, ctx.actor.userid) is None:
        await require_manager(ctx, task)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    on, typed = today, msg.typed_after_words(1)
    if len(words) > 2 and DATE.fullmatch(words[-1]):
        try:
            on = dt.date(*map(int, words[-1].split("-")))
        except ValueError:
            raise UserError(f"日期「{words[-1]}」无效。{usage}") from None
        typed = re.sub(r"\s*\S+\s*$", "", typed)  # the date was the last word
    if on > today or on < inspection.check_start:
        raise UserError(
            f"日期须在检查期开始（{inspection.check_start}）之后、今天（{today}）之前。{usage}"
        )
    text = typed.strip()
    if not text:
        raise UserError(usage)
    within(text, FOLLOW_UP_MAX, what)  # the column's length: refused, not cut
    return inspection, text, on


EXAMPLES = {"移送司法": "某市公安局", "处罚决定": "内环罚〔2026〕12号"}


@router.command(
    "移送司法",
    roles=FOLLOW_UP_ROLES,
    usage="移送司法 <编号> <接收机关> [日期]",
    summary="涉嫌犯罪，移送司法机关：记录接收机关和日期（第34条）",
)
async def hand_to_judiciary(msg: TextCommand, ctx: Context) -> None:
    """Art. 34: a suspected crime found in an inspection is handed to the judiciary."""
    inspection, body, on = await parse(msg, ctx, "移送司法", "接收机关")
    await record(ctx, inspection, followups.JUDICIARY, on, body=body)
    ctx.reply(f"已记录：编号 {inspection.number} 涉嫌犯罪，于 {on} 移送{body}（第34条）。")


@router.command(
    "处罚决定",
    roles=FOLLOW_UP_ROLES,
    usage="处罚决定 <编号> <决定书文号> [日期]",
    summary="关联检查后作出的行政处罚决定，随检查结果公开（第38条）",
)
async def link_penalty(msg: TextCommand, ctx: Context) -> None:
    """Art. 38: a penalty decision made afterwards is linked to the inspection and published
    with it."""
    inspection, reference, on = await parse(msg, ctx, "处罚决定", "决定书文号")
    await record(ctx, inspection, followups.PENALTY, on, reference=reference)
    ctx.reply(
        f"已记录：编号 {inspection.number} 的行政处罚决定 {reference}（{on}），"
        "将随检查结果公开（第38条）。"
    )
    if await public.republish(ctx.session, inspection, ctx.now(), ctx.settings.tz, corrected=False):
        ctx.reply(f"编号 {inspection.number} 已公开的结果旁已加上该处罚决定。")


async def record(
    ctx: Context,
    inspection: Inspection,
    kind: str,
    on: dt.date,
    *,
    body: str = "",
    reference: str = "",
) -> None:
    added = await followups.add(
        ctx.session,
        inspection,
        kind,
        on=on,
        by=ctx.actor.userid,
        now=ctx.now(),
        body=body,
        reference=reference,
    )
    if not added:
        raise UserError(f"编号 {inspection.number} 已记录过「{body or reference}」。")
    task = await task_of(ctx, inspection)
    await ctx.audit(
        action=f"result.{kind}",
        subject=subject(task),
        payload={
            "inspection": inspection.number,
            "body": body,
            "reference": reference,
            "on": on.isoformat(),
        },
    )
