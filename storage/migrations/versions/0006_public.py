"""The public page's lines and their search index (一公开, Art. 37).

Revision ID: 0006_public
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_public"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "public_entry",
        sa.Column("id", BIG, nullable=False),
        sa.Column("inspection_id", BIG, nullable=False),
        sa.Column("publication_id", BIG, nullable=False),
        sa.Column("org_code", sa.String(length=12), nullable=False),
        sa.Column("unit_name", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("task_code", sa.String(length=30), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("target_name", sa.String(length=200), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("check_date", sa.Date(), nullable=False),
        sa.Column("phrase", sa.String(length=100), nullable=False),
        sa.Column("penalty", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"]),
        sa.ForeignKeyConstraint(["publication_id"], ["publication.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inspection_id"),
    )
    with op.batch_alter_table("public_entry", schema=None) as batch_op:
        batch_op.create_index("ix_public_entry_page", ["org_code", "year", "id"])
        batch_op.create_index("ix_public_entry_year", ["year", "id"])
        batch_op.create_index("ix_public_entry_uscc", ["uscc"])
        batch_op.create_index(batch_op.f("ix_public_entry_publication_id"), ["publication_id"])
    op.create_table(
        "public_bigram",
        sa.Column("bigram", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("entry_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["public_entry.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bigram", "year", "entry_id"),
    )

    with op.batch_alter_table("inspection_result", schema=None) as batch_op:
        batch_op.create_index("ix_inspection_result_at", ["at"])


def downgrade() -> None:
    with op.batch_alter_table("inspection_result", schema=None) as batch_op:
        batch_op.drop_index("ix_inspection_result_at")
    op.drop_table("public_bigram")
    op.drop_table("public_entry")
