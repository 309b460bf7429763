"""待办: what waits on this user, each with the one line (or tap) that deals with it (Art. 29,
37, 38, 40): swap decisions, descriptions and results owed, tasks with results missing,
amendments awaiting a chief's confirmation, tasks awaiting publication."""

from __future__ import annotations

from bot.chat.context import Context, Role
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import MANAGERS, local, person, send
from storage import quotas
from storage import results as result_store
from storage import swaps as swap_store

router = Router("todo")

SHOWN = 30


def section(head: str, rows: list[str]) -> list[str]:
    """A heading with its count, then at most SHOWN rows; nothing when there are no rows."""
    if not rows:
        return []
    more = [f"  ……另有{len(rows) - SHOWN}项"] if len(rows) > SHOWN else []
    return [head.format(n=len(rows)), *rows[:SHOWN], *more]


async def swaps_to_decide(ctx: Context) -> list[str]:
    if Role.CHIEF not in ctx.actor.roles:
        return []
    rows = [
        f"  #{r.id} {await person(ctx, r.userid)}：{r.reason}"
        f" →「批准替换 {r.id}」或「驳回替换 {r.id} <原因>」"
        for r in await swap_store.pending(ctx.session)
        if ctx.actor.userid in r.heads
    ]
    return section("待审批的替换申请（{n}项，也可在审批卡片上点「批准」「驳回」）：", rows)


async def owed(ctx: Context) -> list[str]:
    if Role.INSPECTOR not in ctx.actor.roles:
        return []
    mine = await result_store.owed_by(ctx.session, ctx.actor.userid, ctx.now())
    held = [
        f"  编号 {o.number} {o.target}「{o.held_phrase}」（{local(ctx, o.held_until)} 前）"
        " → 直接回复说明"
        for o in mine
        if o.held_phrase and o.held_until is not None
    ]
    results = [
        f"  编号 {o.number} {o.target}，期限 {o.check_end.isoformat()}"
        f" →「结果 {o.number} 未发现问题」或「结果 {o.number} <结果文字> <说明>」"
        for o in mine
        if not o.held_phrase
    ]
    return [
        *section("待填写的问题说明（{n}项）：", held),
        *section("待提交结果的检查（{n}项，也可在任务卡片上选择提交）：", results),
    ]


async def tasks_missing(ctx: Context) -> list[str]:
    managed = sorted(await ctx.visible_orgs(MANAGERS))
    if not managed:
        return []
    rows = [
        f"  {t.code}「{t.name}」缺{t.missing}项，检查期至 {t.check_end.isoformat()}"
        f" →「任务进度 {t.code}」"
        for t in await quotas.tasks_missing_results(ctx.session, managed)
    ]
    return section("结果未报齐的任务（{n}个）：", rows)


async def amendments(ctx: Context) -> list[str]:
    if Role.CHIEF not in ctx.actor.roles:
        return []
    orgs = sorted(await ctx.visible_orgs([Role.CHIEF]))
    rows = [
        f"  编号 {a.number}（任务 {a.task_code}）{a.name}：{a.description}"
        f" →「确认结果 {a.number}」或「更正 {a.number} <结果文字> <原因>」"
        for a in await result_store.amended_unconfirmed(ctx.session, orgs)
    ]
    return section("提交人修改后待确认的结果（{n}项）：", rows)


async def to_publish(ctx: Context) -> list[str]:
    orgs = sorted(await ctx.visible_orgs([Role.PUBLISHER, Role.CHIEF, Role.ADMIN]))
    if not orgs:
        return []
    rows = [
        f"  {t.code}「{t.name}」→「公示 {t.code} [网址]」"
        for t in await quotas.tasks_awaiting_publication(ctx.session, orgs)
    ]
    return section("待公开结果的任务（{n}个，第37条）：", rows)


@router.command(
    "待办",
    "我的待办",
    roles={Role.ADMIN, Role.CHIEF, Role.PUBLISHER, Role.INSPECTOR},
    usage="待办",
    summary="您待处理的事：替换审批、待填说明、待报结果、待确认的修改、待公开的任务",
)
async def todo(msg: TextCommand, ctx: Context) -> None:
    """Art. 29, 37, 38, 40: what waits on this user, each with its one-line action."""
    lines = [
        *await swaps_to_decide(ctx),
        *await owed(ctx),
        *await tasks_missing(ctx),
        *await amendments(ctx),
        *await to_publish(ctx),
    ]
    send(ctx, [], "\n".join(lines) or "您目前没有待办事项。", reply=True)
