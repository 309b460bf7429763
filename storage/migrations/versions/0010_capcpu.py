"""The delivery ledger found by its message (issue 10, capacity): the sender stamps, keeps or
frees an attempt's slots by (message_id, attempt) for every message it sends, which without an
index scanned the whole ledger, a table that only grows.

Revision ID: 0010_capcpu
Revises: 0010_pgsearch
"""

from __future__ import annotations

from alembic import op

revision: str = "0010_capcpu"
down_revision: str | None = "0010_pgsearch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_delivery_message_attempt", "outbox_delivery", ["message_id", "attempt"]
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_delivery_message_attempt", table_name="outbox_delivery")
