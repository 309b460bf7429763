"""一单两库 in chat: look up targets and inspectors, change a target's tier, tags and status,
the annual counts, and the one-time upload link for spreadsheets (Art. 11-17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, func, select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from inspection.origins import RANDOM_CHECK_ORIGINS
from inspection.quotas import TIER_LABELS
from storage import results, uploads
from storage.directory.choices import (
    GRADE_CHOICES,
    STATUS_CHOICES,
    TARGET_STATUS_LABELS,
    TIER_CHOICES,
)
from storage.directory.importer import CHAT_EDIT
from storage.directory.lookups import find_targets
from storage.models import DirectoryHistory, Inspection, Inspector, Target, TeamMember
from storage.results import ORIGIN_LABELS
from storage.uploads import link_key

router = Router("directory")

ORIGIN_ORDER = {"random": 0, "joint": 1, "construction": 2, "targeted": 3}
STAFF = {Role.ADMIN, Role.CHIEF, Role.PUBLISHER, Role.ENFORCEMENT}
MAX_LISTED = 8


def _year(ctx: Context) -> int:
    return ctx.now().astimezone(ctx.settings.tz).year


def _in_year(year: int) -> tuple[ColumnElement[bool], ...]:
    """Inspections counted in a year's figures (Art. 14, 17): by check start, not merged away."""
    return (
        Inspection.check_start >= dt.date(year, 1, 1),
        Inspection.check_start <= dt.date(year, 12, 31),
        Inspection.status.notin_(["merged", "cancelled"]),
    )


async def _inspections_this_year(ctx: Context, target_key: str) -> dict[str, int]:
    rows = await ctx.session.execute(
        select(Inspection.origin, func.count())
        .where(Inspection.target_key == target_key, *_in_year(_year(ctx)))
        .group_by(Inspection.origin)
    )
    return {origin: n for origin, n in rows.all()}


def _tier(code: str) -> str:
    return next((label for tier, label in TIER_LABELS.items() if tier.value == code), code)


def _target_card(t: Target, org: str, counts: dict[str, int], year: int) -> str:
    tags = [f"{k}：{v}" for k, v in sorted(t.tags.items())]
    attrs = [
        ("行业", t.industry),
        ("污染物", "、".join(t.pollutant_types)),
        ("规模", t.scale),
        ("绩效分级", t.performance_grade or ""),
        ("正面清单", "是（非现场检查）" if t.on_positive_list else ""),
        ("建设项目", t.construction_status),
    ]
    random_n = sum(counts.get(origin, 0) for origin in RANDOM_CHECK_ORIGINS)
    other_n = sum(n for origin, n in counts.items() if origin not in RANDOM_CHECK_ORIGINS)
    lines = [
        f"【{t.name}】",
        f"统一社会信用代码：{t.uscc or '—'}　许可证编号：{t.permit_no or '—'}",
        f"所在地：{org}　类别：{_tier(t.tier)}监管对象　状态：{TARGET_STATUS_LABELS.get(t.status, t.status)}",
        *[f"{k}：{v}" for k, v in attrs if v],
        *tags,
        f"{year}年检查次数：随机抽查 {random_n} 次，其他检查 {other_n} 次",
    ]
    return "\n".join(lines)


@router.command(
    "查询",
    roles=STAFF,
    usage="查询 <名称或信用代码>",
    summary="查看检查对象的类别、标识、状态与年度检查次数",
)
async def look_up_target(msg: TextCommand, ctx: Context) -> None:
    """Art. 11-14: a target's record and how often it was inspected this year."""
    words = msg.text.strip()
    if not words:
        raise UserError("用法：查询 <单位名称的一部分或统一社会信用代码>")
    orgs = await ctx.visible_orgs(STAFF)
    found = await find_targets(ctx.session, words, limit=MAX_LISTED + 1, orgs=orgs)
    if not found:
        raise UserError(f"在您的管辖范围内没有找到「{words}」。")
    if len(found) > 1:
        lines = [
            f"找到 {min(len(found), MAX_LISTED)} 个以上，请更具体一些："
            if len(found) > MAX_LISTED
            else f"找到 {len(found)} 个："
        ]
        lines += [f"· {t.name}（{t.uscc or t.key}）" for t in found[:MAX_LISTED]]
        ctx.reply("\n".join(lines))
        return
    target = found[0]
    counts = await _inspections_this_year(ctx, target.key)
    ctx.reply(_target_card(target, await ctx.repos.orgs.name(target.org_code), counts, _year(ctx)))


