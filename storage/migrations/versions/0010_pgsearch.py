"""The public search on PostgreSQL (issue 14, 一公开): each public line's search tokens in one
array with a GIN index, so that a search intersects the posting lists of all its bigrams and
its units in the index, whatever their sizes.

``public_entry.grams``: "<year>:<bigram>" for each bigram of the target's name, and
"o:<org code>" for the checking unit (storage.public.tokens). Backfilled on PostgreSQL from the
kept bigrams (``public_bigram``); SQLite keeps none (its search walks ``public_bigram``), and
its index is partial on lines that have tokens, so it stays empty.

And ``ix_inspection_result_unpublished``: results not yet published, by task, partial, so the
Art. 37 reminder of results recorded after their unit's publication finds them each tick
without reading every result.

Revision ID: 0010_pgsearch
Revises: 0010_joint_check_date
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0010_pgsearch"
down_revision: str | None = "0010_joint_check_date"
branch_labels = None
depends_on = None

TOKENS = ARRAY(sa.Text()).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.add_column("public_entry", sa.Column("grams", TOKENS, nullable=True))  # in place
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE public_entry e SET grams = ARRAY['o:' || e.org_code] || "
            "COALESCE(g.tokens, '{}'::text[]) FROM public_entry e2 LEFT JOIN ("
            "SELECT entry_id, array_agg(year || ':' || bigram ORDER BY bigram) AS tokens "
            "FROM public_bigram GROUP BY entry_id) g ON g.entry_id = e2.id WHERE e2.id = e.id"
        )
    op.create_index(
        "ix_public_entry_grams",
        "public_entry",
        ["grams"],
        postgresql_using="gin",
        sqlite_where=sa.text("grams IS NOT NULL"),
    )
    op.create_index(
        "ix_inspection_result_unpublished",
        "inspection_result",
        ["task_id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_inspection_result_unpublished", table_name="inspection_result")
    op.drop_index("ix_public_entry_grams", table_name="public_entry")
    # In place (SQLite 3.35+ drops a column): a batch copy of the table would drop the old one,
    # and its foreign keys' ON DELETE CASCADE would empty public_bigram with it.
    op.drop_column("public_entry", "grams")
