"""一公开 (Art. 37): the lines of the public page, copied from the record when a unit publishes.

The public page reads only ``public_entry`` (and ``publication`` for the count of withheld secret
checks): a line holds the target's name and credit code, the task, the check date, the checking
unit and the result phrase, never a person, a description or a record number. A secret result
(Art. 37) never gets a line; it is counted as withheld. A correction of a published result
rewrites its line and says when.

Search by name uses character bigrams of the name (``public_bigram``, keyed by page), so that
any two or more characters of a Chinese name are found from an index at any size.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import followups, spreadsheet
from storage.db import insert_for, is_postgresql
from storage.models import (
    FollowUp,
    Inspection,
    InspectionResult,
    JointCheck,
    Organisation,
    Publication,
    PublicBigram,
    PublicBigramCount,
    PublicEntry,
    Target,
    Task,
)
from storage.publication import unit_of_inspections

MAX_QUERY = 50  # characters of a search
MAX_ROWS = 100_000  # lines in one download

# The published line as downloaded and exported: stable column names (for portals and the
# designated platform), with the page's Chinese headers.
COLUMNS = (
    ("target_name", "检查对象"),
    ("uscc", "统一社会信用代码"),
    ("task_code", "抽查任务"),
    ("task_name", "任务名称"),
    ("check_date", "检查日期"),
    ("unit_name", "检查单位"),
    ("phrase", "检查结果"),
    ("penalty", "行政处罚决定"),
    ("corrected_at", "更正时间"),
)


def fold(text: str) -> str:
    """What a search compares: width and case folded (a query typed full-width still finds)."""
    return unicodedata.normalize("NFKC", text).casefold()


def searchable(text: str) -> str:
    """What a name search matches: the folded text without its spaces. A query matches a line
    when its searchable form is part of the name's (kept in ``public_entry.search_name``), on
    either database; the bigrams are this form's, so every match has all the query's bigrams."""
    return "".join(fold(text).split())


def bigrams(name: str) -> set[str]:
    chars = searchable(name)
    return {a + b for a, b in zip(chars, chars[1:], strict=False)}


def gram_token(year: int, gram: str) -> str:
    return f"{year}:{gram}"


def unit_token(org_code: str) -> str:
    return f"o:{org_code}"


def tokens(year: int, org_code: str, name: str) -> list[str]:
    """A line's search tokens on PostgreSQL (``public_entry.grams``, GIN-indexed): its unit
    and the bigrams of its name, scoped by year (a year's search reads that year's lists)."""
    return [unit_token(org_code), *sorted(gram_token(year, g) for g in bigrams(name))]


def is_uscc(text: str) -> bool:
    t = fold(text).upper()
    return len(t) == 18 and t.isalnum() and t.isascii()


USCC_START = 8  # a code's type (2) and region (6): the shortest beginning searched as a code


def is_uscc_start(text: str) -> bool:
    t = fold(text)
    return len(t) >= USCC_START and t.isalnum() and t.isascii()


# --- writing: at publication and correction -------------------------------------------------


@dataclass(frozen=True)
class Published:
    lines: int  # on the page
    withheld: int  # secret checks (Art. 37): counted, never shown


async def publish_lines(
    session: AsyncSession, publication: Publication, now: dt.datetime, tz: dt.tzinfo
) -> Published:
    """Copy the task's recorded results into public lines and mark them published. Secret
    results are counted as withheld. Idempotent: a line already there is rewritten."""
    task = await session.get(Task, publication.task_id)
    assert task is not None
    unit = await session.get(Organisation, publication.org_code)
    units = await unit_of_inspections(session, [task.id])
    mine = [i for i, u in units.items() if u == publication.org_code]  # who checks, publishes
    rows = await session.execute(
        select(InspectionResult, Inspection, Target)
        .join(Inspection, Inspection.id == InspectionResult.inspection_id)
        .join(Target, Target.id == Inspection.target_id)
        .where(InspectionResult.inspection_id.in_(mine), InspectionResult.state == "recorded")
        .order_by(Inspection.number)
    )
    lines = withheld = 0
    counts: Counter[tuple[str, int]] = Counter()
    for result, inspection, target in rows.all():
        if result.secret:
            withheld += 1
            continue
        if result.published_at is None:
            result.published_at = now
        line = await _write_line(
            session,
            publication,
            task,
            unit.name if unit else publication.org_code,
            inspection,
            target,
            result,
            tz,
        )
        counts.update(line)  # (update: a Counter's + would drop the negative changes)
        lines += 1
    await apply_counts(session, counts)
    publication.results, publication.withheld = lines, withheld
    return Published(lines, withheld)


async def _write_line(
    session: AsyncSession,
    publication: Publication,
    task: Task,
    unit_name: str,
    inspection: Inspection,
    target: Target,
    result: InspectionResult,
    tz: dt.tzinfo,
    corrected_at: dt.datetime | None = None,
) -> Counter[tuple[str, int]]:
    """Write the line and its bigrams; returns the change of the bigram counts. The check date
    is the result's, or an inter-agency joint check's own date (the lead authority's, Art. 7).
    The line is on the page of its task's year, the one 公示 names in its reply and records as
    the publication's address (a task's check in January of the next year is still there)."""
    joint = await session.get(JointCheck, inspection.id) if inspection.origin == "joint" else None
    check_date = (joint.checked_at if joint is not None else result.at).astimezone(tz).date()
    entry = await session.scalar(
        select(PublicEntry).where(PublicEntry.inspection_id == inspection.id)
    )
    if entry is None:
        entry = PublicEntry(inspection_id=inspection.id, published_at=result.published_at)
        session.add(entry)
    entry.publication_id = publication.id
    entry.org_code = publication.org_code
    entry.unit_name = unit_name
    entry.year = task.year
    entry.task_code, entry.task_name = task.code, task.name
    entry.target_name, entry.uscc = target.name, target.uscc or ""
    entry.search_name = searchable(target.name)
    entry.check_date, entry.phrase = check_date, result.phrase
    entry.penalty = await penalty_text(session, inspection.id)
    entry.corrected_at = corrected_at or entry.corrected_at
    if is_postgresql(session):
        entry.grams = tokens(entry.year, entry.org_code, entry.target_name)
    await session.flush()
    counts = await _drop_grams(session, entry.id)
    grams = bigrams(entry.target_name)
    if grams:
        await session.execute(
            insert_for(session)(PublicBigram).on_conflict_do_nothing(),
            [
                {"bigram": g, "year": entry.year, "entry_id": entry.id, "org_code": entry.org_code}
                for g in sorted(grams)
            ],
        )
    counts.update({(g, entry.year): 1 for g in grams})
    return counts


async def _drop_grams(session: AsyncSession, entry_id: int) -> Counter[tuple[str, int]]:
    """Remove a line's bigrams; returns the change of the counts (negative)."""
    old = (
        await session.execute(
            select(PublicBigram.bigram, PublicBigram.year).where(PublicBigram.entry_id == entry_id)
        )
    ).all()
    await session.execute(delete(PublicBigram).where(PublicBigram.entry_id == entry_id))
    return Counter({(g, y): -1 for g, y in old})


