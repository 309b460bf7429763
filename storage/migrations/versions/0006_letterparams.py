"""Rule parameters by effective date (Art. 24, 25, 45), seeded with the 2024-07-18 rules;
inter-agency joint checks as random checks of their own kind (Art. 6, 7, 36); the kinds of
checks outside the draw named as in Art. 6; checks made before adoption, imported.

Revision ID: 0006_letterparams
Revises: 0006_letterresults
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_letterparams"
down_revision: str | None = "0006_letterresults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The values of the rules issued 2024-07-18, frozen here (later changes are rows of their own).
SEED = [
    ("ratio_special", "1/4"),
    ("ratio_key", "1/5"),
    ("ratio_general", "1/10"),
    ("team_size", "2"),
    ("publication_working_days", "20"),
    ("result.no_problem", "未发现问题"),
    ("result.ordered_to_rectify", "发现问题已责令整改"),
    ("result.case_filed", "发现违法行为已立案调查"),
    ("result.deregistered", "检查对象已注销"),
    ("result.transferred", "发现问题已移交有关部门"),
    ("result.refused", "不配合检查"),
    ("result.pending_followup", "发现问题待后续处理"),
]
KIND_RENAMES = [
    ("transfer", "higher_authority"),
    ("incident", "emergency"),
    ("nuclear", "nuclear_safety"),
]


def upgrade() -> None:
    rule_param = op.create_table(
        "rule_param",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "effective_from"),
    )
    op.create_table(
        "joint_check",
        sa.Column("inspection_id", BIG_ID, nullable=False),
        sa.Column("lead_authority", sa.String(length=100), nullable=False),
        sa.Column("lead_task", sa.String(length=200), nullable=False),
        sa.Column("lead_draw_ref", sa.String(length=200), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"]),
        sa.PrimaryKeyConstraint("inspection_id"),
    )
    op.create_table(
        "imported_check",
        sa.Column("inspection_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source_file", sa.String(length=200), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"]),
        sa.PrimaryKeyConstraint("inspection_id"),
    )
    issued = dt.date(2024, 7, 18)
    at = dt.datetime(2024, 7, 18, tzinfo=dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        at = at.replace(tzinfo=None)
    op.bulk_insert(
        rule_param,
        [
            {
                "key": key,
                "value": value,
                "effective_from": issued,
                "reason": "内蒙古自治区生态环境厅“双随机、一公开”实施细则（2024年7月18日印发）",
                "set_by": "migration",
                "set_at": at,
            }
            for key, value in SEED
        ],
    )
    # Joint checks registered before: led by another authority, so random checks (Art. 6).
    op.execute(
        "INSERT INTO joint_check (inspection_id, lead_authority, lead_task, lead_draw_ref,"
        " registered_by, registered_at) SELECT inspection_id, lead_dept, '', '', registered_by,"
        " registered_at FROM check_outside_draw WHERE kind = 'joint'"
    )
    op.execute("DELETE FROM check_outside_draw WHERE kind = 'joint'")
    for old, new in KIND_RENAMES:
        op.execute(f"UPDATE check_outside_draw SET kind = '{new}' WHERE kind = '{old}'")


def downgrade() -> None:
    for old, new in KIND_RENAMES:
        op.execute(f"UPDATE check_outside_draw SET kind = '{old}' WHERE kind = '{new}'")
    op.execute(
        "INSERT INTO check_outside_draw (inspection_id, kind, reason, lead_dept, registered_by,"
        " registered_at) SELECT inspection_id, 'joint', '', lead_authority, registered_by,"
        " registered_at FROM joint_check"
    )
    op.drop_table("imported_check")
    op.drop_table("joint_check")
    op.drop_table("rule_param")
