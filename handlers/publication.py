"""公示: a checking unit records that it published its results of a task (Art. 37, "who checks,
enters and publishes"), once; the reminders stop and the record says whether it was on time."""

from __future__ import annotations

from bot.chat.context import Context, Role, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Router
from handlers.common import load_task, local, person, subject
from handlers.reminders import calendar, publication_deadline_of
from storage import public
from storage import publication as store
from storage.models import Publication, Task

router = Router("publication")

PUBLISHERS = (Role.PUBLISHER, Role.CHIEF)


@router.command(
    "公示",
    roles=PUBLISHERS,
    usage="公示 <任务> [网址]",
    summary="登记本单位已公开某任务的检查结果（第37条）",
)
async def record_publication(msg: TextCommand, ctx: Context) -> None:
    """Art. 37: the publishers and chiefs of a task's checking unit record its publication:
    when, by whom, where; once per (task, unit)."""
    words = msg.text.split()
    task = await load_task(ctx, msg.text, "公示")
    units = await my_units(ctx, task)
    url = words[1] if len(words) > 1 else ""
    supplements = []
    for unit in units:
        existing = await store.publication_of(ctx.session, task.id, unit)
        if existing is not None and await store.unpublished(ctx.session, existing):
            supplements.append(existing)  # results recorded after it (Art. 37)
        elif existing is not None:
            raise UserError(
                f"任务 {task.code} {await ctx.repos.orgs.name(unit)}的公开已于"
                f"{local(ctx, existing.published_at)}由 {await person(ctx, existing.published_by)} 登记"
                f"（{existing.url}），无需重复登记。"
            )
    if supplements:
        for existing in supplements:
            await publish_late(ctx, task, existing, url)
        return
    if task.completed_at is None and task.status == "imported":
        raise UserError(
            f"任务 {task.code} 是启用前的检查（导入），其结果属以前年度或已在别处公开，"
            "无需在本系统登记公开（第37条）。"
        )
    if task.completed_at is None:
        raise UserError(f"任务 {task.code} 尚有检查未提交结果，完成后再公开和登记（第37条）。")
    if not url and not ctx.settings.public.enabled:
        raise UserError(
            "本系统的公开页面尚未开通，请在门户网站或指定平台公开后，"
            f"发送「公示 {task.code} <网址>」登记公开地址。"
        )
    if url and (not url.lower().startswith(("http://", "https://")) or len(url) > 2000):
        raise UserError(f"「{url[:60]}」不是网址，请写明以 http:// 或 https:// 开头的公开地址。")
    for unit in units:
        await record_one(ctx, task, unit, url or page_url(ctx, task, unit))


async def publish_late(ctx: Context, task: Task, publication: Publication, url: str) -> int:
    """Art. 37: a result recorded after the unit published the task is published within 20
    working days of its recording: on the bot's own page at once, on the portal when the
    publisher records it (公示 again). Returns how many were published now."""
    on_page = ctx.settings.public.enabled and publication.url == page_url(
        ctx, task, publication.org_code
    )
    if not on_page and not url:
        raise UserError(
            f"任务 {task.code} 有公开后录入的检查结果，请在门户网站或指定平台公开后发送"
            f"「公示 {task.code} <网址>」登记补充公开（第37条）。"
        )
    now = ctx.now()
    # Published now, each result judged against its own due day (the event counts them).
    late = await store.publish_late(ctx.session, publication, now, ctx.settings.tz, calendar(ctx))
    if on_page:  # and on the bot's own page: the unit's lines are written now
        await public.publish_lines(ctx.session, publication, now, ctx.settings.tz)
    name = await ctx.repos.orgs.name(publication.org_code)
    where = publication.url if on_page else url
    ctx.reply(
        f"【已补充公开】任务 {task.code}「{task.name}」{name}在公开后录入的检查结果 {late} 条"
        f"已公开：{where}（第37条）。"
    )
    await ctx.audit(
        action="publication.supplement",
        subject=subject(task),
        payload={"org": publication.org_code, "url": where, "results": late},
    )
    return late


def page_url(ctx: Context, task: Task, unit: str) -> str:
    """The bot's own public page of the unit and the task's year (一公开)."""
    return ctx.settings.public.url(f"/{unit}/{task.year}")


async def my_units(ctx: Context, task: Task) -> list[str]:
    """The task's checking units where the actor is a publisher or chief."""
    units = {r.org_code for r in await store.unit_results(ctx.session, [task.id])}
    mine = sorted({b.org_code for b in ctx.actor.bindings if b.role in PUBLISHERS} & units)
    if not mine:
        raise UserError(
            f"任务 {task.code} 的检查结果由检查单位公开（谁检查、谁公开，第37条），"
            "您不是其检查单位的信息公开员或部门负责人。"
        )
    return mine


async def record_one(ctx: Context, task: Task, unit: str, url: str) -> None:
    # Art. 37: the unit is due by its earliest unpublished result (one recorded after the
    # task's clock started is due from its recording).
    first = next(
        (
            r.first_unpublished_at
            for r in await store.unit_results(ctx.session, [task.id])
            if r.org_code == unit
        ),
        None,
    )
    deadline = publication_deadline_of(ctx, task, calendar(ctx), first)
    today = ctx.now().astimezone(ctx.settings.tz).date()
    row, _ = await store.record_publication(
        ctx.session,
        task,
        unit,
        ctx.actor.userid,
        url,
        ctx.now(),
        deadline=deadline.due,
        published_on=today,
        tz=ctx.settings.tz,
        calendar=calendar(ctx),
    )
    if ctx.settings.public.enabled and url == page_url(ctx, task, unit):
        # On the bot's own page: the unit's lines are written now (nothing internal).
        await public.publish_lines(ctx.session, row, ctx.now(), ctx.settings.tz)
    if row.on_time:
        timing = f"按期（期限 {deadline.due}{deadline.note()}）"
    else:
        over = calendar(ctx).working_days_between(deadline.due, today)
        timing = f"逾期 {over} 个工作日（期限 {deadline.due}{deadline.note()}）"
    name = await ctx.repos.orgs.name(unit)
    ctx.reply(
        f"【已登记公开】任务 {task.code}「{task.name}」{name}的检查结果已公开：{url}\n"
        f"公开 {row.results} 条，保密不公开 {row.withheld} 条（第37条）；{timing}。"
        "公开提醒随即停止。"
    )
    await ctx.audit(
        action="publication.record",
        subject=subject(task),
        payload={
            "org": unit,
            "url": url,
            "deadline": deadline.due.isoformat(),
            "provisional": deadline.provisional,
            "on_time": row.on_time,
            "results": row.results,
            "withheld": row.withheld,
        },
    )
