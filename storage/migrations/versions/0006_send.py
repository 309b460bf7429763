"""The sender: duplicate-check bookkeeping per message, the attempt behind each budget slot.

Revision ID: 0006_send
Revises: 0006_quotas
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_send"
down_revision: str | None = "0006_quotas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("duplicate_check", sa.Boolean(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_message_content_key"), ["content_key"], unique=False
        )
    with op.batch_alter_table("outbox_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_delivery", schema=None) as batch_op:
        batch_op.drop_column("attempt")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_content_key"))
        batch_op.drop_column("duplicate_check")
        batch_op.drop_column("first_sent_at")
        batch_op.drop_column("content_key")
