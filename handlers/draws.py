"""抽查预览 / 抽查 / 见证 / 作废抽取 / 批准作废 / 抽取名单 / 抽取记录: the provably fair draw
(Art. 27-29).

Two steps: 抽查 freezes the pool, commits to a secret and fixes who witnesses (never the sealer)
and by when; the commitment reaches the witnesses, the task's chiefs and the admins of the level
above before any witness value exists; 见证 supplies the values and the draw runs on the last.
抽查 … 无见证 <理由> draws at once and is marked 未见证 everywhere. A task is drawn once: a draw
that cannot be used is cancelled with the level above's approval, never re-drawn.
Confidential while open (Art. 27): each team learns only its own target from its card; the full
list goes to the drawing department's admins and chiefs and to the level above.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import (
    DRAW_STATUS_LABELS,
    MANAGERS,
    actor_name,
    inspection_card,
    item_names,
    load_task,
    local,
    manages,
    people,
    person,
    refusal_text,
    require_drawer,
    require_manager,
    result_options,
    send,
)
from inspection.draw import DrawError, Witness
from inspection.pool import EXCLUSION_LABELS, PoolPlan
from inspection.quotas import TIER_LABELS, Tier
from storage import draws, task_approval
from storage import results as result_store
from storage.draws import Assignment, DrawRefused, Outcome
from storage.gcpause import gc_paused
from storage.models import Draw, Inspection, Inspector, Organisation, Target, Task
from storage.models import TeamMember as TeamRow

router = Router("draws")

LIST_LIMIT = 30  # inspections listed in a summary; the rest via 抽取名单
FALLBACK_URL = "https://work.weixin.qq.com/"


# --- who may do what ---------------------------------------------------------------------------


async def level_above(ctx: Context, task: Task) -> str | None:
    """The organisation above the unit that drew (Art. 5: a branch's task is drawn under its
    league/city bureau, so the level above is the region); None for the region itself."""
    drawing = await task_approval.approving_org(ctx.repos, task) or task.org_code
    org = await ctx.repos.orgs.get(drawing)
    return org.parent_code if org and org.parent_code else None


async def informed(ctx: Context, task: Task) -> list[str]:
    """Who gets the commitment before the witness value: the task's chiefs and the admins of
    the level above (for the region itself: its other admins); a branch's task is sealed under
    its league/city bureau (Art. 5), whose chiefs are told too, and the region above it."""
    chiefs = await ctx.repos.roles.holders(Role.CHIEF, [task.org_code], task.drawing_dept or None)
    org = await ctx.repos.orgs.get(task.org_code)
    above_org = org.parent_code if org and org.parent_code else task.org_code
    admins = await ctx.repos.roles.holders(Role.ADMIN, [above_org])
    city = await task_approval.approving_org(ctx.repos, task)
    city_chiefs = await ctx.repos.roles.holders(Role.CHIEF, [city]) if city else []
    # The level above the unit that drew (for a branch's task: the region), which decides a
    # cancellation (作废抽取), holds the commitment from the start too.
    above = await level_above(ctx, task)
    above_admins = await ctx.repos.roles.holders(Role.ADMIN, [above]) if above else []
    return sorted({*chiefs, *admins, *city_chiefs, *above_admins} - {ctx.actor.userid})


async def task_chiefs(ctx: Context, task: Task) -> list[str]:
    """The task's chiefs: of its drawing department, and of the league/city bureau a branch's
    task is drawn under (Art. 5)."""
    chiefs = await ctx.repos.roles.holders(Role.CHIEF, [task.org_code], task.drawing_dept or None)
    city = await task_approval.approving_org(ctx.repos, task)
    if city is not None:
        chiefs += await ctx.repos.roles.holders(Role.CHIEF, [city])
    return sorted(set(chiefs))


async def eligible_witnesses(ctx: Context, task: Task) -> list[str]:
    """Who may witness: the task's chiefs, or an admin or chief of the level above (for a
    region task: the region's chiefs and admins); never the person who seals."""
    above = await level_above(ctx, task) or task.org_code
    upper = [
        *await ctx.repos.roles.holders(Role.ADMIN, [above]),
        *await ctx.repos.roles.holders(Role.CHIEF, [above]),
    ]
    return sorted({*await task_chiefs(ctx, task), *upper} - {ctx.actor.userid})


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


