"""Follow-ups of an inspection (Art. 34, 38) and the evidence of a directory change (Art. 13).

Revision ID: 0006_letterresults
Revises: 0006_letterdraw
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_letterresults"
down_revision: str | None = "0006_letterdraw"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "follow_up",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("inspection_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("body", sa.String(length=100), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inspection_id", "kind", "body", "reference"),
    )
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_follow_up_inspection_id"), ["inspection_id"], unique=False
        )
    with op.batch_alter_table("directory_history", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("evidence", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("directory_history", schema=None) as batch_op:
        batch_op.drop_column("evidence")
    op.drop_table("follow_up")
