"""The one factory for a handler's Context: the event worker, due actions, the console and the
demo all build it here, so a handler sees the same thing whoever runs it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat.context import Actor, Binding, Clock, Context, Entropy, Role, SystemEntropy
from bot.config import Settings
from storage.db import Database
from storage.outbox import Outbox
from storage.repos import Repositories

SYSTEM = "system"  # the actor of due actions (reminders, lapses)


async def load_actor(repos: Repositories, userid: str) -> Actor:
    """A user's role bindings and, if there is one, their active inspector record (one query)."""
    found, inspector = await repos.roles.identity(userid)
    bindings = tuple(
        Binding(Role(role), org, dept)
        for role, org, dept in found
        if role in Role.__members__.values()
    )
    return Actor(
        userid=userid,
        bindings=bindings,
        inspector_org=inspector[0] if inspector else None,
        name=inspector[1] if inspector else None,
    )


async def build_context(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    *,
    userid: str | None = None,
    entropy: Entropy | None = None,
    event_id: int | None = None,
    channel: str = "text",
    deferred_outbox: bool = False,
) -> Context:
    """A Context in ``session``'s transaction: as ``userid``, or as the system for due actions.
    Messages it queues name ``event_id`` as their cause. ``deferred_outbox``: they are inserted
    only by ``ctx.outbox.write()`` (storage.outbox.Outbox), which the caller then owes."""
    repos = Repositories(session)
    actor = Actor(SYSTEM) if userid is None else await load_actor(repos, userid)
    return Context(
        session=session,
        outbox=Outbox(session, clock.now(), cause_event_id=event_id, deferred=deferred_outbox),
        clock=clock,
        settings=settings,
        actor=actor,
        repos=repos,
        entropy=entropy or SystemEntropy(),
        event_id=event_id,
        channel=channel,
    )


@contextlib.asynccontextmanager
async def acting_as(
    db: Database,
    settings: Settings,
    clock: Clock,
    userid: str,
    *,
    entropy: Entropy | None = None,
) -> AsyncIterator[Context]:
    """A Context for ``userid`` in a transaction of its own, committed on exit (the demo's way
    of running a handler step as the worker would)."""
    async with db.transaction() as session:
        yield await build_context(session, settings, clock, userid=userid, entropy=entropy)
