"""Organisations' reminder digests in a group chat (Art. 37, 40, 43).

Revision ID: 0007_digest
Revises: 0006_deadlines
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_digest"
down_revision: str | None = "0006_deadlines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_chat",
        sa.Column("org_code", sa.String(length=12), nullable=False),
        sa.Column("chatid", sa.String(length=32), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_code"], ["organisation.code"]),
        sa.PrimaryKeyConstraint("org_code"),
    )


def downgrade() -> None:
    op.drop_table("digest_chat")
