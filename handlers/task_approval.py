"""批准任务 / 退回任务: the league/city bureau decides on its branches' tasks (Art. 5, 20)."""

from __future__ import annotations

import unicodedata

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import MANAGERS, load_task, manages, refusal_text, send
from storage import task_approval
from storage.draws import DrawRefused
from storage.models import Task

router = Router("task_approval")

APPROVE_USAGE = "批准任务 <任务> [授权=<分局管理员账号>]"
REFUSE_USAGE = "退回任务 <任务> <原因>"


async def require_city(ctx: Context, task: Task) -> str:
    """The admins and chiefs of the branch's league/city bureau (or of the region) decide."""
    city = await task_approval.approving_org(ctx.repos, task)
    if city is None:
        raise UserError(f"任务 {task.code} 不是旗县区分局的任务，无需批准。")
    if await manages(ctx, city):
        return city
    name = await ctx.repos.orgs.name(city)
    raise UserError(f"任务 {task.code} 由{name}的管理员或部门负责人批准（第5条）。")


@router.command(
    "批准任务",
    roles=MANAGERS,
    usage=APPROVE_USAGE,
    summary="盟市局批准旗县区分局的抽查任务（第5条）",
)
async def approve(msg: TextCommand, ctx: Context) -> None:
    """Art. 5: the league/city bureau approves a branch's task; it may authorise one admin of
    that branch to seal and witness the draw, which is otherwise its own."""
    words = unicodedata.normalize("NFKC", msg.text).split()
    task = await load_task(ctx, msg.text, "批准任务")
    await require_city(ctx, task)
    authorised = None
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if key != "授权" or not value.strip():
            raise UserError(f"不认识「{word}」。用法：{APPROVE_USAGE}")
        authorised = value.strip()
    branch_admins = await ctx.repos.roles.holders(Role.ADMIN, [task.org_code])
    if authorised is not None and authorised not in branch_admins:
        raise UserError(f"「{authorised}」不是该分局的管理员，不能授权其抽取。")
    try:
        await task_approval.approve(
            ctx.session, task, actor=ctx.actor.userid, now=ctx.now(), authorised=authorised
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    who = f"授权分局管理员 {authorised} " if authorised else "由本局"
    text = (
        f"任务 {task.code}「{task.name}」已批准（第5条），{who}发送「抽查 {task.code}」组织抽取。"
    )
    ctx.reply(text)
    send(ctx, [u for u in branch_admins if u != ctx.actor.userid], text)


@router.command(
    "退回任务",
    roles=MANAGERS,
    usage=REFUSE_USAGE,
    summary="盟市局退回旗县区分局的抽查任务（第5条）",
)
async def refuse(msg: TextCommand, ctx: Context) -> None:
    """Art. 5: the league/city bureau refuses a branch's task, saying why; it is never drawn."""
    code, _, reason = msg.text.strip().partition(" ")
    task = await load_task(ctx, code, "退回任务")
    await require_city(ctx, task)
    reason = msg.typed_after_words(1) if reason.strip() else ""  # stored as typed
    if not reason.strip():
        raise UserError(f"请写明退回原因。用法：{REFUSE_USAGE}")
    try:
        await task_approval.refuse(
            ctx.session, task, actor=ctx.actor.userid, now=ctx.now(), reason=reason.strip()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    text = f"任务 {task.code}「{task.name}」已退回（第5条），原因：{reason.strip()}"
    ctx.reply(text)
    branch_admins = await ctx.repos.roles.holders(Role.ADMIN, [task.org_code])
    send(ctx, [u for u in branch_admins if u != ctx.actor.userid], text)
