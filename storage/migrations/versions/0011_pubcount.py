"""Publication events (Art. 37, 43): each 公示 of a unit's results of a task, the first and
every supplement for results recorded after it, with how many results it published on time and
late against each result's own due day, so the statistics table counts results published on
time / late in the quarter each was published.

Backfill: one event per existing publication, at its time, its ``results`` counted as the
publication's ``on_time`` says (no deadline: on time, as the table counted it before). Results
published by a supplement before this revision were added to the publication's count without a
time of their own: they stay in its event; their timeliness was never recorded.

Revision ID: 0011_pubcount
Revises: 0011_searchfold
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_pubcount"
down_revision: str | None = "0011_searchfold"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "publication_event",
        sa.Column("id", BigId, nullable=False),
        sa.Column("publication_id", BigId, nullable=False),
        sa.Column("org_code", sa.String(length=12), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("supplement", sa.Boolean(), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["publication_id"], ["publication.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_publication_event_publication_id", "publication_event", ["publication_id"])
    op.create_index("ix_publication_event_at", "publication_event", ["published_at"])
    # The results recorded before a quarter's end and unpublished at its end (not yet, or
    # later): both ranges read from this index alone.
    op.create_index(
        "ix_inspection_result_published_at", "inspection_result", ["published_at", "at"]
    )
    op.execute(
        sa.text(
            "INSERT INTO publication_event"
            " (publication_id, org_code, published_at, supplement, due, on_time, late)"
            " SELECT id, org_code, published_at, :no, deadline,"
            " CASE WHEN on_time = :no THEN 0 ELSE results END,"
            " CASE WHEN on_time = :no THEN results ELSE 0 END"
            " FROM publication"
        ).bindparams(no=False)
    )


def downgrade() -> None:
    op.drop_index("ix_inspection_result_published_at", table_name="inspection_result")
    op.drop_table("publication_event")
