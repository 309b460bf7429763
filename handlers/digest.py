"""提醒群: an organisation's admins have its reminders sent as one morning digest to a group
chat the bot creates, instead of one message per person (Art. 37, 40, 43).

WeCom's appchat/create takes 2 to 500 members from the app's visible range and no template
cards in the chat: the digest is a text.
"""

from __future__ import annotations

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from storage import reminders as store

router = Router("digest")

MEMBERS = (Role.ADMIN, Role.CHIEF, Role.PUBLISHER)
MAX_MEMBERS = 500  # WeCom's limit for a group chat


@router.command(
    "提醒群",
    roles=(Role.ADMIN,),
    usage="提醒群 开通|关闭 [单位代码]",
    summary="本单位的提醒改为每天早上在群聊中汇总发送，或恢复逐人发送",
)
async def digest_chat(msg: TextCommand, ctx: Context) -> None:
    """Art. 37, 40, 43: an admin opens (开通) or closes (关闭) the organisation's digest chat."""
    words = msg.text.split()
    action = words[0] if words else ""
    if action not in ("开通", "关闭"):
        raise UserError("请发送「提醒群 开通」或「提醒群 关闭」（可加单位代码）。")
    org = await admin_org(ctx, words[1] if len(words) > 1 else None)
    if action == "开通":
        await open_chat(ctx, org)
    else:
        await close_chat(ctx, org)


async def admin_org(ctx: Context, code: str | None) -> str:
    mine = sorted(set(ctx.actor.orgs_for(Role.ADMIN)))
    if code is None:
        if len(mine) == 1:
            return mine[0]
        raise UserError(f"您是多个单位的管理员（{'、'.join(mine)}），请写明单位代码。")
    if code not in mine:
        raise UserError(f"您不是单位 {code} 的管理员。")
    return code


async def open_chat(ctx: Context, org: str) -> None:
    """Admins, chiefs and publishers of the organisation itself, at least 2 (WeCom)."""
    name = await ctx.repos.orgs.name(org)
    if await store.digest_chat(ctx.session, org) is not None:
        raise UserError(f"{name}的提醒群已开通；如需重建，先发送「提醒群 关闭」。")
    members = sorted(
        {u for role in MEMBERS for u in await ctx.repos.roles.holders(role.value, [org])}
    )
    if len(members) < 2:
        raise UserError(
            f"{name}只有 {len(members)} 位管理员、部门负责人或信息公开员，"
            "企业微信群聊至少需要 2 人：请先授权其他人员后再开通。"
        )
    if len(members) > MAX_MEMBERS:
        raise UserError(f"{name}有 {len(members)} 位成员，超过企业微信群聊上限 {MAX_MEMBERS} 人。")
    chatid = "rm" + ctx.entropy.token_bytes(8).hex()
    owner = ctx.actor.userid if ctx.actor.userid in members else members[0]
    ctx.outbox.appchat_create(chatid, f"{name}双随机提醒"[:50], owner, members)
    await store.open_digest_chat(ctx.session, org, chatid, ctx.actor.userid, ctx.now())
    await ctx.audit(action="digest_chat_opened", subject=org, payload={"chatid": chatid})
    ctx.reply(
        f"已创建群聊「{name}双随机提醒」（{len(members)} 人）。今后本单位人员的待办和逾期提醒"
        "将在工作日早上汇总发到该群，不再逐人发送。"
    )


async def close_chat(ctx: Context, org: str) -> None:
    name = await ctx.repos.orgs.name(org)
    row = await store.digest_chat(ctx.session, org)
    if row is None:
        raise UserError(f"{name}尚未开通提醒群，提醒正逐人发送。")
    ctx.outbox.appchat_text(row.chatid, "本群的提醒汇总已关闭，今后提醒逐人发送。")
    await store.close_digest_chat(ctx.session, org)
    await ctx.audit(action="digest_chat_closed", subject=org, payload={"chatid": row.chatid})
    ctx.reply(f"{name}的提醒群已关闭，今后提醒逐人发送。")
