"""帮助: what this user may do, by role; 帮助 <命令>: one command's usage, with an example
filled from the user's own data (their task, an inspection of theirs)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from bot.chat.context import ROLE_LABELS, CommandInfo, Context, Role
from bot.chat.inbound import OtherEvent, TextCommand
from bot.chat.router import Router
from handlers.common import MANAGERS
from inspection.params import NoParamsInEffect, RuleParams
from inspection.quotas import TIER_LABELS
from inspection.taskspec import percent
from inspection.uscc import EXAMPLE_USCC
from storage import params as param_store
from storage import results as result_store
from storage import swaps as swap_store
from storage.models import Inspection, Target, Task

router = Router("help")

# Usage examples name 呼和浩特市 (150100); they are shown with the user's own organisation.
EXAMPLE_ORG = "150100"
PLACEHOLDER = re.compile(r"<([^<>]+)>")
OPTIONAL = re.compile(r"\s*\[[^\[\]]*\]")
# What a placeholder of a usage line becomes in an example, when the user's data has nothing
# better (the user's own task, inspection and request come first: ``own_data``).
EXAMPLE_WORDS = {
    "原因": "借调外地",
    "说明": "废气排放超标",
    "新说明": "废气处理设施未运行，已责令整改",
    "记录号": "XCJL-2026-0815",
    "新记录号": "XCJL-2026-0816",
    "接收机关": "某市公安局",
    "决定书文号": "内环罚〔2026〕12号",
    "结果": "未发现问题",
    "结果文字": "未发现问题",
    "结果文字或1-7": "未发现问题",
    "1-7 或 结果文字": "未发现问题",
    "结果序号或文字": "发现问题已责令整改",
    "账号": "zhangsan",
    "角色": "部门负责人",
    "姓名": "张三",
    "名称": "第四季度双随机抽查",
    "理由": "抽取范围有误",
    "见证值": "20261201",
    "数值": "3890.27",
    "公开随机源说明": "上证综指2026-12-15收盘价（休市则顺延至下一交易日）",
    "投诉|转办|移送|突发事件|核安全|数据线索": "投诉",
    "牵头部门": "呼和浩特市市场监督管理局",
    "牵头部门的任务": "2026年第4批联合抽查",
    "抽取编号": "SC-0042",
    "名称或信用代码": "示例化工有限公司",
    "信用代码": EXAMPLE_USCC,
    "信用代码或许可证号": EXAMPLE_USCC,
    "检查对象名称/信用代码/许可证编号": "示例化工有限公司",
}


def help_text(ctx: Context) -> str:
    roles = ctx.actor.roles
    lines = []
    if roles:
        labels = "、".join(ROLE_LABELS[r] for r in sorted(roles))
        lines.append(f"您的身份：{labels}")
    else:
        lines.append("您还不是本系统的用户，请联系本单位管理员开通。以下命令人人可用：")
    lines.append("可用命令（发送「帮助 <命令>」查看用法和示例）：")
    for command in ctx.commands(roles):
        aliases = f"（也可用：{'、'.join(command.aliases)}）" if command.aliases else ""
        lines.append(f"· {own_org(ctx, command.usage)} — {command.summary}{aliases}")
    return "\n".join(lines)


def own_org(ctx: Context, usage: str) -> str:
    """``usage`` with the example organisation replaced by the user's own (the first bound)."""
    own = sorted({b.org_code for b in ctx.actor.bindings})
    return usage.replace(EXAMPLE_ORG, own[0]) if own else usage


