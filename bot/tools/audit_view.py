"""`shuangsuiji audit show`: the record read by a supervisor (Art. 33, 40, 41).

One line per entry, in order: when (local time), who (account and name), what (in Chinese), to
which inspection, and the details that matter for liability: the result, the reason, who was
told. The raw payload stays in the database; `audit verify` checks the chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Inspector

ACTION_LABELS = {
    "plan.create": "新建计划",
    "task.create": "新建任务",
    "draw.commit": "封存抽取条件并提交密钥承诺",
    "draw.run": "抽取",
    "draw.fail": "抽取未能完成",
    "draw.redraw_approved": "批准重新抽取",
    "draw.amend": "变更抽取结果（替换）",
    "role.grant": "授予角色",
    "role.revoke": "撤销角色",
    "directory.import": "导入名录",
    "target.change": "名录变更",
    "check.register": "登记双随机以外的检查或部门联合抽查",
    "params.set": "调整抽查规则参数（第45条）",
    "inspections.import": "导入启用前的检查记录",
    "result.hold": "选择结果，填写说明中",
    "result.hold_lapsed": "说明超时，结果未记录",
    "result.record": "提交检查结果",
    "result.correct": "更正检查结果",
    "result.secret": "标记结果保密",
    "result.record_no": "附加执法记录号",
    "result.case_referral": "移交立案调查（通知执法联系人）",
    "task.complete": "任务完成",
    "swap.request": "申请替换",
    "swap.approve": "批准替换",
    "swap.reject": "驳回替换",
    "swap.remind": "提醒审批替换申请",
    "swap.lapse": "替换申请逾期失效",
}
CHANNELS = {"card": "卡片", "text": "文字消息", "console": "控制台", "demo": "演示"}


def _who(userid: str, names: dict[str, str]) -> str:
    if userid in ("system", "cli", "demo", "test"):
        return {"system": "系统", "cli": "命令行", "demo": "演示", "test": "测试"}[userid]
    name = names.get(userid)
    return f"{userid}（{name}）" if name else userid


def _people(userids: Sequence[Any], names: dict[str, str]) -> str:
    return "、".join(names.get(str(u), str(u)) for u in userids) or "无"


def _cert(cert: Any, names: dict[str, str]) -> str:
    name = names.get(str(cert))
    return f"{name}（{cert}）" if name else str(cert)


TIERS = {"special": "特殊", "key": "重点", "general": "一般"}


def _task(p: dict[str, Any], names: dict[str, str]) -> str:
    quotas = "、".join(
        f"{TIERS.get(t, t)}{q.get('ratio') or q.get('count')}"
        for t, q in (p.get("quotas") or {}).items()
    )
    return (
        f"「{p.get('name')}」，单位 {p.get('org')}，范围 {'、'.join(p.get('scope') or [])}，"
        f"检查期 {p.get('check_start')} 至 {p.get('check_end')}"
        + (f"，抽取 {quotas}" if quotas else "")
        + f"，每组{p.get('team_size')}人"
    )


def _result(p: dict[str, Any], names: dict[str, str]) -> str:
    out = f"编号 {p.get('inspection')}：「{p.get('phrase')}」"
    if p.get("department"):
        out += f"，移交 {p['department']}"
    if p.get("description"):
        out += f"，说明：{p['description']}"
    if p.get("channel"):
        out += f"（{CHANNELS.get(p['channel'], p['channel'])}）"
    if p.get("merged_into"):
        out += f"，与编号 {p['merged_into']} 合并检查"
    return out


DETAILS: dict[str, Callable[[dict[str, Any], dict[str, str]], str]] = {
    "result.record": _result,
    "result.hold": lambda p, n: f"编号 {p.get('inspection')}：「{p.get('phrase')}」，说明待填写",
    "result.hold_lapsed": lambda p, n: (
        f"编号 {p.get('inspection')}：{_people([p.get('holder')], n)} 未在时限内填写说明"
    ),
    "result.correct": lambda p, n: (
        f"编号 {p.get('inspection')}：「{(p.get('before') or {}).get('phrase')}」→"
        f"「{p.get('phrase')}」，原因：{p.get('reason')}"
    ),
    "result.secret": lambda p, n: f"编号 {p.get('inspection')}，原因：{p.get('reason')}",
    "result.record_no": lambda p, n: f"编号 {p.get('inspection')}：{p.get('record_no')}",
    "result.case_referral": lambda p, n: f"编号 {p.get('inspection')}（对象 {p.get('target')}）",
    "task.complete": lambda p, n: (
        f"完成日期 {p.get('completed_on')}，公开期限 {p.get('publication_due') or '待补充节假日安排'}"
    ),
    "task.create": _task,
    "swap.request": lambda p, n: (
        f"申请 #{p.get('request')}，编号 {p.get('inspection')}，{_cert(p.get('leaving'), n)}，"
        f"原因：{p.get('reason')}"
    ),
    "swap.approve": lambda p, n: (
        f"申请 #{p.get('request')}，编号 {p.get('inspection')}：{_cert(p.get('leaving'), n)} → "
        f"{_cert(p.get('joining'), n)}（抽取记录第{p.get('amendment')}项变更）"
    ),
    "swap.reject": lambda p, n: (
        f"申请 #{p.get('request')}，编号 {p.get('inspection')}"
        + (f"，原因：{p['note']}" if p.get("note") else "")
    ),
    "swap.remind": lambda p, n: f"申请 #{p.get('request')}，编号 {p.get('inspection')}",
    "swap.lapse": lambda p, n: f"申请 #{p.get('request')}，编号 {p.get('inspection')}",
    "check.register": lambda p, n: (
        f"编号 {p.get('inspection')}，对象 {p.get('target')}，{p.get('origin')}/{p.get('kind')}，"
        f"{p.get('reason')}，检查组 {'、'.join(_cert(c, n) for c in p.get('members') or [])}"
    ),
    "draw.commit": lambda p, n: (
        f"第{p.get('attempt')}次，承诺 {str(p.get('commitment'))[:16]}…，"
        f"指纹 {str(p.get('fingerprint'))[:16]}…" + ("" if p.get("witnessed") else "，无见证")
    ),
    "draw.run": lambda p, n: (
        f"第{p.get('attempt')}次，见证值 {p.get('witness') or '无（未见证）'}，"
        f"检查 {len(p.get('inspections') or [])} 项"
    ),
    "draw.amend": lambda p, n: (
        f"编号 {p.get('inspection')}：{_cert(p.get('leaving'), n)} → "
        f"{_cert(p.get('replacement'), n)}，"
        f"批准人 {_people([p.get('approved_by')], n)}，原因：{p.get('reason')}"
    ),
    "draw.redraw_approved": lambda p, n: f"原第{p.get('attempt')}次抽取，原因：{p.get('reason')}",
}


def _generic(payload: dict[str, Any]) -> str:
    parts = []
    for key, value in payload.items():
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '…'}")
    return "，".join(parts)


async def _names(session: AsyncSession, entries: Sequence[AuditEntry]) -> dict[str, str]:
    userids: set[str] = set()
    for e in entries:
        userids.add(e.actor)
        for key in ("by", "holder", "approved_by", "leaving", "joining", "replacement"):
            if isinstance(e.payload.get(key), str):
                userids.add(e.payload[key])
        for key in ("notified", "members"):
            userids.update(str(u) for u in e.payload.get(key) or [])
    if not userids:
        return {}
    rows = await session.execute(
        select(Inspector.userid, Inspector.name).where(Inspector.userid.in_(sorted(userids)))
    )
    out = {u: n for u, n in rows.all() if u}
    certs = await session.execute(
        select(Inspector.certificate_no, Inspector.name).where(
            Inspector.certificate_no.in_(sorted(userids))
        )
    )
    out.update({c: n for c, n in certs.all()})
    return out


async def render(session: AsyncSession, entries: Sequence[AuditEntry], tz: dt.tzinfo) -> list[str]:
    """The entries as a supervisor reads them."""
    names = await _names(session, entries)
    lines = []
    for e in entries:
        at = e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        label = ACTION_LABELS.get(e.action, e.action)
        detail_of = DETAILS.get(e.action)
        detail = detail_of(e.payload, names) if detail_of else _generic(e.payload)
        told = e.payload.get("notified")
        if told and e.action != "check.register":
            detail += f"；已通知：{_people(told, names)}"
        lines.append(f"#{e.id} {at} {_who(e.actor, names)} {label} {_subject(e.subject)}：{detail}")
    return lines


SUBJECT_KINDS = {"task": "任务", "plan": "计划", "user": "用户", "directory": "名录"}


def _subject(subject: str) -> str:
    """``task:T2026-150100-001`` as 任务 T2026-150100-001; other subjects as recorded."""
    kind, sep, rest = subject.partition(":")
    return f"{SUBJECT_KINDS[kind]} {rest}" if sep and kind in SUBJECT_KINDS else subject
