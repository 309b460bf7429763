"""A draw's merge amendments (Art. 19): the other task's visit that takes a drawn visit.

Revision ID: 0008_drawalgo
Revises: 0008_chat
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_drawalgo"
down_revision: str | None = "0008_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("draw_amendment") as batch_op:
        batch_op.add_column(sa.Column("into", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("draw_amendment") as batch_op:
        batch_op.drop_column("into")
