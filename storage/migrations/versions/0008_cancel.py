"""Draws are cancelled, never re-drawn; witnesses fixed at sealing (issue 13 item 2, Art. 27-29).

A sealed draw records who witnesses it (in the order their values enter the seed), each value
as it comes, or the public random source it names (its value typed by one person, confirmed by
a second), the deadline for them and, for a draw made without witness, the reason; a draw
that cannot be used is cancelled with a reason, approved by the level above; a task made to
replace a cancelled one names it.

Revision ID: 0008_cancel
Revises: 0008_drawalgo
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_cancel"
down_revision: str | None = "0008_drawalgo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("draw") as batch:
        batch.add_column(sa.Column("witnesses", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("witness_values", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("witness_deadline", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unwitnessed_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("public_source", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("cancellation", sa.JSON(), nullable=True))
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("replaces", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("replaces")
    with op.batch_alter_table("draw") as batch:
        for name in (
            "cancellation",
            "public_source",
            "unwitnessed_reason",
            "witness_deadline",
            "witness_values",
            "witnesses",
        ):
            batch.drop_column(name)
