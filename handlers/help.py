"""帮助: what this user may do, by role."""

from __future__ import annotations

from bot.chat.context import ROLE_LABELS, Context, Role
from bot.chat.inbound import OtherEvent, TextCommand
from bot.chat.router import Router

router = Router("help")

EXAMPLE_ORG = "150100"


def help_text(ctx: Context) -> str:
    roles = ctx.actor.roles
    lines = []
    if roles:
        labels = "、".join(ROLE_LABELS[r] for r in sorted(roles))
        lines.append(f"您的身份：{labels}")
    else:
        lines.append("您还不是本系统的用户，请联系本单位管理员开通。以下命令人人可用：")
    lines.append("可用命令：")
    # Usage examples name 呼和浩特市 (150100); shown with the user's own organisation.
    own = sorted({b.org_code for b in ctx.actor.bindings})
    for command in ctx.commands(roles):
        aliases = f"（也可用：{'、'.join(command.aliases)}）" if command.aliases else ""
        usage = command.usage.replace(EXAMPLE_ORG, own[0]) if own else command.usage
        lines.append(f"· {usage} — {command.summary}{aliases}")
    return "\n".join(lines)


@router.command("帮助", "help", "?", "？", usage="帮助", summary="列出您可用的命令")
async def show_help(msg: TextCommand, ctx: Context) -> None:
    """List the commands this user's roles allow."""
    ctx.reply(help_text(ctx))


@router.event("event:enter_agent")
async def greet(event: OtherEvent, ctx: Context) -> None:
    """A user opened the app: a short greeting for known users only (no noise otherwise)."""
    if Role.INSPECTOR in ctx.actor.roles or ctx.actor.bindings:
        ctx.reply("您好！发送「帮助」查看可用命令。")
