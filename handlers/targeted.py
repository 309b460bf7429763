"""登记检查: checks outside the draw (Art. 3, 6, 7, 36).

Targeted checks (complaints, transfers, incidents, nuclear safety, data-analysis leads) and joint
checks led by another department are not drawn, but they are recorded like random ones: a task
of their own (code ``D<year>-<org>-<n>``), one inspection with origin "targeted" or "joint", a
team, the same result card and phrases, the same record. Every count keeps them apart.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import or_, select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import inspection_card
from storage.models import CheckOutsideDraw, Inspection, Inspector, Target, Task, TeamMember
from storage.results import assignment_of
from storage.tasks import rule_params

router = Router("targeted")

KINDS = {
    "投诉": "complaint",
    "举报": "complaint",
    "转办": "transfer",
    "交办": "transfer",
    "事故": "incident",
    "突发事件": "incident",
    "核安全": "nuclear",
    "数据线索": "data_lead",
    "数据分析": "data_lead",
    "联合": "joint",
}
KIND_LABELS = {
    "complaint": "投诉举报",
    "transfer": "转办交办",
    "incident": "突发环境事件",
    "nuclear": "核与辐射安全",
    "data_lead": "数据分析线索",
    "joint": "联合检查",
}
DEFAULT_DAYS = 30
USAGE = "登记检查 <信用代码> <投诉|转办|事故|核安全|数据线索|联合> <原因或牵头部门> [成员=账号,…] [截止=日期]"


@router.command(
    "登记检查",
    roles={Role.ADMIN, Role.CHIEF},
    usage=USAGE,
    summary="登记双随机以外的定向检查或联合检查（第6条，单独统计）",
)
async def register(msg: TextCommand, ctx: Context) -> None:
    """Art. 6: checks outside the draw are still recorded and still count, apart."""
    words = msg.text.split()
    options = dict(w.split("=", 1) for w in words if "=" in w)
    rest = [w for w in words if "=" not in w]
    if len(rest) < 3:
        raise UserError(f"用法：{USAGE}\n检查组为您本人（如在检查人员名录中）加「成员=」所列人员。")
    key, kind_word, reason = rest[0], rest[1], " ".join(rest[2:])[:500]
    kind = KINDS.get(kind_word)
    if kind is None:
        raise UserError(
            f"检查类型「{kind_word}」不认识，可用：投诉、转办、事故、核安全、数据线索、联合。"
        )
    target = await find_target(ctx, key)
    org = await registering_org(ctx, target)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    deadline = parse_deadline(options.get("截止"), today)
    people = await team_for(ctx, options.get("成员", ""))
    need = 1 if kind == "joint" else rule_params(today).team_size
    if sum(1 for p in people if not p.auxiliary) < need:
        raise UserError(
            f"该检查的检查组至少需要{need}名检查人员（含您本人，如您在检查人员名录中），"
            "请用「成员=账号1,账号2」写明。"
        )
    n = await ctx.repos.sequences.next(f"outside:{today.year}:{org}")
    task = Task(
        code=f"D{today.year}-{org}-{n:03d}",
        year=today.year,
        name=f"{KIND_LABELS[kind]}：{target.name}"[:200],
        org_code=org,
        initiating_dept=reason[:20] if kind == "joint" else "",
        scope_orgs=[target.org_code],
        quotas={},
        item_codes=[],
        focus=reason,
        check_start=today,
        check_end=deadline,
        team_size=len(people),
        status="targeted",
        created_by=ctx.actor.userid,
        created_at=ctx.now(),
    )
    ctx.session.add(task)
    await ctx.session.flush()
    number = await ctx.repos.sequences.next("inspection")
    card_task_id = f"insp-{number}-1"
    inspection = Inspection(
        number=number,
        task_id=task.id,
        target_id=target.id,
        target_key=target.key,
        tier=target.tier,
        method="onsite",
        origin="joint" if kind == "joint" else "targeted",
        item_codes=[],
        joined_tasks=[],
        check_start=today,
        check_end=deadline,
        status="open",
        card_task_id=card_task_id,
        created_at=ctx.now(),
    )
    ctx.session.add(inspection)
    await ctx.session.flush()
    for position, p in enumerate(people):
        ctx.session.add(
            TeamMember(
                inspection_id=inspection.id,
                inspector_id=p.id,
                certificate_no=p.certificate_no,
                userid=p.userid or "",
                auxiliary=p.auxiliary,
                position=position,
                active=True,
                card_task_id=card_task_id,
                joined_at=ctx.now(),
            )
        )
    ctx.session.add(
        CheckOutsideDraw(
            inspection_id=inspection.id,
            kind=kind,
            reason="" if kind == "joint" else reason,
            lead_dept=reason if kind == "joint" else "",
            registered_by=ctx.actor.userid,
            registered_at=ctx.now(),
        )
    )
    a = await assignment_of(ctx.session, inspection)
    ctx.outbox.template_card(a.userids, inspection_card(a, task, [], card_task_id=card_task_id))
    why = f"牵头部门：{reason}" if kind == "joint" else f"原因：{reason}"
    await ctx.audit(
        action="check.register",
        subject=f"task:{task.code}",
        payload={
            "inspection": number,
            "target": target.key,
            "kind": kind,
            "origin": inspection.origin,
            "reason": reason,
            "members": [p.certificate_no for p in people],
            "check_end": deadline.isoformat(),
            "notified": a.userids,
        },
    )
    ctx.reply(
        f"已登记{KIND_LABELS[kind]}（双随机以外，第6条）：任务 {task.code}，编号 {number}\n"
        f"对象：{target.name}（{target.key}）；{why}\n"
        f"检查组：{'、'.join(p.name for p in people)}；期限 {deadline.isoformat()}\n"
        "检查组已收到任务卡片，结果同样在卡片上或以「结果 <编号> <序号>」提交；"
        "本检查单独统计，不计入双随机抽查比例。"
    )


async def find_target(ctx: Context, key: str) -> Target:
    target = await ctx.repos.targets.by_code(key)
    if target is None:
        key = unicodedata.normalize("NFKC", key).strip().upper()
        raise UserError(
            f"检查对象名录中没有「{key}」（第11条）。请先导入该对象，或核对信用代码、许可证号。"
        )
    return target


async def registering_org(ctx: Context, target: Target) -> str:
    """The nearest organisation of the sender's admin or chief roles that covers the target."""
    best: tuple[int, str] | None = None
    for b in ctx.actor.bindings:
        if b.role not in (Role.ADMIN, Role.CHIEF):
            continue
        if await ctx.repos.orgs.covers([b.org_code], target.org_code):
            depth = len(await ctx.repos.orgs.ancestors(b.org_code))
            if best is None or depth > best[0]:
                best = (depth, b.org_code)
    if best is None:
        name = await ctx.repos.orgs.name(target.org_code)
        raise UserError(f"检查对象属于{name}（{target.org_code}），不在您的管辖范围内。")
    return best[1]


