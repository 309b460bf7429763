"""Waiting on a condition, never on the clock: each wait has a deadline that fails loudly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

DEADLINE = 10.0  # seconds; only ever reached when the awaited thing does not happen


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    deadline: float = DEADLINE,
    poll: float = 0.005,
) -> None:
    """Return as soon as ``condition()`` holds; raise AssertionError naming ``what`` when it
    still does not hold after ``deadline`` seconds. ``condition`` may be a coroutine function
    (a database read). The poll interval only paces the checks: nothing waits for it to pass."""

    async def holds() -> bool:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        return bool(result)

    try:
        async with asyncio.timeout(deadline):
            while not await holds():  # noqa: ASYNC110 - a row or a call has no event to await
                await asyncio.sleep(poll)
    except TimeoutError:
        raise AssertionError(f"gave up after {deadline}s waiting for {what}") from None


async def within(awaitable: Awaitable[object], what: str, deadline: float = DEADLINE) -> object:
    """``await awaitable``, failing loudly when it does not complete by ``deadline``."""
    try:
        async with asyncio.timeout(deadline):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"gave up after {deadline}s waiting for {what}") from None
