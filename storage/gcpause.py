"""Pause the cyclic garbage collector around a bulk step that mostly allocates.

A draw at 100,000 targets builds a few hundred thousand small objects (rows, facts, pool
entries, inspections, cards) that all stay alive until the step ends. Each time enough of them
pile up, the collector walks every tracked object of the process, and again and again as the
pile grows: a third to a half of the step's time. These objects form no reference cycles, so
pausing the collector for the step loses nothing; whatever is due runs once afterwards.

The pause is counted, so that steps of concurrent coroutines may overlap (the collector comes
back when the last one ends) and it never turns on a collector that was off to begin with.
Other coroutines running meanwhile only have their cyclic garbage collected a little later:
a draw is a few seconds at most, a handful of times a year per organisation.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _was_enabled
    if _depth == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _was_enabled:
            gc.enable()


def gc_paused(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a coroutine function: the collector is paused while it runs."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with paused_gc():
            return await fn(*args, **kwargs)

    return wrapper
