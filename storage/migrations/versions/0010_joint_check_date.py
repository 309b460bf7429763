"""The lead authority's check date on an inter-agency joint check (Art. 6, 7, 25, 37):
``joint_check.checked_at``. Checks registered before this carried no date of their own and were
dated on their registration, so the backfill takes the registration time; their statistics
facts (``check_fact``, ``check_fact_member``) move to that date, as ``storage.facts`` now
dates a joint check's facts by its check date.

Revision ID: 0010_joint_check_date
Revises: 0010_letterdeadlines
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_joint_check_date"
down_revision: str | None = "0010_letterdeadlines"
branch_labels = None
depends_on = None

REDATE = (
    """
    UPDATE check_fact SET at = (
        SELECT j.checked_at FROM joint_check j WHERE j.inspection_id = check_fact.inspection_id
    ) WHERE inspection_id IN (SELECT inspection_id FROM joint_check)
    """,
    """
    UPDATE check_fact_member SET at = (
        SELECT j.checked_at FROM joint_check j
        WHERE j.inspection_id = check_fact_member.inspection_id
    ) WHERE inspection_id IN (SELECT inspection_id FROM joint_check)
    """,
)


def upgrade() -> None:
    with op.batch_alter_table("joint_check") as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE joint_check SET checked_at = registered_at")
    with op.batch_alter_table("joint_check") as batch_op:
        batch_op.alter_column(
            "checked_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
    for statement in REDATE:
        op.execute(statement)


def downgrade() -> None:
    # The facts go back to their result's recording time, as storage.facts dated them before.
    for table in ("check_fact", "check_fact_member"):
        op.execute(
            f"UPDATE {table} SET at = (SELECT r.at FROM inspection_result r"
            f" WHERE r.inspection_id = {table}.inspection_id)"
            " WHERE inspection_id IN (SELECT inspection_id FROM joint_check)"
        )
    with op.batch_alter_table("joint_check") as batch_op:
        batch_op.drop_column("checked_at")
