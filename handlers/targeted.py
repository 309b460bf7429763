"""登记检查: checks outside the draw (Art. 6) and inter-agency joint random checks (Art. 6, 7, 36).

Targeted checks (the six kinds of Art. 6: complaints and reports, referrals from a higher
authority, cases transferred by another department, environmental emergencies, nuclear safety,
data-analysis or monitoring leads) are not drawn, but they are recorded like random ones: a task
of their own (code ``D<year>-<org>-<n>``), one inspection with origin "targeted", a team, the
same result card and phrases, the same record, and every count keeps them apart.

A joint check led by another authority (market regulation etc.) is a random check all the same
(Art. 6): drawn by that authority, recorded here with its lead, task and draw reference, our
participants and the result (origin "joint", ``JointCheck``), and it counts as a random check.
It is dated on the lead authority's check day (``日期=``), whenever it is registered here: its
task's year and check period are that day, which is what once a year, the quarterly counts,
the publication clock and the public page go by.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import or_, select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import inspection_card, within
from inspection.origins import JOINT_WORDS, OUTSIDE_KIND_WORDS, OUTSIDE_KINDS
from storage.directory.values import parse_date
from storage.models import (
    CheckOutsideDraw,
    Inspection,
    Inspector,
    JointCheck,
    Target,
    Task,
    TeamMember,
)
from storage.results import assignment_of
from storage.tasks import rule_params

router = Router("targeted")

JOINT_LABEL = "部门联合抽查"
DEFAULT_DAYS = 30
# What the columns hold, refused beyond rather than cut (text is kept as typed).
REASON_MAX, LEAD_MAX, REF_MAX = 500, 100, 200
REASON = {False: "原因", True: "牵头部门"}
KIND_CHOICES = "投诉、转办、移送、突发事件、核安全、数据线索，或联合"
USAGE = (
    "登记检查 <信用代码> <投诉|转办|移送|突发事件|核安全|数据线索> <原因> [成员=账号,…] "
    "[截止=日期]；部门联合抽查：登记检查 <信用代码> 联合 <牵头部门> 任务=<牵头部门的任务> "
    "抽取=<抽取编号> 日期=<检查日期> 成员=账号,…"
)


@router.command(
    "登记检查",
    roles={Role.ADMIN, Role.CHIEF},
    usage=USAGE,
    summary="登记双随机以外的定向检查（第6条，单独统计）或他部门牵头的部门联合抽查（第7条）",
)
async def register(msg: TextCommand, ctx: Context) -> None:
    """Art. 6: checks outside the draw are recorded and counted apart; Art. 6, 7, 36: a joint
    check another authority drew is a random check, recorded with its lead and draw."""
    # Parsed: the command words, the code, the kind, members and the deadline (folded). Kept as
    # typed: the reason or lead authority and the lead authority's task and draw references.
    options: dict[str, tuple[str, str]] = {}
    rest = []
    for word in msg.words():
        option = word.option()
        if option is None:
            rest.append(word)
        else:
            options[option[0]] = (option[1], option[2])
    if len(rest) < 3:
        raise UserError(f"用法：{USAGE}\n检查组为您本人（如在检查人员名录中）加「成员=」所列人员。")
    key, kind_word = rest[0].folded, rest[1].folded
    joint = kind_word in JOINT_WORDS
    kind = OUTSIDE_KIND_WORDS.get(kind_word)
    if kind is None and not joint:
        raise UserError(f"检查类型「{rest[1].typed}」不认识，可用：{KIND_CHOICES}（第6条）。")
    # The lead authority is the joint task's initiating department too (20 characters).
    reason = within(msg.typed_span(rest[2:]), LEAD_MAX if joint else REASON_MAX, REASON[joint])
    lead_task = within(options.get("任务", ("", ""))[1].strip(), REF_MAX, "牵头部门的任务")
    lead_draw = within(options.get("抽取", ("", ""))[1].strip(), REF_MAX, "抽取编号")
    if joint and not (lead_task and lead_draw and "日期" in options):
        raise UserError(
            "部门联合抽查由牵头部门抽取（第7条），请写明牵头部门的任务、抽取编号和检查日期："
            "「任务=…」「抽取=…」「日期=2026-09-30」。"
        )
    today = ctx.now().astimezone(ctx.settings.tz).date()
    if joint and "截止" in options:
        raise UserError(
            "部门联合抽查按牵头部门的检查日期登记（「日期=」），检查已经完成，不设截止日期。"
        )
    # A joint check's period is the lead authority's check day; a targeted check's is from
    # today to its deadline.
    start = check_date(options["日期"][0], today) if joint else today
    deadline = start if joint else parse_deadline(options.get("截止", (None, ""))[0], today)
    target = await find_target(ctx, key)
    org = await registering_org(ctx, target)
    people = await team_for(ctx, options.get("成员", ("", ""))[0])
    need = rule_params(start).team_size
    if sum(1 for p in people if not p.auxiliary) < need:
        raise UserError(
            f"该检查本部门参加检查的人员至少需要{need}名（第28条；含您本人，如您在检查人员"
            "名录中），请用「成员=账号1,账号2」写明。"
        )
    label = JOINT_LABEL if joint else OUTSIDE_KINDS[kind or ""]
    task, inspection = await _record(
        ctx, target, org, start, deadline, people, label, reason, joint
    )
    if joint:
        ctx.session.add(
            JointCheck(
                inspection_id=inspection.id,
                lead_authority=reason,
                lead_task=lead_task,
                lead_draw_ref=lead_draw,
                checked_at=dt.datetime.combine(start, dt.time(12), ctx.settings.tz),
                registered_by=ctx.actor.userid,
                registered_at=ctx.now(),
            )
        )
    else:
        ctx.session.add(
            CheckOutsideDraw(
                inspection_id=inspection.id,
                kind=kind,
                reason=reason,
                registered_by=ctx.actor.userid,
                registered_at=ctx.now(),
            )
        )
    a = await assignment_of(ctx.session, inspection)
    card_task_id = inspection.card_task_id or ""
    ctx.outbox.template_card(a.userids, inspection_card(a, task, [], card_task_id=card_task_id))
    await ctx.audit(
        action="check.register",
        subject=f"task:{task.code}",
        payload={
            "inspection": inspection.number,
            "target": target.key,
            "kind": "joint" if joint else kind,
            "origin": inspection.origin,
            "reason": reason,
            **(
                {"lead_task": lead_task, "lead_draw": lead_draw, "checked_on": start.isoformat()}
                if joint
                else {}
            ),
            "members": [p.certificate_no for p in people],
            "check_end": deadline.isoformat(),
            "notified": a.userids,
        },
    )
    if joint:
        what = (
            f"已登记{JOINT_LABEL}（牵头部门抽取，计入随机抽查，第6、7条）："
            f"任务 {task.code}，编号 {inspection.number}\n"
            f"对象：{target.name}（{target.key}）；牵头部门：{reason}；"
            f"牵头部门任务：{lead_task}；抽取编号：{lead_draw}；检查日期：{start.isoformat()}"
        )
        counted = "本检查计入随机抽查（每年一次、抽查比例）。"
    else:
        what = (
            f"已登记{label}（双随机以外，第6条）：任务 {task.code}，编号 {inspection.number}\n"
            f"对象：{target.name}（{target.key}）；原因：{reason}"
        )
        counted = "本检查单独统计，不计入双随机抽查比例。"
    period = f"检查日期 {start.isoformat()}" if joint else f"期限 {deadline.isoformat()}"
    ctx.reply(
        f"{what}\n"
        f"检查组：{'、'.join(p.name for p in people)}；{period}\n"
        "检查组已收到任务卡片，结果同样在卡片上或以「结果 <编号> <序号>」提交；" + counted
    )


async def _record(
    ctx: Context,
    target: Target,
    org: str,
    start: dt.date,
    deadline: dt.date,
    people: list[Inspector],
    label: str,
    reason: str,
    joint: bool,
) -> tuple[Task, Inspection]:
    """The task, inspection and team of a check we did not draw ourselves, in the year of its
    check period (``start``: today, or a joint check's own date)."""
    n = await ctx.repos.sequences.next(f"outside:{start.year}:{org}")
    task = Task(
        code=f"D{start.year}-{org}-{n:03d}",
        year=start.year,
        name=f"{label}：{target.name}"[:200],
        org_code=org,
        # A joint check's lead authority is kept whole on its JointCheck (and in ``focus``);
        # 发起科室 is one of our departments' codes, not another authority's name.
        scope_orgs=[target.org_code],
        quotas={},
        item_codes=[],
        focus=reason,
        check_start=start,
        check_end=deadline,
        team_size=len(people),
        status="joint" if joint else "targeted",
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
        origin="joint" if joint else "targeted",
        item_codes=[],
        joined_tasks=[],
        check_start=start,
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
    return task, inspection


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


def check_date(word: str, today: dt.date) -> dt.date:
    """The lead authority's check date of a joint check (Art. 7): a day that has come, of this
    year or the last (older checks come in by ``shuangsuiji import inspections``)."""
    try:
        day = parse_date(word, today=today)
    except ValueError as exc:
        raise UserError(f"检查日期：{exc}。请写成 2026-09-30。") from None
    if day is None:
        raise UserError("请在「日期=」后写明牵头部门的检查日期，如「日期=2026-09-30」。")
    if day.year < today.year - 1:
        raise UserError(
            f"检查日期 {day.isoformat()} 早于{today.year - 1}年。"
            "更早的检查请由管理员在服务器上用 shuangsuiji import inspections 导入。"
        )
    return day


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