def parse_deadline(word: str | None, today: dt.date) -> dt.date:
    if not word:
        return today + dt.timedelta(days=DEFAULT_DAYS)
    try:
        deadline = dt.date.fromisoformat(word)
    except ValueError:
        raise UserError(f"截止日期「{word}」格式不对，请写成 2026-12-31。") from None
    if deadline < today:
        raise UserError("截止日期不能早于今天。")
    return deadline


async def team_for(ctx: Context, listed: str) -> list[Inspector]:
    """The sender (when in the inspector directory) and the listed members, by WeCom account or
    certificate number; each must be active and reachable in WeCom."""
    people: dict[str, Inspector] = {}
    own = await ctx.repos.inspectors.active_by_userid(ctx.actor.userid)
    if own is not None:
        people[own.certificate_no] = own
    for word in filter(
        None, (w.strip() for w in listed.replace("，", ",").replace("、", ",").split(","))
    ):
        rows = await ctx.session.execute(
            select(Inspector)
            .where(or_(Inspector.userid == word, Inspector.certificate_no == word))
            .order_by(Inspector.active.desc(), Inspector.id)
            .limit(1)
        )
        found = rows.scalar_one_or_none()
        if found is None:
            raise UserError(f"检查人员名录中没有「{word}」（企业微信账号或执法证号）。")
        if not found.active or not found.userid:
            raise UserError(f"{found.name}（{word}）已停用或未绑定企业微信账号，不能编入检查组。")
        people[found.certificate_no] = found
    return list(people.values())
