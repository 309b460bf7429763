"""授权 / 撤销授权 / 我的角色: role bindings, managed by admins inside their own subtree."""

from __future__ import annotations

from bot.chat.context import GRANTABLE, ROLE_LABELS, Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import within
from storage.directory.values import wecom_userid

router = Router("roles")

ROLE_NAMES: dict[str, Role] = {label: role for role, label in ROLE_LABELS.items()}
ROLE_NAMES.update({role.value: role for role in Role})
ROLE_NAMES.update({"负责人": Role.CHIEF, "公开员": Role.PUBLISHER})


def parse_role(word: str) -> Role:
    role = ROLE_NAMES.get(word)
    if role is None or role not in GRANTABLE:
        choices = "、".join(ROLE_LABELS[r] for r in GRANTABLE)
        raise UserError(f"未知角色「{word}」。可授予的角色：{choices}。")
    return role


def _name_of(msg: TextCommand) -> tuple[list[str], str]:
    """The (folded) words of the line without ``姓名=…``, and that name as typed (at most 40
    characters)."""
    words = msg.words()
    named = [o for w in words if (o := w.option()) and o[0] == "姓名"]
    if len(named) > 1:
        raise UserError("只能写一个「姓名=」。")
    name = named[0][2] if named else ""
    if named and not name:
        raise UserError("「姓名=」后写此人的姓名（1至40个字）。")
    within(name, 40, "姓名")  # RoleBinding.name: as typed, a longer one refused
    rest = [w.folded for w in words if not ((o := w.option()) and o[0] == "姓名")]
    return rest, name


async def _parse_binding(msg: TextCommand, ctx: Context, verb: str) -> tuple[str, Role, str, str]:
    parts, _ = _name_of(msg)
    if len(parts) not in (3, 4):
        raise UserError(f"用法：{verb} <企业微信账号> <角色> <单位代码> [科室代码]")
    userid, role_word, org_code = parts[:3]
    dept = parts[3] if len(parts) == 4 else ""
    role = parse_role(role_word)
    if await ctx.repos.orgs.get(org_code) is None:
        raise UserError(f"单位代码「{org_code}」不存在。单位以行政区划代码表示，如 150100。")
    await ctx.require_scope(Role.ADMIN, org_code)
    return userid, role, org_code, dept


async def _check_grantee(ctx: Context, userid: str, org_code: str, dept: str) -> str:
    """The account id and department checked as the directory import and CLI ``role grant``
    check them: the department's code (given by code or name), or refused."""
    try:
        wecom_userid(userid)
    except ValueError as e:
        raise UserError(f"{e}。") from None
    if not dept:
        return ""
    code, known = await ctx.repos.orgs.department(org_code, dept)
    if code is None:
        org = await ctx.repos.orgs.name(org_code)
        listed = "、".join(known) if known else "尚未导入任何科室"
        raise UserError(f"{org}没有科室「{dept}」（现有科室：{listed}）。")
    return code


@router.command(
    "授权",
    roles={Role.ADMIN},
    usage="授权 <账号> <角色> <单位代码> [科室] [姓名=<姓名>]",
    summary="授予角色（写明姓名，消息中显示姓名而非账号）",
)
async def grant(msg: TextCommand, ctx: Context) -> None:
    """Admins grant roles inside their own organisation's subtree; the name given is shown
    wherever the person appears (not in the inspector directory)."""
    userid, role, org_code, dept = await _parse_binding(msg, ctx, "授权")
    dept = await _check_grantee(ctx, userid, org_code, dept)
    _, name = _name_of(msg)
    added = await ctx.repos.roles.grant(
        userid, role, org_code, dept, ctx.actor.userid, ctx.now(), name=name
    )
    org = await ctx.repos.orgs.name(org_code)
    if not added:
        ctx.reply(f"{userid} 已是{org}的{ROLE_LABELS[role]}，无需重复授权。")
        return
    await ctx.audit(
        action="role.grant",
        subject=f"user:{userid}",
        payload={"role": role.value, "org": org_code, "dept": dept},
    )
    ctx.reply(f"已授予 {userid} {org}{ROLE_LABELS[role]}角色。")
    ctx.outbox.text([userid], f"您已被授予{org}{ROLE_LABELS[role]}角色。发送「帮助」查看可用命令。")


@router.command(
    "撤销授权",
    roles={Role.ADMIN},
    usage="撤销授权 <账号> <角色> <单位代码> [科室]",
    summary="撤销角色",
)
async def revoke(msg: TextCommand, ctx: Context) -> None:
    """Admins revoke roles inside their subtree; nobody removes the last admin of the region."""
    userid, role, org_code, dept = await _parse_binding(msg, ctx, "撤销授权")
    if role is Role.ADMIN and userid == ctx.actor.userid:
        raise UserError("不能撤销自己的管理员角色，请由其他管理员操作。")
    if not await ctx.repos.roles.revoke(userid, role, org_code, dept):
        raise UserError(f"{userid} 没有该角色，无需撤销。")
    await ctx.audit(
        action="role.revoke",
        subject=f"user:{userid}",
        payload={"role": role.value, "org": org_code, "dept": dept},
    )
    ctx.reply(
        f"已撤销 {userid} 的{ROLE_LABELS[role]}角色（{await ctx.repos.orgs.name(org_code)}）。"
    )


@router.command("我的角色", "角色", usage="我的角色", summary="查看您的角色与管辖范围")
async def my_roles(msg: TextCommand, ctx: Context) -> None:
    """Show the sender's bindings."""
    if not ctx.actor.known:
        ctx.reply("您目前没有任何角色。请联系本单位管理员开通。")
        return
    lines = ["您的角色："]
    for b in ctx.actor.bindings:
        dept = f" {b.dept_code}" if b.dept_code else ""
        lines.append(f"· {ROLE_LABELS[b.role]}：{await ctx.repos.orgs.name(b.org_code)}{dept}")
    if ctx.actor.inspector_org:
        lines.append(f"· 检查人员：{await ctx.repos.orgs.name(ctx.actor.inspector_org)}")
    ctx.reply("\n".join(lines))
