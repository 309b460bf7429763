"""抽查预览 / 抽查 / 见证 / 重新抽查 / 抽取名单 / 抽取记录: the provably fair draw (Art. 27-29).

Two steps: 抽查 freezes the pool and commits to a secret, and the commitment reaches the task's
chiefs and the admins of the level above before anyone can know the witness value; 见证 supplies
that value and the draw runs. 抽查 … 无见证 draws at once and is marked 未见证 everywhere.
Confidential while open (Art. 27): each team learns only its own target from its card; the full
list goes to the drawing department's admins and chiefs and to the level above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import (
    DRAW_STATUS_LABELS,
    MANAGERS,
    inspection_card,
    item_names,
    load_task,
    people,
    refusal_text,
    require_drawer,
    require_manager,
    result_options,
    send,
)
from inspection.draw import DrawError
from inspection.pool import EXCLUSION_LABELS, PoolPlan
from inspection.quotas import TIER_LABELS, Tier
from storage import draws
from storage import results as result_store
from storage.draws import Assignment, DrawRefused, Outcome
from storage.gcpause import gc_paused
from storage.models import Draw, Inspection, Inspector, Organisation, Target, Task
from storage.models import TeamMember as TeamRow

router = Router("draws")

LIST_LIMIT = 30  # inspections listed in a summary; the rest via 抽取名单
FALLBACK_URL = "https://work.weixin.qq.com/"


# --- who may do what ---------------------------------------------------------------------------


async def witnesses(ctx: Context, task: Task) -> list[str]:
    """Who gets the commitment before the witness value: the task's chiefs and the admins of
    the level above (for the region itself: its other admins)."""
    chiefs = await ctx.repos.roles.holders(Role.CHIEF, [task.org_code], task.drawing_dept or None)
    org = await ctx.repos.orgs.get(task.org_code)
    above_org = org.parent_code if org and org.parent_code else task.org_code
    admins = await ctx.repos.roles.holders(Role.ADMIN, [above_org])
    return sorted({*chiefs, *admins} - {ctx.actor.userid})


# --- 抽查预览 --------------------------------------------------------------------------------


@router.command(
    "抽查预览",
    "预览",
    roles=MANAGERS,
    usage="抽查预览 <任务>",
    summary="查看任务的可抽取对象、排除情况和抽取数量（不抽取）",
)
async def preview(msg: TextCommand, ctx: Context) -> None:
    """Art. 25-31: the pool per tier, what is left out and why, and the counts; nothing drawn."""
    task = await load_task(ctx, msg.text, "抽查预览")
    await require_manager(ctx, task)
    plan = await draws.preview(ctx.session, task)
    lines = [f"任务 {task.code}「{task.name}」抽取预览（尚未抽取）", *await task_lines(ctx, task)]
    lines += pool_lines(plan)
    if plan.problems:
        lines.append("无法抽取：")
        lines += [f"· {p}" for p in plan.problems]
    else:
        lines.append(f"可以抽取：发送「抽查 {task.code}」封存条件，见证后抽取。")
    lines += [f"提示：{w}" for w in plan.warnings]
    send(ctx, [], "\n".join(lines), reply=True)


async def task_lines(ctx: Context, task: Task) -> list[str]:
    scope = "、".join([f"{await ctx.repos.orgs.name(c)}（{c}）" for c in task.scope_orgs])
    kinds = "、".join(
        {"enforcement": "执法证", "work": "工作证"}.get(k, k) for k in task.qualifying_kinds
    )
    locality = "本旗县区" if task.locality == "same_county" else "任务范围内"
    lines = [
        f"范围：{scope}；检查期 {task.check_start} 至 {task.check_end}",
        f"检查组：每组{task.team_size}人（{kinds}），属地：{locality}"
        + (f"，辅助{task.auxiliary_per_team}人" if task.auxiliary_per_team else "")
        + (f"，每人上限{task.max_load}组" if task.max_load else ""),
    ]
    if task.tag_filter:
        lines.append("标签条件：" + "、".join(f"{k}={v}" for k, v in task.tag_filter.items()))
    return lines


def pool_lines(plan: PoolPlan) -> list[str]:
    """The pool per tier, then each rule that left targets out: how many, of which tier, why."""
    lines = []
    left_out: dict[str, dict[str, int]] = {}
    for e in plan.exclusions:
        if e.kind == "target":
            per_tier = left_out.setdefault(e.reason, {})
            per_tier[e.tier] = per_tier.get(e.tier, 0) + 1
    for tier in Tier:
        if tier not in plan.quotas:
            continue
        lines.append(
            f"{TIER_LABELS[tier]}：名录{plan.tier_sizes[tier]}个，可抽{plan.pool_sizes[tier]}个，"
            f"应抽{plan.counts[tier]}个（{plan.quotas[tier].label()}）"
        )
    if left_out:
        lines.append("不参加本次随机抽取的检查对象：")
    for reason, per_tier in left_out.items():
        n = sum(per_tier.values())
        tiers = "、".join(f"{TIER_LABELS[t]}{per_tier[t]}" for t in Tier if per_tier.get(t))
        lines.append(f"· {EXCLUSION_LABELS[reason]}：{n}个（{tiers}）")
    people = plan.input.inspectors
    aux = sum(1 for i in people if i.auxiliary)
    excluded = plan.excluded("inspector")
    why = "、".join(f"{EXCLUSION_LABELS[r]}{n}人" for r, n in sorted(excluded.items()))
    lines.append(
        f"检查人员：可选派{len(people) - aux}人"
        + (f"，辅助{aux}人" if aux else "")
        + (f"；不参加：{why}" if why else "")
    )
    return lines


# --- 抽查 ----------------------------------------------------------------------------------------


@router.command(
    "抽查",
    roles=MANAGERS,
    usage="抽查 <任务> [无见证]",
    summary="封存抽取条件并提交密钥承诺；见证后抽取（加「无见证」立即抽取）",
)
async def commit(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: step one of the draw. The commitment goes out before the witness value."""
    words = msg.text.split()
    unwitnessed = len(words) > 1 and words[1] in ("无见证", "不见证", "unwitnessed")
    if len(words) > 1 and not unwitnessed:
        raise UserError(f"不认识「{' '.join(words[1:])}」。用法：抽查 <任务> [无见证]")
    task = await load_task(ctx, msg.text, "抽查")
    await require_drawer(ctx, task)
    await commit_draw(ctx, task, unwitnessed=unwitnessed)