async def apply_counts(session: AsyncSession, counts: Counter[tuple[str, int]]) -> None:
    """Add these changes to ``public_bigram_count``, once per transaction and in key order
    (two publications at once take the rows' locks in the same order)."""
    changes = sorted((k, n) for k, n in counts.items() if n)
    if not changes:
        return
    ins = insert_for(session)(PublicBigramCount)
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=["bigram", "year"],
            set_={"n": PublicBigramCount.n + ins.excluded.n},
        ),
        [{"bigram": g, "year": y, "n": n} for (g, y), n in changes],
    )


async def penalty_text(session: AsyncSession, inspection_id: int) -> str:
    """A penalty decision linked to the inspection (Art. 38: published with its result):
    its number and date, as recorded; nothing else of the follow-up."""
    decisions = [f for f in await followups.of(session, inspection_id) if f.kind == "penalty"]
    return _penalties(decisions)


def _penalties(decisions: Sequence[FollowUp]) -> str:
    return "；".join(f"{f.reference}（{f.on.isoformat()}）" for f in decisions)


async def republish(
    session: AsyncSession,
    inspection: Inspection,
    now: dt.datetime,
    tz: dt.tzinfo,
    *,
    corrected: bool = True,
) -> bool:
    """A published result changed: rewrite its line (``corrected``: marked corrected now; a
    penalty decision linked later is not a correction). Returns whether the inspection had a
    public line (a result made secret loses its line)."""
    entry = await session.scalar(
        select(PublicEntry).where(PublicEntry.inspection_id == inspection.id)
    )
    if entry is None:
        return False
    result = await session.get(InspectionResult, inspection.id)
    publication = await session.get(Publication, entry.publication_id)
    if result is None or publication is None or result.secret:
        await apply_counts(session, await _drop_grams(session, entry.id))
        await session.delete(entry)
        if publication is not None:
            publication.results -= 1
            publication.withheld += 1
        return True
    task = await session.get(Task, inspection.task_id)
    target = await session.get(Target, inspection.target_id)
    assert task is not None and target is not None
    counts = await _write_line(
        session,
        publication,
        task,
        entry.unit_name,
        inspection,
        target,
        result,
        tz,
        now if corrected else None,
    )
    await apply_counts(session, counts)
    return True


