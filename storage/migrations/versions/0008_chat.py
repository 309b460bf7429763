"""Everyday chat: a chief's confirmation of a result, amended record numbers kept, and the
response codes and voided copies of interactive cards (issue 15).

Revision ID: 0008_chat
Revises: 0007_digest
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_chat"
down_revision: str | None = "0007_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inspection_result") as batch:
        batch.add_column(sa.Column("confirmed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("record_number") as batch:
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "card_code",
        sa.Column("response_code", sa.String(length=128), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("response_code"),
    )
    op.create_index("ix_card_code_task_id", "card_code", ["task_id"])
    op.create_table(
        "card_void",
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "userid"),
    )


def downgrade() -> None:
    op.drop_table("card_void")
    op.drop_index("ix_card_code_task_id", table_name="card_code")
    op.drop_table("card_code")
    with op.batch_alter_table("record_number") as batch:
        batch.drop_column("superseded_at")
    with op.batch_alter_table("inspection_result") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("confirmed_by")
