"""一公开 (Art. 37): the public page's name search finds exactly the lines a plain substring
filter over the published lines finds, newest first, on SQLite and on PostgreSQL alike,
whatever the plan the database takes (SQLite walks the rarest bigram; PostgreSQL intersects
its GIN index and, past the count's cap, walks too).

The record is generated (``storage.synthetic_checks``) over targets named from a small alphabet,
so that bigrams repeat and fragments match many lines, and published through the same path a
unit's 公示 takes (``storage.public.publish_lines``)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from storage import public
from storage.db import Database
from storage.models import Inspection, PublicEntry, Target
from tests.conftest import START
from tests.support.facts import assert_search_index_kept
from tests.support.public import ALPHABET, CST, publish_names


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
# The names' characters and their other forms: ASCII and full-width letters, digits and
# brackets, accented Latin in both cases, LIKE's wildcards, a CJK character no name has.
QUERY_ALPHABET = ALPHABET + "aBｂ(（）äＣc１%_京"


def folded(text: str) -> str:
    """What a search matches, computed here: NFKC, casefold, no spaces (Art. 37 search)."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


@fuzz(80)
@given(
    query=st.text(QUERY_ALPHABET, min_size=1, max_size=5),
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
    capped (a small cap drives PostgreSQL's walk past its index's first answer). A line matches
    when the folded query is part of its folded name, the same on both databases, whatever the
    query's length (one character, one bigram, or more)."""
    monkeypatch.setattr(public, "COUNT_CAP", cap)
    expected = sorted(
        (
            i
            for i, org, name in lines
            if folded(query) in folded(name) and (units is None or org in units)
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


@pytest.mark.parametrize(
    ("query", "stored"),
    [
        ("ÄÄ鑫", "ää鑫"),  # accented Latin, either case
        ("ääÄ", "ÄäÄ"),
        ("Ａａ源", "aA源"),  # full-width letters
        ("北京)", "北京）"),  # a full-width bracket typed half-width
        ("（北京", "(北京"),
        ("50%_", "50％＿"),  # LIKE's wildcards are characters
    ],
)
async def test_art37_a_name_is_found_by_its_folded_form_on_both_databases(
    db: Database, lines: list[tuple[int, str, str]], query: str, stored: str
) -> None:
    """The folded fragments the review probed: a line whose name has the fragment in another
    width or case is found by it (three characters or more, so the name filter decides, not a
    bigram alone), and shows its name as stored."""
    name = f"内蒙古{stored}有限公司"
    async with db.transaction() as s:
        line = await s.get(PublicEntry, lines[0][0])
        assert line is not None
        inspection = await s.get(Inspection, line.inspection_id)
        assert inspection is not None
        await s.execute(update(Target).where(Target.id == inspection.target_id).values(name=name))
        # A published line rewritten from its record (as a correction rewrites it).
        assert await public.republish(s, inspection, START, CST, corrected=False)
    async with db.transaction() as s:
        found = await public.page(s, None, 2026, query=query, limit=1000)
        shown = (await s.execute(select(PublicEntry.id, PublicEntry.target_name))).all()
    expected = sorted((i for i, n in shown if folded(query) in folded(n)), reverse=True)
    assert [e.id for e in found.entries] == expected and found.total == len(expected)
    assert (lines[0][0], name) in [(e.id, e.target_name) for e in found.entries]
    await assert_search_index_kept(db)
