"""一公开 (Art. 37): the public page's name search finds exactly the lines a plain substring
filter over the published lines finds, newest first, on SQLite and on PostgreSQL alike,
whatever the plan the database takes (SQLite walks the rarest bigram; PostgreSQL intersects
its GIN index and, past the count's cap, walks too).

The record is generated (``storage.synthetic_checks``) over targets named from a small alphabet,
so that bigrams repeat and fragments match many lines, and published through the same path a
unit's 公示 takes (``storage.public.publish_lines``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import public
from storage.db import Database
from tests.support.public import ALPHABET, publish_names


@pytest.fixture
async def lines(db: Database) -> list[tuple[int, str, str]]:
    return await publish_names(db)


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


UNIT_CHOICES: list[list[str] | None] = [None, ["150102"], ["150100", "150102", "150103"]]


@fuzz(60)
@given(
    query=st.text(ALPHABET + "a", min_size=1, max_size=5),
    units=st.sampled_from(UNIT_CHOICES),
    cap=st.sampled_from([4, 1000]),
)
async def test_art37_name_search_is_a_substring_filter_on_both_databases(
    db: Database,
    lines: list[tuple[int, str, str]],
    query: str,
    units: list[str] | None,
    cap: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every page of a search, walked to its end: the matching lines newest first, the count
    capped (a small cap drives PostgreSQL's walk past its index's first answer)."""
    monkeypatch.setattr(public, "COUNT_CAP", cap)
    expected = sorted(
        (
            i
            for i, org, name in lines
            if query.lower() in name.lower() and (units is None or org in units)
        ),
        reverse=True,
    )
    got: list[int] = []
    total, capped = None, None
    async with db.transaction() as s:
        while True:
            page = await public.page(s, units, 2026, query=query, offset=len(got), limit=7)
            total, capped = (page.total, page.capped) if total is None else (total, capped)
            if not page.entries:
                break
            got += [e.id for e in page.entries]
    assert got == expected, (query, units)
    assert total == min(len(expected), cap)
    assert capped == (len(expected) > cap)