@router.command(
    "查询人员",
    roles={Role.ADMIN, Role.CHIEF},
    usage="查询人员 <姓名>",
    summary="查看检查人员的证件、科室、请假与年度检查次数",
)
async def look_up_inspector(msg: TextCommand, ctx: Context) -> None:
    """Art. 15-17: an inspector's record and this year's inspection count (for appraisal)."""
    name = msg.text.strip()
    if not name:
        raise UserError("用法：查询人员 <姓名>")
    orgs = await ctx.visible_orgs((Role.ADMIN, Role.CHIEF))
    rows = await ctx.session.execute(
        select(Inspector)
        .where(Inspector.org_code.in_(orgs), Inspector.name.contains(name, autoescape=True))
        .order_by(Inspector.name)
        .limit(MAX_LISTED)
    )
    people = list(rows.scalars())
    if not people:
        raise UserError(f"在您的管辖范围内没有找到检查人员「{name}」。")
    year = _year(ctx)
    served = await ctx.session.execute(
        select(TeamMember.inspector_id, func.count())
        .join(Inspection, Inspection.id == TeamMember.inspection_id)
        .where(
            TeamMember.inspector_id.in_([p.id for p in people]),
            TeamMember.active.is_(True),  # Art. 17: a swapped-out member did not inspect
            *_in_year(year),
        )
        .group_by(TeamMember.inspector_id)
    )
    counts: dict[int, int] = {inspector_id: n for inspector_id, n in served.all()}
    blocks = []
    for p in people:
        count = counts.get(p.id, 0)
        kind = "执法证" if p.certificate_kind == "enforcement" else "工作证"
        leave = f"　请假：{p.leave_from}～{p.leave_until}" if p.leave_from else ""
        standing = "在岗" if p.active else "已停用"
        blocks.append(
            f"【{p.name}】{await ctx.repos.orgs.name(p.org_code)} {p.dept_code}\n"
            f"{kind}：{p.certificate_no}　{'辅助人员　' if p.auxiliary else ''}{standing}{leave}\n"
            f"企业微信：{p.userid or '未绑定（不参与抽取）'}　{year}年参与检查 {count} 次"
        )
    ctx.reply("\n\n".join(blocks))


FIELDS = {
    "类别": "tier",
    "状态": "status",
    "绩效分级": "performance_grade",
    "正面清单": "on_positive_list",
}
FIELD_LABELS = {field: label for label, field in FIELDS.items()}


def parse_changes(words: list[str]) -> dict[str, Any]:
    """`类别=重点 状态=停产 绩效分级=B 正面清单=是 标识:行业园区=某某园区` → field changes."""
    changes: dict[str, Any] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not value:
            raise UserError(f"无法理解「{word}」。格式为 名称=值，例如 类别=重点。")
        if name.startswith(("标识:", "标识：")):
            changes[f"tags.{name[3:]}"] = value
        elif name == "类别" and value in TIER_CHOICES:
            changes["tier"] = TIER_CHOICES[value]
        elif name == "状态" and value in STATUS_CHOICES:
            changes["status"] = STATUS_CHOICES[value]
        elif name == "绩效分级" and value.upper() in GRADE_CHOICES:
            changes["performance_grade"] = GRADE_CHOICES[value.upper()]
        elif name == "正面清单" and value in ("是", "否"):
            changes["on_positive_list"] = value == "是"
        elif name in FIELDS:
            raise UserError(f"「{name}」的值「{value}」无效。")
        else:
            known = "、".join(FIELDS) + "、标识:<名称>"
            raise UserError(f"不能修改「{name}」。可修改：{known}。")
    return changes


@router.command(
    "修改对象",
    roles={Role.ADMIN},
    usage="修改对象 <信用代码或许可证号> 类别=重点 状态=停产 标识:名称=值",
    summary="修改检查对象的类别、状态、标识（留痕）",
)
async def change_target(msg: TextCommand, ctx: Context) -> None:
    """Art. 12-13: tiers, tags and status change over time; every change is kept."""
    words = msg.text.split()
    if len(words) < 2:
        raise UserError("用法：修改对象 <信用代码或许可证号> 类别=重点 状态=停产 标识:名称=值")
    target = await ctx.repos.targets.by_code(words[0])
    if target is None:
        raise UserError(f"没有找到检查对象「{words[0]}」。")
    await ctx.require_scope(Role.ADMIN, target.org_code)
    changes = parse_changes(words[1:])
    now = ctx.now()
    done = []
    for field, value in changes.items():
        if field.startswith("tags."):
            name = field[5:]
            before = target.tags.get(name)
            if before == value:
                continue
            target.tags = {**target.tags, name: value}
        else:
            before = getattr(target, field)
            if before == value:
                continue
            setattr(target, field, value)
        ctx.session.add(
            DirectoryHistory(
                kind="target",
                subject_key=target.key,
                field=field,
                before=before,
                after=value,
                actor=ctx.actor.userid,
                at=now,
                evidence=CHAT_EDIT,  # a re-import keeps it unless it overwrites
            )
        )
        done.append((field, before, value))
    if not done:
        ctx.reply("没有变化：这些值与现有记录相同。")
        return
    target.updated_at = now
    await ctx.audit(
        action="target.change",
        subject=f"target:{target.key}",
        payload={"changes": [{"field": f, "before": b, "after": a} for f, b, a in done]},
    )
    ctx.reply(f"已修改「{target.name}」：" + "；".join(_change_zh(f, b, a) for f, b, a in done))