COMMIT_USAGE = (
    "抽查 <任务> [见证人=<姓名或账号>,…] [期限=YYYY-MM-DD] ｜ 抽查 <任务> 随机源 <公开随机源说明>"
    " ｜ 抽查 <任务> 无见证 <理由>"
)


@router.command(
    "抽查",
    roles=MANAGERS,
    usage=COMMIT_USAGE,
    summary="封存抽取条件、提交密钥承诺并确定见证人；见证人提供见证值后抽取",
)
async def commit(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: step one of the draw. The commitment, the witnesses (fixed now, never the
    sealer) and their deadline go out before any witness value exists. 无见证 needs a reason
    and is marked 未见证 everywhere."""
    words = msg.text.split()
    task = await load_task(ctx, msg.text, "抽查")
    await require_drawer(ctx, task)
    if len(words) > 1 and words[1] in ("无见证", "不见证", "unwitnessed"):
        reason = msg.typed_after_words(2) if len(words) > 2 else ""
        if not reason:
            raise UserError(f"无见证抽取须写明理由，如「抽查 {task.code} 无见证 见证人均出差」。")
        await commit_draw(ctx, task, witnesses=None, unwitnessed_reason=reason)
        return
    if len(words) > 1 and words[1] in ("随机源", "公开随机源"):
        source = msg.typed_after_words(2) if len(words) > 2 else ""
        if not source:
            raise UserError(
                f"请写明公开随机源及其备用源，如「抽查 {task.code} 随机源 上证综指2026-12-15收盘价"
                "（休市则取下一交易日收盘价）」。"
            )
        await commit_draw(ctx, task, witnesses=None, public_source=source)
        return
    options: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = unicodedata.normalize("NFKC", word).partition("=")
        if not sep or key not in ("见证人", "见证", "期限") or key in options:
            raise UserError(f"不认识「{word}」。用法：{COMMIT_USAGE}")
        options["见证人" if key == "见证" else key] = value
    chosen = await choose_witnesses(ctx, task, options.get("见证人"))
    deadline = None
    if "期限" in options:
        deadline = witness_deadline(ctx, options["期限"])
    await commit_draw(ctx, task, witnesses=chosen, deadline=deadline)


async def choose_witnesses(ctx: Context, task: Task, typed: str | None) -> list[str]:
    """The named witnesses (names or accounts, in the order their values enter the seed), or
    by default the task's one chief; each must be eligible (``eligible_witnesses``)."""
    eligible = await eligible_witnesses(ctx, task)
    names = dict(zip(eligible, await people(ctx, eligible), strict=True))
    listing = "、".join(f"{n}（{u}）" for u, n in names.items()) or "无"
    if not typed:
        own = [u for u in await task_chiefs(ctx, task) if u in names]
        if len(own) == 1:
            return own
        raise UserError(
            f"请指定见证人（本单位部门负责人或上级的管理员、部门负责人，不能是封存人本人），"
            f"如「抽查 {task.code} 见证人={next(iter(names.values()), '张三')}」。可选：{listing}"
        )
    chosen: list[str] = []
    for word in typed.replace("，", ",").replace("、", ",").split(","):
        word = word.strip()
        if not word:
            continue
        found = [u for u, n in names.items() if word in (u, n)]
        if word == ctx.actor.userid or word == actor_name(ctx):
            raise UserError("封存抽取的人不能同时做见证人（见证值须来自他人）。")
        if len(found) != 1:
            raise UserError(f"「{word}」不是本任务可选的见证人。可选：{listing}")
        if found[0] in chosen:
            raise UserError(f"见证人「{word}」写了两次。")
        chosen.append(found[0])
    if not chosen:
        raise UserError(f"请写明见证人。可选：{listing}")
    return chosen


def witness_deadline(ctx: Context, typed: str) -> dt.datetime:
    """期限=YYYY-MM-DD: the end of that day, local time; within 30 days."""
    try:
        day = dt.date.fromisoformat(typed)
    except ValueError:
        raise UserError(f"见证期限「{typed}」应写成 YYYY-MM-DD，如 期限=2026-12-03。") from None
    tz = ctx.settings.tz
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    now = ctx.now()
    if end <= now or end > now + dt.timedelta(days=30):
        raise UserError(f"见证期限{day}应在今天到30天之内。")
    return end.astimezone(dt.UTC)


async def commit_draw(
    ctx: Context,
    task: Task,
    *,
    witnesses: list[str] | None,
    deadline: dt.datetime | None = None,
    unwitnessed_reason: str | None = None,
    public_source: str | None = None,
) -> Outcome | None:
    secret = ctx.entropy.token_bytes(32)
    try:
        row, plan = await draws.commit(
            ctx.session,
            task,
            actor=ctx.actor.userid,
            now=ctx.now(),
            secret=secret,
            witnesses=witnesses,
            deadline=deadline,
            unwitnessed_reason=unwitnessed_reason,
            public_source=public_source,
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    told = sorted({*await informed(ctx, task), *(witnesses or ())} - {ctx.actor.userid})
    notice = await commitment_text(ctx, task, row)
    send(ctx, told, notice)
    if witnesses is None and public_source is None:
        return await run_draw(ctx, task, row, witness=None, plan=plan, told=told)
    names = "、".join(await people(ctx, told))
    if public_source is not None:
        assert row.witness_deadline is not None
        lines = [
            f"任务 {task.code} 抽取条件已封存，见证值取公开随机源：{public_source}",
            *pool_lines(plan),
            f"条件指纹：{row.fingerprint}",
            f"密钥承诺（SHA-256）：{row.commitment}",
            f"承诺已发送给：{names}",
            f"期限：{local(ctx, row.witness_deadline)}。数值公布后，由一人发送「随机源值 {task.code}"
            f" <数值>」，另一人核对后发送「确认随机源 {task.code} <数值>」，两者一致即抽取。",
        ]
        send(ctx, [], "\n".join(lines), reply=True)
        return None
    lines = [
        f"任务 {task.code} 抽取条件已封存。",
        *pool_lines(plan),
        f"条件指纹：{row.fingerprint}",
        f"密钥承诺（SHA-256）：{row.commitment}",
        f"承诺已发送给：{names}",
        f"见证人（按此顺序计入种子）：{'、'.join(await people(ctx, witnesses or []))}；"
        f"见证期限：{local(ctx, row.witness_deadline)}"
        if row.witness_deadline
        else "",
        "请见证人在抽查会上各自发送「见证 "
        f"{task.code} <见证值>」（如现场报出的数字）；最后一个见证值到达时抽取。"
        "逾期未齐的，只能申请作废，不能重新封存。",
    ]
    send(ctx, [], "\n".join(line for line in lines if line), reply=True)
    return None


async def commitment_text(ctx: Context, task: Task, row: Draw) -> str:
    org_name = await ctx.repos.orgs.name(task.org_code)
    lines = [
        f"【抽查承诺】任务 {task.code}「{task.name}」",
        f"抽取单位：{org_name}（{task.org_code}），封存人 {await person(ctx, row.committed_by)}",
        f"条件指纹：{row.fingerprint}",
        f"密钥承诺（SHA-256）：{row.commitment}",
    ]
    if task.replaces:
        lines.append(f"本任务替代已作废的任务 {task.replaces}。")
    if row.public_source is not None:
        assert row.witness_deadline is not None
        lines += [
            f"见证方式：公开随机源「{row.public_source['source']}」（数值公布后录入并由第二人确认）",
            f"期限：{local(ctx, row.witness_deadline)}（逾期只能作废）",
        ]
    elif row.witnesses is None:
        lines.append(f"本次抽取无见证（未见证），立即进行。理由：{row.unwitnessed_reason}")
    else:
        assert row.witness_deadline is not None
        lines += [
            f"见证方式：{len(row.witnesses)}位见证人，按顺序"
            f"{'、'.join(await people(ctx, row.witnesses))}，各提供一个见证值",
            f"见证期限：{local(ctx, row.witness_deadline)}（逾期只能作废）",
            "见证值公布之前您已收到本承诺。抽取后可核对：导出记录中密钥的 SHA-256 应等于上述承诺值。",
        ]
    return "\n".join(lines)


# --- 见证 ----------------------------------------------------------------------------------------


@router.command(
    "见证",
    roles=MANAGERS,
    usage="见证 <任务> <见证值>",
    summary="见证人提供见证值；最后一个见证值到达时抽取",
)
async def witness(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: step two. Only the witnesses fixed at sealing, each once, before the
    deadline; seed = SHA-256(secret, every value in the sealed order); the draw runs when the
    last value comes in, and the sealer and every witness hear the result."""
    code, _, value = msg.text.partition(" ")
    task = await load_task(ctx, code, "见证")
    value = msg.typed_after_words(1) if value.strip() else ""  # utf8, no normalisation (spec)
    if not value:
        raise UserError(f"请写明见证值，如「见证 {task.code} 20261130」。")
    row = await draws.latest_draw(ctx.session, task.id)
    if row is None or row.status != "committed":
        state = DRAW_STATUS_LABELS.get(row.status, row.status) if row else "尚未封存"
        raise UserError(
            f"任务 {task.code} 当前没有等待见证的抽取（{state}）。先发送「抽查 {task.code}」封存条件。"
        )
    try:
        complete = await draws.give_witness(
            ctx.session, task, row, actor=ctx.actor.userid, value=value, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    assert row.witnesses is not None and row.witness_values is not None
    if complete is None:
        missing = [w for w, v in zip(row.witnesses, row.witness_values, strict=True) if v is None]
        ctx.reply(
            f"已记录您的见证值（第{row.witnesses.index(ctx.actor.userid) + 1}位，"
            f"共{len(row.witnesses)}位）。尚待：{'、'.join(await people(ctx, missing))}。"
        )
        return
    told = sorted(
        {*await informed(ctx, task), *row.witnesses, row.committed_by} - {ctx.actor.userid}
    )
    await run_draw(ctx, task, row, witness=complete, plan=None, told=told)


@router.command(
    "随机源值",
    roles=MANAGERS,
    usage="随机源值 <任务> <数值>",
    summary="录入封存时指定的公开随机源的数值（须由另一人确认）",
)
async def source_value(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: the public source's value as published, typed by one person with the role;
    it is used only once a second person confirms it."""
    code, _, value = msg.text.partition(" ")
    task = await load_task(ctx, code, "随机源值")
    await require_drawer(ctx, task)
    row = await _sealed(ctx, task)
    value = msg.typed_after_words(1) if value.strip() else ""
    try:
        await draws.type_source_value(
            ctx.session, task, row, actor=ctx.actor.userid, value=value, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    ctx.reply(
        f"已录入任务 {task.code} 的随机源数值「{value}」，尚未使用：请另一位管理员或部门负责人"
        f"核对公布值后发送「确认随机源 {task.code} <数值>」。"
    )
    others = sorted({*await informed(ctx, task), row.committed_by} - {ctx.actor.userid})
    send(ctx, others, f"任务 {task.code} 的随机源数值已由{actor_name(ctx)}录入，待第二人确认。")


@router.command(
    "确认随机源",
    roles=MANAGERS,
    usage="确认随机源 <任务> <数值>",
    summary="第二人核对并再次输入公开随机源的数值；一致即抽取",
)
async def confirm_source(msg: TextCommand, ctx: Context) -> None:
    """Art. 27-28: a second person types the value again; the same value is used and the draw
    runs, another value withdraws the first (both stay in the audit record)."""
    code, _, value = msg.text.partition(" ")
    task = await load_task(ctx, code, "确认随机源")
    await require_drawer(ctx, task)
    row = await _sealed(ctx, task)
    value = msg.typed_after_words(1) if value.strip() else ""
    try:
        complete = await draws.confirm_source_value(
            ctx.session, task, row, actor=ctx.actor.userid, value=value, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    if complete is None:
        text = (
            f"任务 {task.code} 的随机源数值与录入值不一致，两者均未使用（已记录）。"
            f"请核对公布值后重新发送「随机源值 {task.code} <数值>」。"
        )
        ctx.reply(text)
        send(ctx, [row.committed_by], text)
        return
    told = sorted({*await informed(ctx, task), row.committed_by} - {ctx.actor.userid})
    await run_draw(ctx, task, row, witness=complete, plan=None, told=told)


async def _sealed(ctx: Context, task: Task) -> Draw:
    row = await draws.latest_draw(ctx.session, task.id)
    if row is None or row.status != "committed":
        state = DRAW_STATUS_LABELS.get(row.status, row.status) if row else "尚未封存"
        raise UserError(f"任务 {task.code} 当前没有等待见证的抽取（{state}）。")
    return row


async def run_draw(
    ctx: Context,
    task: Task,
    row: Draw,
    *,
    witness: Witness,
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
            f"任务 {task.code} 抽取未能完成：{what}",
            f"可以：{'，或'.join(fixes)}。",
            "本次抽取已记录，本任务就此结束（同一任务不重新抽取）。调整后新建任务并写明"
            f"「替代={task.code}」，新任务的抽取会注明它。",
        ]
    )


def witness_label(row: Draw) -> str:
    value = draws.witness_of(row)
    if value is None:
        return "未见证" if not row.witnessed else "待见证"
    if isinstance(value, Mapping):
        return f"公开随机源「{value['source']}」，数值「{value['value']}」"
    shown = value if isinstance(value, str) else "」「".join(value)
    return f"已见证，见证值「{shown}」"


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
        f"【抽取结果】任务 {task.code}「{task.name}」（{witness_label(row)}）",
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


# --- 作废抽取 / 批准作废 / 驳回作废 ------------------------------------------------------------------


@router.command(
    "作废抽取",
    roles=MANAGERS,
    usage="作废抽取 <任务> <理由>",
    summary="申请作废不能使用的抽取（须经上级批准；不能重新抽取）",
)
async def request_cancel(msg: TextCommand, ctx: Context) -> None:
    """Art. 29, 41: a sealed draw is never re-drawn nor abandoned. One that cannot be used
    (wrong scope, wrong parameters, a witness who never answered) is cancelled with a reason,
    approved by the level above; the draw and its record stay."""
    code, _, reason = msg.text.partition(" ")
    task = await load_task(ctx, code, "作废抽取")
    await require_drawer(ctx, task)
    reason = msg.typed_after_words(1) if reason.strip() else ""
    if not reason:
        raise UserError(f"请写明作废的理由，如「作废抽取 {task.code} 抽取范围有误」。")
    try:
        await draws.request_cancel(
            ctx.session, task, actor=ctx.actor.userid, reason=reason, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    deciders, who = await cancel_deciders(ctx, task)
    text = (
        f"【作废申请】任务 {task.code}「{task.name}」的抽取，申请人 {actor_name(ctx)}，"
        f"理由：{reason}\n须由{who}发送「批准作废 {task.code}」或「驳回作废 {task.code} <理由>」。"
    )
    ctx.reply(f"已提交作废申请，等待{who}批准。抽取在批准前仍然有效。")
    send(ctx, sorted(set(deciders) - {ctx.actor.userid}), text)


async def cancel_deciders(ctx: Context, task: Task) -> tuple[list[str], str]:
    """Who decides on a cancellation: the admins and chiefs of the level above; for a region
    draw (no level above) the region's chiefs and admins, two different people."""
    above = await level_above(ctx, task)
    org = above or task.org_code
    people_ = [
        *await ctx.repos.roles.holders(Role.ADMIN, [org]),
        *await ctx.repos.roles.holders(Role.CHIEF, [org]),
    ]
    name = await ctx.repos.orgs.name(org)
    if above is None:
        return people_, f"{name}的部门负责人或另一位管理员（自治区抽取无上级：须两人）"
    return people_, f"上级{name}的管理员或部门负责人"


async def cancel_approval(ctx: Context, task: Task, requester: str) -> str:
    """Whose approval the actor's is, or UserError: the level above (not the unit that drew);
    for a region draw the region's chief and a second admin (the requester and the approver
    are two people, one of them a chief)."""
    above = await level_above(ctx, task)
    if above is not None:
        if not await manages(ctx, above):
            name = await ctx.repos.orgs.name(above)
            raise UserError(f"作废须由上级{name}的管理员或部门负责人批准，抽取单位不能自己批准。")
        return "level_above"
    region = task.org_code
    mine = {b.role for b in ctx.actor.bindings if b.org_code == region}
    if not mine & MANAGERS:
        raise UserError("自治区抽取的作废须由自治区的部门负责人和另一位管理员共同完成。")
    requester_chief = requester in await ctx.repos.roles.holders(Role.CHIEF, [region])
    if Role.CHIEF not in mine and not requester_chief:
        raise UserError(
            "自治区抽取的作废须有自治区部门负责人参与：申请人或批准人之一须是部门负责人。"
        )
    return "region_two_person"


@router.command(
    "批准作废",
    roles=MANAGERS,
    usage="批准作废 <任务>",
    summary="上级批准作废抽取：任务关闭，记录保留，可新建任务替代",
)
async def approve_cancel(msg: TextCommand, ctx: Context) -> None:
    """Art. 29, 41: the level above (not the unit that drew) approves; the draw stays in every
    export, the public record and the statistics; its open inspections are withdrawn."""
    task = await load_task(ctx, msg.text, "批准作废")
    try:
        pending = await draws.pending_cancel(ctx.session, task)
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    requester = (pending.cancellation or {}).get("requested_by", "")
    if requester == ctx.actor.userid:
        raise UserError("申请作废的人不能自己批准。")
    approval = await cancel_approval(ctx, task, requester)
    try:
        row, cancelled = await draws.approve_cancel(
            ctx.session, task, approver=ctx.actor.userid, approval=approval, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    for c in cancelled:
        if c.userids:
            ctx.outbox.text(
                c.userids, f"编号 {c.number} 检查任务已撤销：任务 {task.code} 的抽取经批准作废。"
            )
        if c.chatid:
            ctx.outbox.appchat_text(c.chatid, f"编号 {c.number} 检查任务已撤销（抽取作废）。")
    reason = (row.cancellation or {}).get("reason", "")
    text = (
        f"任务 {task.code} 的抽取已作废（{actor_name(ctx)}批准"
        + ("，自治区两人批准" if approval == "region_two_person" else "")
        + f"），原因：{reason}。抽取记录保留，任务关闭"
        + (f"，撤销检查{len(cancelled)}项" if cancelled else "")
        + f"。如需再抽，新建任务并写明「替代={task.code}」。"
    )
    ctx.reply(text)
    send(ctx, sorted({*await informed(ctx, task), requester} - {ctx.actor.userid}), text)


@router.command(
    "驳回作废",
    roles=MANAGERS,
    usage="驳回作废 <任务> <理由>",
    summary="上级驳回作废申请：抽取继续有效",
)
async def reject_cancel(msg: TextCommand, ctx: Context) -> None:
    """The level above refuses a cancellation: the draw stands."""
    code, _, reason = msg.text.partition(" ")
    task = await load_task(ctx, code, "驳回作废")
    reason = msg.typed_after_words(1) if reason.strip() else ""
    if not reason:
        raise UserError(f"请写明驳回的理由，如「驳回作废 {task.code} 范围无误」。")
    try:
        pending = await draws.pending_cancel(ctx.session, task)
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    requester = (pending.cancellation or {}).get("requested_by", "")
    await cancel_approval(ctx, task, requester)
    try:
        await draws.reject_cancel(
            ctx.session, task, actor=ctx.actor.userid, reason=reason, now=ctx.now()
        )
    except DrawRefused as exc:
        raise UserError(refusal_text(exc, ctx.settings.tz)) from None
    text = f"任务 {task.code} 的作废申请已被{actor_name(ctx)}驳回，抽取继续有效。理由：{reason}"
    ctx.reply(text)
    send(ctx, [requester] if requester != ctx.actor.userid else [], text)


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
    if task.replaces:
        lines.append(f"替代已作废（或失败）的任务 {task.replaces}。")
    for r in rows:
        when = r.committed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        mark = witness_label(r) if r.status != "abandoned" else "未见证"
        lines.append(
            f"第{r.attempt}次 {when} {DRAW_STATUS_LABELS.get(r.status, r.status)} · {mark}"
            f" · 指纹 {r.fingerprint[:16]}… · 承诺 {r.commitment[:16]}…"
            + (f" · 批准人 {r.approved_by}：{r.redraw_reason}" if r.approved_by else "")
        )
        if r.witnesses is not None and r.witness_deadline is not None:
            given = sum(1 for v in r.witness_values or [] if v is not None)
            lines.append(
                f"  见证人：{'、'.join(await people(ctx, r.witnesses))}"
                f"（已提供{given}/{len(r.witnesses)}），期限 {local(ctx, r.witness_deadline)}"
            )
        if r.unwitnessed_reason:
            lines.append(f"  无见证理由：{r.unwitnessed_reason}")
        if r.cancellation:
            c = r.cancellation
            state = "已批准" if r.status == "cancelled" else "待上级批准"
            lines.append(
                f"  作废申请（{state}）：{await person(ctx, c['requested_by'])}，理由：{c['reason']}"
                + (
                    f"；批准人 {await person(ctx, c['approved_by'])}"
                    if c.get("approved_by")
                    else ""
                )
            )
        if r.error:
            lines.append(f"  失败原因：{r.error.get('message')}")
    send(ctx, [], "\n".join(lines), reply=True)
