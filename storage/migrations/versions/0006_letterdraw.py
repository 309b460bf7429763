"""Once a year per market entity, whichever level draws (Art. 25, 30); a branch's task is
approved by its league/city bureau, which draws it or authorises one branch admin to (Art. 5).

``skip_inspected_general`` (general targets, same level) becomes ``once_a_year`` (every tier,
every level), with the two exceptions as task options: special targets checked more often, and
the level above re-checking what the levels below checked.

Revision ID: 0006_letterdraw
Revises: 0006_ingress
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_letterdraw"
down_revision: str | None = "0006_ingress"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column("skip_inspected_general", new_column_name="once_a_year")
        batch_op.add_column(
            sa.Column("special_more_often", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("recheck_below", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("authorised_drawer", sa.String(length=64), nullable=True))
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column("special_more_often", server_default=None)
        batch_op.alter_column("recheck_below", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("authorised_drawer")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("recheck_below")
        batch_op.drop_column("special_more_often")
        batch_op.alter_column("once_a_year", new_column_name="skip_inspected_general")