def _value_zh(field: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if field == "tier":
        return _tier(value)
    if field == "status":
        return TARGET_STATUS_LABELS.get(value, value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _change_zh(field: str, before: Any, after: Any) -> str:
    label = f"标识「{field[5:]}」" if field.startswith("tags.") else FIELD_LABELS[field]
    return f"{label} {_value_zh(field, before)} → {_value_zh(field, after)}"


@router.command("导入", roles={Role.ADMIN}, usage="导入", summary="获取上传名录表格的一次性链接")
async def upload_link(msg: TextCommand, ctx: Context) -> None:
    """A self-built app receives no files: a signed, short-lived, single-use upload link."""
    url, until = await _link(ctx)
    ctx.reply(
        f"请在 {until} 前打开以下链接上传名录表格（.xlsx 或 .csv），链接只能上传一次：\n{url}\n"
        "页面上可下载检查对象、检查人员和抽查事项的表格模板，也可以先预览导入会修改什么。"
    )


@router.command("模板", roles={Role.ADMIN}, usage="模板", summary="下载名录表格模板")
async def template_link(msg: TextCommand, ctx: Context) -> None:
    """Art. 8-18: the three lists' templates, from the upload page (one link, also for the
    upload once they are filled in)."""
    url, until = await _link(ctx)
    ctx.reply(
        f"请在 {until} 前打开以下链接下载表格模板（检查对象名录、检查人员名录、随机抽查事项清单），"
        f"填好后可在同一页面上传：\n{url}\n模板第2行是示例，导入时自动跳过。"
    )


async def _link(ctx: Context) -> tuple[str, str]:
    base = ctx.settings.server.public_url.rstrip("/")
    if not base:
        raise UserError(
            "尚未配置服务器的外网地址（[server] public_url），无法生成链接。请联系系统运维人员。"
        )
    link = await uploads.issue(
        ctx.session,
        link_key(ctx.settings),
        token_id=ctx.entropy.token_bytes(24).hex(),
        userid=ctx.actor.userid,
        purpose="directory",
        now=ctx.now(),
    )
    until = link.expires_at.astimezone(ctx.settings.tz).strftime("%H:%M")
    return f"{base}{link.path()}", until


@router.command(
    "年度统计",
    roles={Role.ADMIN, Role.CHIEF},
    usage="年度统计 [年份]",
    summary="各检查对象被检查次数、各检查人员参与检查次数（第十四、十七条）",
)
async def annual_counts(msg: TextCommand, ctx: Context) -> None:
    """Art. 14 and 17: per year, how often each target was inspected and each inspector served."""
    text = msg.text.strip()
    year = int(text) if text.isdigit() and len(text) == 4 else _year(ctx)
    orgs = await ctx.visible_orgs((Role.ADMIN, Role.CHIEF))
    in_year = _in_year(year)
    per_target = (
        select(Inspection.target_key, func.count().label("n"))
        .join(Target, Target.key == Inspection.target_key)
        .where(Target.org_code.in_(orgs), *in_year)
        .group_by(Inspection.target_key)
        .subquery()
    )
    spread = await ctx.session.execute(
        select(per_target.c.n, func.count()).group_by(per_target.c.n).order_by(per_target.c.n)
    )
    total_targets = (
        await ctx.session.execute(
            select(func.count()).select_from(Target).where(Target.org_code.in_(orgs))
        )
    ).scalar_one()
    people = await ctx.session.execute(
        select(
            Inspector.name,
            func.count(),
            func.count().filter(Inspection.origin.in_(RANDOM_CHECK_ORIGINS)),
        )
        .join(TeamMember, TeamMember.inspector_id == Inspector.id)
        .join(Inspection, Inspection.id == TeamMember.inspection_id)
        .where(Inspector.org_code.in_(orgs), TeamMember.active.is_(True), *in_year)
        .group_by(Inspector.id, Inspector.name)
        .order_by(func.count().desc(), Inspector.name)
        .limit(10)
    )
    spread_rows = spread.all()
    inspected = sum(n for _, n in spread_rows)
    lines = [
        f"{year}年度统计（管辖范围内）",
        f"检查对象 {total_targets} 个，已检查 {inspected} 个：",
    ]
    lines += [f"· 检查 {times} 次：{n} 个" for times, n in spread_rows] or ["· 暂无检查记录"]
    by_origin = await results.counts(ctx.session, sorted(orgs), year)
    if by_origin:
        lines.append("按检查来源（随机抽查与其他检查分开统计）：")
        lines += [
            f"· {ORIGIN_LABELS.get(origin, origin)}：{n} 项"
            for origin, (n, _) in sorted(
                by_origin.items(), key=lambda kv: ORIGIN_ORDER.get(kv[0], 9)
            )
        ]
    top = people.all()
    if top:
        lines.append("参与检查次数最多的检查人员（其中随机抽查）：")
        lines += [f"· {name}：{n} 次（随机 {r} 次）" for name, n, r in top]
    ctx.reply("\n".join(lines))