# --- reading: the public page ----------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    entries: list[PublicEntry]
    total: int  # matching lines, all pages (at most ``COUNT_CAP``)
    capped: bool  # there are more than ``COUNT_CAP``
    withheld: int  # secret checks in these units' publications of the year's tasks


COUNT_CAP = 1_000  # a search matching more says "1000+" rather than counting them all


def _in_units(orgs: Sequence[str] | None) -> ColumnElement[bool]:
    """The units filter, applied to each line found rather than used to find them (``|| ''``
    keeps the database from choosing the per-unit index, which cannot give newest-first for
    several units without sorting them all). None: every unit."""
    if orgs is None:
        return true()
    return (PublicEntry.org_code + "").in_(list(orgs))


async def _by_rarity(session: AsyncSession, grams: Sequence[str], year: int) -> list[str] | None:
    """The query's bigrams, rarest first (``public_bigram_count``), or None when one has no
    line this year (then nothing matches)."""
    counts = dict(
        (
            await session.execute(
                select(PublicBigramCount.bigram, PublicBigramCount.n).where(
                    PublicBigramCount.bigram.in_(list(grams)), PublicBigramCount.year == year
                )
            )
        ).all()
    )
    if any(counts.get(g, 0) <= 0 for g in grams):
        return None
    return sorted(grams, key=lambda g: (counts[g], g))


PROBES = 2  # bigrams after the rarest checked in the index, before a line is read


