"""The public name search's one folding, and a public line's year (issue 14, 一公开, Art. 37).

``public_entry.search_name``: the target's name width- and case-folded (NFKC, then casefold)
without spaces, what a name search matches on both databases (``storage.public.searchable``).
The bigrams were already taken from this form, but the name filter compared the name as stored
with the database's own case rules (SQLite's ``lower`` folds ASCII only, PostgreSQL's ILIKE
more, neither width). Backfilled here, in Python: neither database's SQL has ``casefold``.

And a line's ``year`` is its task's, the page 公示 names and records as the publication's
address: lines written with their check date's year (a task's result recorded in January of the
next year) move to their task's year, with their bigrams, the bigrams' counts and, on
PostgreSQL, their year-scoped search tokens.

Revision ID: 0011_searchfold
Revises: 0010_capcpu
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision: str = "0011_searchfold"
down_revision: str | None = "0010_capcpu"
branch_labels = None
depends_on = None

CHUNK = 5_000

entry = sa.table(
    "public_entry",
    sa.column("id", sa.BigInteger),
    sa.column("target_name", sa.String),
    sa.column("search_name", sa.Text),
)


def searchable(text: str) -> str:
    """As ``storage.public.searchable`` at this revision (migrations never import the code)."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def bigrams(name: str) -> list[str]:
    chars = searchable(name)
    return sorted({a + b for a, b in zip(chars, chars[1:], strict=False)})


def upgrade() -> None:
    op.add_column(  # in place (no batch copy: it would cascade-delete public_bigram)
        "public_entry", sa.Column("search_name", sa.Text(), nullable=False, server_default="")
    )
    bind = op.get_bind()
    last = 0
    update = (
        sa.update(entry)
        .where(entry.c.id == sa.bindparam("b_id"))
        .values(search_name=sa.bindparam("b_name"))
    )
    while True:
        rows = bind.execute(
            sa.select(entry.c.id, entry.c.target_name)
            .where(entry.c.id > last)
            .order_by(entry.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        bind.execute(update, [{"b_id": i, "b_name": searchable(n)} for i, n in rows])
        last = rows[-1][0]
    _move_to_task_year(bind)
    if bind.dialect.name == "postgresql":
        # Every line was rewritten: its new tokens wait in the GIN index's pending list, which
        # each search then reads whole (3x a name search's CPU at 100,000 lines) until a vacuum
        # merges it. Merged now, as a vacuum would.
        bind.execute(sa.text("SELECT gin_clean_pending_list('ix_public_entry_grams'::regclass)"))


def _move_to_task_year(bind: sa.Connection) -> None:
    moved = bind.execute(
        sa.text(
            "SELECT e.id, t.year, e.org_code, e.target_name FROM public_entry e "
            "JOIN publication p ON p.id = e.publication_id JOIN task t ON t.id = p.task_id "
            "WHERE e.year <> t.year"
        )
    ).all()
    if not moved:
        return
    postgresql = bind.dialect.name == "postgresql"
    for entry_id, year, org_code, name in moved:
        bind.execute(
            sa.text("UPDATE public_entry SET year = :y WHERE id = :i"), {"y": year, "i": entry_id}
        )
        bind.execute(
            sa.text("UPDATE public_bigram SET year = :y WHERE entry_id = :i"),
            {"y": year, "i": entry_id},
        )
        if postgresql:
            grams = [f"o:{org_code}", *(f"{year}:{g}" for g in bigrams(name))]
            bind.execute(
                sa.text("UPDATE public_entry SET grams = :g WHERE id = :i"),
                {"g": grams, "i": entry_id},
            )
    # The counts of every bigram moved, recounted from the bigrams they count.
    bind.execute(sa.text("DELETE FROM public_bigram_count"))
    bind.execute(
        sa.text(
            "INSERT INTO public_bigram_count (bigram, year, n) "
            "SELECT bigram, year, count(*) FROM public_bigram GROUP BY bigram, year"
        )
    )


def downgrade() -> None:
    # The lines stay on their task's year: it is where 公示 published them.
    op.drop_column("public_entry", "search_name")  # in place, as added