async def commit_draw(ctx: Context, task: Task, *, unwitnessed: bool) -> Outcome | None:
    secret = ctx.entropy.token_bytes(32)
    try:
        row, plan = await draws.commit(
            ctx.session,
            task,
            actor=ctx.actor.userid,
            now=ctx.now(),
            secret=secret,
            witnessed=not unwitnessed,
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    told = await witnesses(ctx, task)
    notice = commitment_text(task, row, await ctx.repos.orgs.name(task.org_code), unwitnessed)
    send(ctx, told, notice)
    if unwitnessed:
        return await run_draw(ctx, task, row, witness=None, plan=plan, told=told)
    names = (
        "、".join(await people(ctx, told))
        if told
        else "（无：本单位没有部门负责人，上级没有管理员）"
    )
    lines = [
        f"任务 {task.code} 抽取条件已封存（第{row.attempt}次抽取）。",
        *pool_lines(plan),
        f"条件指纹：{row.fingerprint}",
        f"密钥承诺（SHA-256）：{row.commitment}",
        f"承诺已发送给：{names}",
        "请在抽查会上由见证人提供见证值（如现场报出的数字，或承诺之后公布的彩票开奖号码），然后发送：",
        f"见证 {task.code} <见证值>",
    ]
    send(ctx, [], "\n".join(lines), reply=True)
    return None


def commitment_text(task: Task, row: Draw, org_name: str, unwitnessed: bool) -> str:
    lines = [
        f"【抽查承诺】任务 {task.code}「{task.name}」",
        f"抽取单位：{org_name}（{task.org_code}），第{row.attempt}次抽取",
        f"条件指纹：{row.fingerprint}",
        f"密钥承诺（SHA-256）：{row.commitment}",
    ]
    if row.redraw_reason:
        lines.append(f"重新抽取，批准人 {row.approved_by}，原因：{row.redraw_reason}")
    if unwitnessed:
        lines.append("本次抽取无见证（未见证），立即进行。")
    else:
        lines.append(
            "见证值公布之前您已收到本承诺。抽取后可核对：导出记录中密钥的 SHA-256 应等于上述承诺值。"
        )
    return "\n".join(lines)


# --- 见证 ----------------------------------------------------------------------------------------


@router.command(
    "见证",
    roles=MANAGERS,
    usage="见证 <任务> <见证值>",
    summary="提供见证值，完成抽取",
)
async def witness(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: step two. seed = SHA-256(secret, witness value); the draw runs."""
    code, _, value = msg.text.partition(" ")
    task = await load_task(ctx, code, "见证")
    await require_drawer(ctx, task)
    value = msg.typed_after_words(1) if value.strip() else ""  # utf8, no normalisation (spec)
    if not value:
        raise UserError(f"请写明见证值，如「见证 {task.code} 20261130」。")
    row = await draws.latest_draw(ctx.session, task.id)
    if row is None or row.status != "committed":
        state = DRAW_STATUS_LABELS.get(row.status, row.status) if row else "尚未封存"
        raise UserError(
            f"任务 {task.code} 当前没有等待见证的抽取（{state}）。先发送「抽查 {task.code}」封存条件。"
        )
    told = sorted({*await witnesses(ctx, task), row.committed_by} - {ctx.actor.userid})
    await run_draw(ctx, task, row, witness=value, plan=None, told=told)  # the sealer hears too


async def run_draw(
    ctx: Context,
    task: Task,
    row: Draw,
    *,
    witness: str | None,
    plan: PoolPlan | None,
    told: list[str],
) -> Outcome:
    org = await ctx.session.get(Organisation, task.org_code)
    try:
        outcome = await draws.run(
            ctx.session,
            task,
            row,
            witness=witness,
            actor=ctx.actor.userid,
            now=ctx.now(),
            group_chats=bool(org and org.group_chats),
            plan=plan,
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    if outcome.error is not None:
        text = await failure_text(ctx, task, row, outcome.error)
        send(ctx, [], text, reply=True)
        send(ctx, told, text)
        return outcome
    await notify_teams(ctx, task, outcome.assignments, unwitnessed=not row.witnessed)
    await result_store.schedule_period_end(ctx.session, task, ctx.settings.tz)  # Art. 37
    summary = await summary_text(ctx, task, row, outcome)
    send(ctx, [], summary, reply=True)
    send(ctx, told, summary)
    return outcome


async def failure_text(ctx: Context, task: Task, row: Draw, exc: DrawError) -> str:
    what = str(exc)
    if exc.target_key:
        name = await ctx.session.scalar(select(Target.name).where(Target.key == exc.target_key))
        if name:
            what = what.replace(exc.target_key, f"「{name}」（{exc.target_key}）", 1)
    fixes = []
    if exc.blocked.get("locality"):
        fixes.append("将属地要求改为「范围内」")
    if exc.blocked.get("max_load"):
        fixes.append("提高每人上限")
    fixes.append("补充该地可选派的检查人员")
    return "\n".join(
        [
            f"任务 {task.code} 第{row.attempt}次抽取未能完成：{what}",
            f"可以：{'，或'.join(fixes)}。",
            "本次抽取已记录（计入本任务）。调整后如需重新抽取，"
            f"须由部门负责人发送「重新抽查 {task.code} <原因>」批准。",
        ]
    )


def witness_label(row: Draw) -> str:
    return f"已见证，见证值「{row.witness}」" if row.witnessed else "未见证"


async def summary_text(ctx: Context, task: Task, row: Draw, outcome: Outcome) -> str:
    assert outcome.result is not None
    summary = row.summary
    drawn = {t: 0 for t in Tier}
    for s in outcome.result.selected:
        drawn[Tier(s.tier)] += 1
    tiers = "、".join(
        f"{TIER_LABELS[t]}{drawn[t]}/{summary['pool_sizes'][t.value]}"
        for t in Tier
        if t.value in summary["quotas"]
    )
    merged = [a for a in outcome.assignments if a.merged_into is not None and not a.same_visit]
    sites = sum(1 for a in outcome.assignments if a.same_visit)
    lines = [
        f"【抽取结果】任务 {task.code}「{task.name}」第{row.attempt}次抽取（{witness_label(row)}）",
        f"抽中（抽中/可抽）：{tiers}",
    ]
    if outcome.construction is not None:
        lines.append(f"建设项目全覆盖检查：{len(outcome.construction.selected)}个")
    lines += [
        f"检查组：{len(outcome.assignments) - len(merged) - sites}个"
        + (f"；同一市场主体的其他点位并入同一次检查{sites}个" if sites else "")
        + (f"；与其他任务合并检查{len(merged)}个" if merged else ""),
        f"条件指纹：{row.fingerprint}",
        f"密钥承诺：{row.commitment}",
    ]
    lines += assignment_lines(outcome.assignments[:LIST_LIMIT])
    if len(outcome.assignments) > LIST_LIMIT:
        lines.append(
            f"……其余{len(outcome.assignments) - LIST_LIMIT}条请发送「抽取名单 {task.code}」查看。"
        )
    lines.append(
        "核对：shuangsuiji draw export / draw verify，或用 reference_verifier.py 独立核验。"
    )
    return "\n".join(lines)


def assignment_lines(assignments: Sequence[Assignment]) -> list[str]:
    lines = []
    for a in assignments:
        team = "、".join(m.name + ("（辅助）" if m.auxiliary else "") for m in a.members)
        where = f" → 并入编号 {a.merged_into}" if a.merged_into is not None else ""
        extra = "·建设项目" if a.origin == "construction" else ""
        lines.append(
            f"编号 {a.number} {a.target_name}（{TIER_LABELS[Tier(a.tier)]}{extra}）{team}{where}"
        )
    return lines


# --- the teams' cards -------------------------------------------------------------------------


@gc_paused
async def notify_teams(
    ctx: Context, task: Task, assignments: Sequence[Assignment], *, unwitnessed: bool = False
) -> None:
    """One card per inspection to its whole team in one message/send; a group chat per team
    where the organisation enables them; hosts of merged visits hear of the extra items."""
    items = await item_names(ctx, task)
    url = (ctx.settings.server.public_url or FALLBACK_URL).rstrip("/") + "/"
    cards: list[tuple[list[str], dict[str, Any]]] = []
    options = result_options(task.check_start)
    for a in assignments:
        if a.same_visit:
            continue  # another site of a visit whose lead's card lists it (Art. 19)
        if a.merged_into is not None:
            if a.host_userids:
                ctx.outbox.text(
                    a.host_userids,
                    f"编号 {a.merged_into}（{a.target_name}）同时承担任务 {task.code}「{task.name}」"
                    f"的检查事项：{'；'.join(items) or '按任务要求'}。请一并检查（第19、21、23条）。",
                )
            continue
        card = inspection_card(a, task, items, unwitnessed=unwitnessed, options=options)
        cards.append((a.userids, card))
    # 10,000 cards at 100,000 targets: one executemany, not 10,000 ORM objects.
    await ctx.outbox.template_cards(cards)
    for a in assignments:
        if a.merged_into is None and a.chatid is not None:
            ctx.outbox.appchat_create(
                a.chatid, f"编号{a.number} {a.target_name}"[:50], a.userids[0], a.userids
            )
            team = "、".join(m.name for m in a.members)
            ctx.outbox.appchat_textcard(
                a.chatid,
                f"编号 {a.number} 检查任务",
                f"{a.target_name}\n{task.check_start} 至 {task.check_end}\n检查组：{team}",
                url,
            )


# --- 重新抽查 ------------------------------------------------------------------------------------


@router.command(
    "重新抽查",
    roles={Role.CHIEF},
    usage="重新抽查 <任务> <原因>",
    summary="部门负责人批准重新抽取（原抽取记录保留）",
)
async def approve_redraw(msg: TextCommand, ctx: Context) -> None:
    """A task is drawn once; a re-draw needs a chief's approval and keeps every earlier draw,
    visible to the level above."""
    code, _, reason = msg.text.partition(" ")
    task = await load_task(ctx, code, "重新抽查")
    await require_manager(ctx, task, {Role.CHIEF})
    reason = msg.typed_after_words(1) if reason.strip() else ""
    if not reason:
        raise UserError(f"请写明重新抽取的原因，如「重新抽查 {task.code} 名录有误已更正」。")
    try:
        last, cancelled = await draws.approve_redraw(
            ctx.session, task, chief=ctx.actor.userid, reason=reason, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    for c in cancelled:
        if c.userids:
            ctx.outbox.text(
                c.userids, f"编号 {c.number} 检查任务已撤销：任务 {task.code} 经批准重新抽取。"
            )
        if c.chatid:
            ctx.outbox.appchat_text(c.chatid, f"编号 {c.number} 检查任务已撤销（重新抽取）。")
    text = (
        f"已批准任务 {task.code} 重新抽取。原第{last.attempt}次抽取"
        f"{DRAW_STATUS_LABELS.get(last.status, last.status)}，记录保留"
        + (f"，撤销检查{len(cancelled)}项" if cancelled else "")
        + f"。原因：{reason}\n管理员可发送「抽查 {task.code}」重新封存并抽取。"
    )
    ctx.reply(text)
    send(ctx, await witnesses(ctx, task), text)


# --- 抽取名单 / 抽取记录 -------------------------------------------------------------------------


@router.command(
    "抽取名单",
    roles=MANAGERS,
    usage="抽取名单 <任务>",
    summary="查看任务抽中的全部对象和检查组（仅抽取部门及上级）",
)
async def full_list(msg: TextCommand, ctx: Context) -> None:
    """Confidential while open: only the drawing department's admins and chiefs and the level
    above see the whole list."""
    task = await load_task(ctx, msg.text, "抽取名单")
    await require_manager(ctx, task)
    row = await draws.latest_draw(ctx.session, task.id)
    if row is None or row.status != "drawn":
        state = DRAW_STATUS_LABELS.get(row.status, row.status) if row else "尚未抽取"
        raise UserError(f"任务 {task.code} 没有有效的抽取结果（{state}）。")
    assignments = await stored_assignments(ctx, row)
    head = f"任务 {task.code}「{task.name}」第{row.attempt}次抽取（{witness_label(row)}），共{len(assignments)}项："
    send(ctx, [], "\n".join([head, *assignment_lines(assignments)]), reply=True)


async def stored_assignments(ctx: Context, row: Draw) -> list[Assignment]:
    rows = await ctx.session.execute(
        select(Inspection, Target.name, Target.address)
        .join(Target, Target.id == Inspection.target_id)
        .where(Inspection.draw_id == row.id)
        .order_by(Inspection.number)
    )
    visits = rows.all()
    members = await ctx.session.execute(
        select(
            TeamRow.inspection_id,
            TeamRow.certificate_no,
            TeamRow.userid,
            Inspector.name,
            TeamRow.auxiliary,
        )
        .join(Inspector, Inspector.id == TeamRow.inspector_id)
        .where(TeamRow.inspection_id.in_([v.id for v, _, _ in visits]), TeamRow.active.is_(True))
        .order_by(TeamRow.inspection_id, TeamRow.position)
    )
    teams: dict[int, list[draws.Member]] = {}
    for inspection_id, cert, userid, name, aux in members.all():
        teams.setdefault(inspection_id, []).append(draws.Member(cert, userid, name, aux))
    hosts = {v.id: v.number for v, _, _ in visits}
    out = []
    for v, name, address in visits:
        merged = None
        if v.merged_into_id is not None:
            merged = hosts.get(v.merged_into_id) or await ctx.session.scalar(
                select(Inspection.number).where(Inspection.id == v.merged_into_id)
            )
        out.append(
            Assignment(
                v.id,
                v.number,
                v.target_key,
                name,
                address,
                v.tier,
                v.method,
                v.origin,
                tuple(teams.get(v.id, ())),
                v.card_task_id,
                v.chatid,
                merged,
            )
        )
    return out


@router.command(
    "抽取记录",
    roles=MANAGERS,
    usage="抽取记录 <任务>",
    summary="查看任务的每一次抽取（含失败、放弃和被取代的）",
)
async def history(msg: TextCommand, ctx: Context) -> None:
    """Art. 41-42: every draw of a task stays visible to the level above."""
    task = await load_task(ctx, msg.text, "抽取记录")
    await require_manager(ctx, task)
    rows = await draws.draws_of(ctx.session, task.id)
    if not rows:
        ctx.reply(f"任务 {task.code} 尚未抽取。")
        return
    tz = ctx.settings.tz
    lines = [f"任务 {task.code}「{task.name}」抽取记录："]
    for r in rows:
        when = r.committed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        mark = witness_label(r) if r.status not in ("committed", "abandoned") else "未见证"
        lines.append(
            f"第{r.attempt}次 {when} {DRAW_STATUS_LABELS.get(r.status, r.status)} · {mark}"
            f" · 指纹 {r.fingerprint[:16]}… · 承诺 {r.commitment[:16]}…"
            + (f" · 批准人 {r.approved_by}：{r.redraw_reason}" if r.approved_by else "")
        )
        if r.error:
            lines.append(f"  失败原因：{r.error.get('message')}")
    send(ctx, [], "\n".join(lines), reply=True)