async def own_data(ctx: Context) -> dict[str, str]:
    """Placeholder values from what this user has: an inspection of theirs (or of a task they
    manage), their task, a request awaiting their decision."""
    found: dict[str, str] = {}
    owed = await result_store.owed_by(ctx.session, ctx.actor.userid, ctx.now())
    orgs = sorted(await ctx.visible_orgs(MANAGERS))
    if owed:
        found["编号"] = str(owed[0].number)
        task = await ctx.session.scalar(
            select(Task.code)
            .join(Inspection, Inspection.task_id == Task.id)
            .where(Inspection.number == owed[0].number)
        )
        if task:
            found["任务"] = task
    elif orgs:
        number = await ctx.session.scalar(
            select(Inspection.number)
            .join(Task, Task.id == Inspection.task_id)
            .where(Task.org_code.in_(orgs))
            .order_by(Inspection.id.desc())
            .limit(1)
        )
        if number is not None:
            found["编号"] = str(number)
    if "任务" not in found and orgs:
        code = await ctx.session.scalar(
            select(Task.code).where(Task.org_code.in_(orgs)).order_by(Task.id.desc()).limit(1)
        )
        if code:
            found["任务"] = code
    if Role.CHIEF in ctx.actor.roles:
        mine = [r for r in await swap_store.pending(ctx.session) if ctx.actor.userid in r.heads]
        if mine:
            found["申请号"] = str(mine[0].id)
    if "任务" in found:
        found["任务代码"] = found["任务"]
    if orgs:  # a target the user can see
        target = (
            await ctx.session.execute(
                select(Target.name, Target.uscc).where(Target.org_code.in_(orgs)).limit(1)
            )
        ).first()
        if target is not None:
            name, uscc = target
            found["名称或信用代码"] = found["检查对象名称/信用代码/许可证编号"] = name
            if uscc:
                found["信用代码"] = found["信用代码或许可证号"] = uscc
    today = ctx.now().astimezone(ctx.settings.tz).date()
    found["起始日期"] = (today + dt.timedelta(days=7)).isoformat()
    found["结束日期"] = (today + dt.timedelta(days=11)).isoformat()
    found["检查日期"] = (today - dt.timedelta(days=3)).isoformat()  # a joint check made (Art. 7)
    found["单位代码"] = own_org(ctx, EXAMPLE_ORG)
    if (rules := _rules_today(ctx)) is not None:  # Art. 25, 28: what is in force today
        for tier, ratio in rules.ratios().items():
            found[f"{TIER_LABELS[tier]}比例"] = percent(ratio)
        found["人数"] = str(rules.team_size)
    return found


def _rules_today(ctx: Context) -> RuleParams | None:
    try:
        return param_store.rule_params(ctx.now().astimezone(ctx.settings.tz).date())
    except NoParamsInEffect:
        return None


def rules_line(ctx: Context) -> str:
    """The quarterly minimums and the team size in force today (Art. 25, 28, 45), for a usage
    line whose ratios are placeholders: the task's ratios may be higher, never lower."""
    rules = _rules_today(ctx)
    if rules is None:
        return "今日没有施行中的抽查规则参数（第45条），请联系自治区管理员。"
    ratios = "、".join(f"{TIER_LABELS[t]}{percent(r)}" for t, r in rules.ratios().items())
    return (
        f"现行规则（自{rules.effective_from.isoformat()}起施行）：季度最低抽查比例{ratios}"
        f"（第25条，任务可定得更高）；每组{rules.team_size}人（第28条）。示例中的数值即现行值。"
    )


def example(usage: str, data: dict[str, str]) -> str:
    """The usage line with its placeholders filled and its optional parts left out."""
    words = EXAMPLE_WORDS | data
    text = OPTIONAL.sub("", usage)
    return PLACEHOLDER.sub(lambda m: words.get(m[1].strip(), m[0]), text).strip()


def find(commands: list[CommandInfo], name: str) -> CommandInfo | None:
    for c in commands:
        if name == c.name or name in c.aliases:
            return c
    return None


@router.command("帮助", "help", "?", "？", usage="帮助 [命令]", summary="列出您可用的命令")
async def show_help(msg: TextCommand, ctx: Context) -> None:
    """List the commands this user's roles allow, or one command with an example."""
    name = msg.text.strip().split(" ", 1)[0] if msg.text.strip() else ""
    if not name:
        ctx.reply(help_text(ctx))
        return
    command = find(list(ctx.commands(ctx.actor.roles)), name)
    if command is None:
        ctx.reply(f"没有您可用的命令「{name[:20]}」。发送「帮助」查看您可用的全部命令。")
        return
    data = await own_data(ctx)
    usage = own_org(ctx, command.usage)
    lines = [f"「{command.name}」{command.summary}", f"用法：{usage}"]
    filled = example(usage, data)
    if filled != usage and "<" not in filled:
        source = "（按您的数据）" if {"编号", "任务", "申请号"} & data.keys() else ""
        lines.append(f"示例{source}：{filled}")
    if "<特殊比例>" in usage:
        lines.append(rules_line(ctx))
    if command.aliases:
        lines.append(f"也可用：{'、'.join(command.aliases)}")
    ctx.reply("\n".join(lines))


@router.event("event:enter_agent")
async def greet(event: OtherEvent, ctx: Context) -> None:
    """A user opened the app: a short greeting for known users only (no noise otherwise)."""
    if Role.INSPECTOR in ctx.actor.roles or ctx.actor.bindings:
        ctx.reply("您好！发送「帮助」查看可用命令。")