async def page(
    session: AsyncSession,
    orgs: Sequence[str] | None,
    year: int,
    *,
    query: str = "",
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """The published lines of these units for a year, newest first, filtered by a search: a
    full credit code (exact), or characters of the target's name (two or more through the
    bigram index, walked newest first; one character compares within the page).

    Every shape is walked in the order shown, so a page costs about what it shows: the count
    stops at ``COUNT_CAP`` ("1000+"). Letters and digits that are not a whole credit code are
    taken as its beginning (through the code's index, in the code's order) when they are long
    enough to be one (``USCC_START``: its type and region code); shorter, as part of a name
    ("91" is the beginning of nearly every code: walking them all cost seconds)."""
    query = query.strip()[:MAX_QUERY]
    if is_postgresql(session):
        # A page's queries read a few hundred rows: a parallel worker's start costs more.
        await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    if orgs is None:  # every unit (the region's page): no unit filter at all
        stmt = select(PublicEntry).where(PublicEntry.year == year)
    elif len(orgs) == 1:  # one unit: its own index gives its lines newest first
        stmt = select(PublicEntry).where(PublicEntry.org_code == orgs[0], PublicEntry.year == year)
    else:
        stmt = select(PublicEntry).where(PublicEntry.year == year, _in_units(orgs))
    order: tuple[ColumnElement[Any], ...] = (PublicEntry.id.desc(),)
    counting: Select[Any] | None = None  # what is counted, when not the lines shown
    # A credit code: through its index. ``year + 0``: the year's index would give the order
    # shown without sorting, and the planner would walk the whole year for it (1.3 s at 1M).
    if query and is_uscc(query):
        stmt = select(PublicEntry).where(
            PublicEntry.uscc == fold(query).upper(), PublicEntry.year + 0 == year, _in_units(orgs)
        )
    elif is_uscc_start(query):
        # In the code's order (its index, walked only as far as shown and counted).
        start = fold(query).upper()
        stmt = select(PublicEntry).where(
            PublicEntry.uscc >= start,
            PublicEntry.uscc < start + "\U0010ffff",
            PublicEntry.year + 0 == year,
            _in_units(orgs),
        )
        order = (PublicEntry.uscc.asc(), PublicEntry.id.desc())
    elif query:
        grams = sorted(bigrams(query))
        if len(grams) > 1 and is_postgresql(session):
            return await _search_tokens(session, orgs, year, query, grams, offset, limit)
        if grams:
            ranked = await _by_rarity(session, grams, year)
            if ranked is None:
                return Page([], 0, False, 0)
            # Walk the rarest bigram's lines newest first; the next rarest are probed in their
            # index (no line read) before a line is read and compared.
            stmt = (
                select(PublicEntry)
                .join(PublicBigram, PublicBigram.entry_id == PublicEntry.id)
                .where(PublicBigram.bigram == ranked[0], PublicBigram.year == year)
            )
            for gram in ranked[1 : 1 + PROBES]:
                other = aliased(PublicBigram)
                stmt = stmt.where(
                    select(other.entry_id)
                    .where(
                        other.bigram == gram,
                        other.year == year,
                        other.entry_id == PublicBigram.entry_id,
                    )
                    .exists()
                )
            if orgs is not None:  # in the bigram's index, before a line is read
                stmt = stmt.where(PublicBigram.org_code.in_(list(orgs)))
            order = (PublicBigram.entry_id.desc(),)
            if len(grams) == 1 and _whole_bigram(query):  # counted in its index alone
                counting = select(PublicBigram.entry_id).where(
                    PublicBigram.bigram == ranked[0],
                    PublicBigram.year == year,
                    true() if orgs is None else PublicBigram.org_code.in_(list(orgs)),
                )
        stmt = stmt.where(_name_filter(query))
    if counting is None:
        counting = stmt.with_only_columns(PublicEntry.id)
    counted = await session.scalar(
        select(func.count()).select_from(counting.limit(COUNT_CAP + 1).subquery())
    )
    total = int(counted or 0)
    entries = list(await session.scalars(stmt.order_by(*order).offset(offset).limit(limit)))
    return Page(
        entries, min(total, COUNT_CAP), total > COUNT_CAP, await _withheld(session, orgs, year)
    )


def _whole_bigram(query: str) -> bool:
    """The query is one bigram: a line with it matches, nothing more to compare."""
    return len(searchable(query)) == 2


def _name_filter(query: str) -> ColumnElement[bool]:
    """The line's searchable name contains the query's (``searchable``: one folding on both
    databases, the bigrams'), ``%`` and ``_`` as themselves. Both sides are folded, so the
    database's own case rules (SQLite's LIKE ignores ASCII case, PostgreSQL's does not) never
    decide a match."""
    if _whole_bigram(query):
        return true()
    return PublicEntry.search_name.contains(searchable(query), autoescape=True)


SIEVE = 3  # the rarest bigrams a PostgreSQL search intersects; the name filter does the rest


async def _search_tokens(
    session: AsyncSession,
    orgs: Sequence[str] | None,
    year: int,
    query: str,
    grams: Sequence[str],
    offset: int,
    limit: int,
) -> Page:
    """PostgreSQL, two bigrams or more: a name search through the GIN index of the lines'
    tokens. One index scan intersects the posting lists of the query's ``SIEVE`` rarest bigrams
    (and the units'), whatever their sizes, and the name filter compares the lines it gives;
    up to ``COUNT_CAP`` + 1 matching lines are read, unordered. That many or fewer: they are
    all, and the page is cut from them newest first. More ("1000+", a common fragment): the
    matches are dense, and the rarest bigram's lines walked newest first in its B-tree index
    (``public_bigram``) find the page's within a few thousand lines."""
    ranked = await _by_rarity(session, grams, year)
    if ranked is None:
        return Page([], 0, False, 0)
    want = [gram_token(year, g) for g in ranked[:SIEVE]]
    found = PublicEntry.grams.contains(want)
    if orgs is not None and len(orgs) == 1:
        found = PublicEntry.grams.contains([*want, unit_token(orgs[0])])
    elif orgs is not None:
        found = found & PublicEntry.grams.overlap([unit_token(o) for o in orgs])
    named = _name_filter(query)
    ids = list(
        await session.scalars(
            select(PublicEntry.id)
            .where(found, named)  # the tokens are the year's: no year filter to plan around
            .limit(COUNT_CAP + 1)
        )
    )
    withheld = await _withheld(session, orgs, year)
    if len(ids) <= COUNT_CAP:
        shown = sorted(ids, reverse=True)[offset : offset + limit]
        entries = list(
            await session.scalars(
                select(PublicEntry).where(PublicEntry.id.in_(shown)).order_by(PublicEntry.id.desc())
            )
        )
        return Page(entries, len(ids), False, withheld)
    # Each line walked is read and compared on its own (a LATERAL the planner cannot flatten,
    # ``OFFSET 0``): joined, it would misjudge how few lines match and sort them all instead.
    line = (
        select(PublicEntry)
        .where(PublicEntry.id == PublicBigram.entry_id, found, named)
        .offset(0)
        .lateral("line")
    )
    walk = (
        select(aliased(PublicEntry, line))
        .select_from(PublicBigram)
        .join(line, true())
        .where(
            PublicBigram.bigram == ranked[0],
            PublicBigram.year == year,
            true() if orgs is None else PublicBigram.org_code.in_(list(orgs)),
        )
        .order_by(PublicBigram.entry_id.desc())
        .offset(offset)
        .limit(limit)
    )
    entries = list(await session.scalars(walk))
    return Page(entries, COUNT_CAP, True, withheld)


async def _withheld(session: AsyncSession, orgs: Sequence[str] | None, year: int) -> int:
    """Secret checks (Art. 37) in these units' publications of the year's tasks: the few
    publications that withheld any, then their tasks' years."""
    rows = (
        await session.execute(
            select(Publication.task_id, Publication.withheld).where(
                Publication.withheld > 0,
                true() if orgs is None else Publication.org_code.in_(list(orgs)),
            )
        )
    ).all()
    if not rows:
        return 0
    years = dict(
        (
            await session.execute(
                select(Task.id, Task.year).where(Task.id.in_([t for t, _ in rows]))
            )
        ).all()
    )
    return sum(n for task, n in rows if years.get(task) == year)


async def years(session: AsyncSession, orgs: Sequence[str]) -> list[int]:
    rows = await session.scalars(
        select(PublicEntry.year)
        .where(PublicEntry.org_code.in_(list(orgs)))
        .distinct()
        .order_by(PublicEntry.year.desc())
    )
    return list(rows)


# --- the published lines as files (downloads, `shuangsuiji publish export`) ---------------------


def cell(entry: PublicEntry, key: str) -> str:
    value = getattr(entry, key)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def csv_bytes(entries: Sequence[Any], columns: Sequence[tuple[str, str]] = COLUMNS) -> bytes:
    """UTF-8 with a BOM, so that Excel opens it as UTF-8; Chinese headers. A cell starting with
    ``= + - @`` (or a tab or carriage return) gets a leading ``'`` (``spreadsheet.csv_cell``):
    a spreadsheet shows it as text instead of evaluating it; every other cell is as typed.
    The count of withheld secret checks is not in the CSV (a row of another shape would break
    machines reading it): it is in the JSON (``withheld``) and the response's ``X-Withheld``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([header for _, header in columns])
    for e in entries:
        writer.writerow([spreadsheet.csv_cell(cell(e, key)) for key, _ in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def json_text(
    org_code: str,
    org_name: str,
    year: int,
    entries: Sequence[Any],
    withheld: int,
    columns: Sequence[tuple[str, str]] = COLUMNS,
) -> str:
    """The lines as typed (JSON has no formulas), and ``withheld``: how many secret checks of
    these units' publications of the year were withheld (Art. 37), as the page says."""
    rows = [{key: cell(e, key) for key, _ in columns} for e in entries]
    doc = {
        "org": org_code,
        "org_name": org_name,
        "year": year,
        "withheld": withheld,
        "results": rows,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


def xlsx_bytes(
    title: str,
    entries: Sequence[Any],
    withheld: int,
    columns: Sequence[tuple[str, str]] = COLUMNS,
) -> bytes:
    """Title (with the withheld count), Chinese headers, the stable column names, the lines:
    text stays text (``spreadsheet.XlsxWriter``: a name starting with ``=`` is not a formula)."""
    if withheld:
        title += f"（另有 {withheld} 项检查依法不予公开，第37条）"
    writer = spreadsheet.XlsxWriter()
    widths = (36, 22, 20, 24, 12, 24, 22, 24, 20, 20, 40)
    writer.add_sheet(
        "抽查结果公示", [header for _, header in columns], widths[: len(columns)], title=title
    )
    writer.append([key for key, _ in columns])  # stable column names for machines
    for e in entries:
        writer.append(
            [getattr(e, key) if key == "check_date" else cell(e, key) for key, _ in columns]
        )
    out = io.BytesIO()
    writer.save(out)
    return out.getvalue()


# The export adds where each result was published: the bot's page or the portal / designated
# platform (``公示 <任务> <网址>``), and that page's address.
EXPORT_COLUMNS = (
    *COLUMNS,
    ("published_on", "公示位置"),
    ("published_url", "公示网址"),
)
ON_PAGE, ON_PORTAL = "本平台公示页", "门户网站或指定平台"


@dataclass(frozen=True)
class ExportLine:
    """A published result as exported: the page's line, or the same fields of a result
    published on the portal (which has no line on the page)."""

    target_name: str
    uscc: str
    task_code: str
    task_name: str
    check_date: dt.date
    unit_name: str
    phrase: str
    penalty: str
    corrected_at: dt.datetime | None
    published_on: str
    published_url: str


@dataclass(frozen=True)
class Export:
    lines: list[ExportLine]
    withheld: int  # secret checks in these publications (Art. 37): counted, never shown


async def published_lines(
    session: AsyncSession,
    orgs: Sequence[str],
    year: int,
    task_code: str | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> Export:
    """Every published result of these units in the year, on the bot's page or on the portal,
    with nothing internal (the fields of a public line; secret checks only counted)."""
    stmt = (
        select(PublicEntry, Publication.url)
        .join(Publication, Publication.id == PublicEntry.publication_id)
        .where(PublicEntry.year == year, PublicEntry.org_code.in_(list(orgs)))
    )
    if task_code:
        stmt = stmt.where(PublicEntry.task_code == task_code)
    lines = [
        ExportLine(
            **{key: getattr(e, key) for key, _ in COLUMNS},
            published_on=ON_PAGE,
            published_url=url,
        )
        for e, url in (await session.execute(stmt)).all()
    ]
    lines += await _portal_lines(session, orgs, year, task_code, tz)
    lines.sort(key=lambda line: (line.check_date, line.task_code, line.target_name))
    return Export(lines, await _export_withheld(session, orgs, year, task_code))


async def _portal_lines(
    session: AsyncSession,
    orgs: Sequence[str],
    year: int,
    task_code: str | None,
    tz: dt.tzinfo,
) -> list[ExportLine]:
    """Results published on the portal: the publishing unit's recorded, published, non-secret
    results of the task that have no line on the bot's page, dated as a line would be (the
    result's date, or a joint check's own date)."""
    pubs = select(Publication, Task).join(Task, Task.id == Publication.task_id)
    pubs = pubs.where(Publication.org_code.in_(list(orgs)))
    if task_code:
        pubs = pubs.where(Task.code == task_code)
    publications = (await session.execute(pubs)).all()
    if not publications:
        return []
    units = await unit_of_inspections(session, [task.id for _, task in publications])
    names = dict((await session.execute(select(Organisation.code, Organisation.name))).all())
    lines = []
    for publication, task in publications:
        mine = [i for i, u in units.items() if u == publication.org_code]
        rows = (
            await session.execute(
                select(InspectionResult, Target)
                .join(Inspection, Inspection.id == InspectionResult.inspection_id)
                .join(Target, Target.id == Inspection.target_id)
                .outerjoin(PublicEntry, PublicEntry.inspection_id == Inspection.id)
                .where(
                    Inspection.task_id == task.id,
                    InspectionResult.inspection_id.in_(mine),
                    InspectionResult.state == "recorded",
                    InspectionResult.secret.is_(False),
                    InspectionResult.published_at.is_not(None),
                    PublicEntry.id.is_(None),
                )
            )
        ).all()
        ids = [result.inspection_id for result, _ in rows]
        joint = dict(
            (
                await session.execute(
                    select(JointCheck.inspection_id, JointCheck.checked_at).where(
                        JointCheck.inspection_id.in_(ids)
                    )
                )
            ).all()
        )
        decisions: dict[int, list[FollowUp]] = {}
        for f in await session.scalars(
            select(FollowUp)
            .where(FollowUp.inspection_id.in_(ids), FollowUp.kind == "penalty")
            .order_by(FollowUp.id)
        ):
            decisions.setdefault(f.inspection_id, []).append(f)
        for result, target in rows:
            checked = joint.get(result.inspection_id, result.at).astimezone(tz).date()
            if checked.year != year:
                continue
            lines.append(
                ExportLine(
                    target_name=target.name,
                    uscc=target.uscc or "",
                    task_code=task.code,
                    task_name=task.name,
                    check_date=checked,
                    unit_name=names.get(publication.org_code, publication.org_code),
                    phrase=result.phrase,
                    penalty=_penalties(decisions.get(result.inspection_id, [])),
                    corrected_at=None,
                    published_on=ON_PORTAL,
                    published_url=publication.url,
                )
            )
    return lines


async def _export_withheld(
    session: AsyncSession, orgs: Sequence[str], year: int, task_code: str | None
) -> int:
    """Secret checks withheld by these units' publications of the year's tasks (or the task)."""
    stmt = (
        select(func.coalesce(func.sum(Publication.withheld), 0))
        .join(Task, Task.id == Publication.task_id)
        .where(Publication.org_code.in_(list(orgs)), Task.year == year)
    )
    if task_code:
        stmt = stmt.where(Task.code == task_code)
    return int(await session.scalar(stmt) or 0)
