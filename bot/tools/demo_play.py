"""The demo's players: a witnessed draw, inspectors answering on their cards and a head approving
a swap, each step through the same handlers chat uses, in its own transaction, as the worker
would run it (contexts from ``bot.runtime.contexts``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from bot.chat.context import Clock, Entropy, SystemClock, SystemEntropy, UserError
from bot.chat.inbound import CardEvent, SelectedItem, TextCommand
from bot.config import Settings
from bot.runtime.contexts import acting_as
from handlers.common import load_inspection, load_task, require_manager
from handlers.draws import commit_draw, run_draw, witnesses
from handlers.results import confirm_description, description_arrived, result_card
from handlers.swaps import decide, request_swap
from storage import draws
from storage import results as results_store
from storage import swaps as swap_store
from storage import tasks as task_store
from storage.db import Database
from storage.draws import Outcome
from storage.models import Inspection


@dataclass(frozen=True)
class DemoDraw:
    task_code: str
    commitment: str
    fingerprint: str
    witness: str
    inspections: int
    how_to_verify: str


async def demo_witnessed_draw(
    db: Database,
    settings: Settings,
    *,
    task_code: str,
    admin: str,
    witness: str,
    clock: Clock | None = None,
    entropy: Entropy | None = None,
) -> DemoDraw:
    """Run a witnessed draw the way chat does (抽查, then 见证), in two transactions, and say
    how anyone can check it. Messages are queued in the outbox for the running sender."""
    clock = clock or SystemClock()
    entropy = entropy or SystemEntropy()

    async def step(action: str) -> Outcome | None:
        async with acting_as(db, settings, clock, admin, entropy=entropy) as ctx:
            task = await load_task(ctx, task_code, action)
            await require_manager(ctx, task)
            if action == "抽查":
                return await commit_draw(ctx, task, unwitnessed=False)
            row = await draws.latest_draw(ctx.session, task.id)
            assert row is not None
            return await run_draw(
                ctx, task, row, witness=witness, plan=None, told=await witnesses(ctx, task)
            )

    await step("抽查")
    outcome = await step("见证")
    assert outcome is not None
    if outcome.error is not None:
        raise UserError(str(outcome.error))
    code = task_store.normalise_code(task_code)
    return DemoDraw(
        task_code=code,
        commitment=outcome.draw.commitment,
        fingerprint=outcome.draw.fingerprint,
        witness=witness,
        inspections=len(outcome.assignments),
        how_to_verify=(
            f"shuangsuiji draw export {code} {code}.json\n"
            f"shuangsuiji draw verify {code}.json        # MATCH, or the first difference\n"
            f"python inspection/reference_verifier.py {code}.json   # standard library only"
        ),
    )


@dataclass(frozen=True)
class DemoAnswers:
    task_code: str
    answered: list[tuple[int, str, str]]  # (number, who, phrase)
    swap: tuple[int, str, str] | None  # (number, leaving, joining)


DEMO_PLAYS = (
    ("no_problem", ""),
    ("ordered_to_rectify", "污水处理设施未正常运行，已当场责令整改"),
)


async def demo_answers(
    db: Database,
    settings: Settings,
    *,
    task_code: str,
    clock: Clock | None = None,
    response_code: Callable[[], str] | None = None,
) -> DemoAnswers:
    """Play a few inspectors answering on their cards (one with a problem and its description)
    and one swap approved by the head, through the same handlers chat uses, each step in its own
    transaction; messages are queued for the running sender. ``response_code`` (the stand-in's
    ``new_response_code``) makes each click's card update valid."""
    clock = clock or SystemClock()
    async with db.transaction() as session:
        task = await task_store.get_task(session, task_code)
        if task is None:
            raise UserError(f"任务「{task_code}」不存在。")
        rows = await session.execute(
            select(Inspection.id, Inspection.number)
            .where(Inspection.task_id == task.id, Inspection.status == "open")
            .order_by(Inspection.number)
        )
        visits = rows.all()
        firsts = {i: (await results_store.team(session, i))[0] for i, _ in visits}
        code = task.code
    answered: list[tuple[int, str, str]] = []
    for (inspection_id, number), (result, text) in zip(visits, DEMO_PLAYS, strict=False):
        member, name = firsts[inspection_id]
        click = CardEvent(
            member.userid,
            int(clock.now().timestamp()),
            f"result:{number}",
            member.card_task_id or "",
            "vote_interaction",
            response_code() if response_code else "",
            (SelectedItem(QuestionKey="result", OptionIds=[result]),),
        )
        async with acting_as(db, settings, clock, member.userid) as ctx:
            await result_card(click, ctx)
        if text:
            async with acting_as(db, settings, clock, member.userid) as ctx:
                await description_arrived(TextCommand(member.userid, text, "demo", 0), ctx)
            async with acting_as(db, settings, clock, member.userid) as ctx:
                await confirm_description(ctx, None)  # as the member taps 确认
        answered.append((number, name, results_store.phrases_for(clock.now().date())[result]))
    swap = None
    if len(visits) > len(DEMO_PLAYS):
        inspection_id, number = visits[len(DEMO_PLAYS)]
        leaving, name = firsts[inspection_id]
        joining = await demo_swap(
            db, settings, number=number, requester=leaving.userid, clock=clock
        )
        swap = (number, name, joining)
    return DemoAnswers(code, answered, swap)


async def demo_swap(
    db: Database, settings: Settings, *, number: int, requester: str, clock: Clock | None = None
) -> str:
    """A member asks to be swapped and the first head approves; returns who joined."""
    clock = clock or SystemClock()
    async with acting_as(db, settings, clock, requester) as ctx:
        await request_swap(
            TextCommand(requester, f"{number} 临时借调外地，无法参加检查", "demo", 0), ctx
        )
        inspection = await load_inspection(ctx, str(number), "申请替换")
        member = await results_store.active_member(ctx.session, inspection.id, requester)
        assert member is not None
        pending = await swap_store.pending_for(ctx.session, member.id)
        assert pending is not None
        rid, head = pending.id, pending.heads[0]
    async with acting_as(db, settings, clock, head) as ctx:
        await decide(ctx, rid, approve=True, note="", card=None)
        request = await swap_store.get(ctx.session, rid)
        assert request is not None and request.replacement_userid is not None
        names = await results_store.names_of(ctx.session, [request.replacement_userid])
        return names.get(request.replacement_userid, request.replacement_userid)
