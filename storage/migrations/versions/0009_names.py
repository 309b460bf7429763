"""A person's name on a role binding (issue 15: names, not account ids, wherever a person is
shown; chiefs and admins are often not in the inspector directory).

Revision ID: 0009_names
Revises: 0008_facts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_names"
down_revision: str | None = "0008_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("role_binding") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("role_binding") as batch_op:
        batch_op.drop_column("name")
