"""The Art. 43 filing days as rule parameters (Art. 45), seeded with the 2024-07-18 rules: the
quarterly 统计表 by the 5th of the following quarter's first month, the annual self-inspection
report by 5 November. Until now they were constants in code.

Revision ID: 0010_letterdeadlines
Revises: 0009_names
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_letterdeadlines"
down_revision: str | None = "0009_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here as 0006_letterparams froze the others (later changes are rows of their own).
SEED = [
    ("statistics_table_day", "5"),
    ("self_inspection_report_by", "11-05"),
]
ISSUED = dt.date(2024, 7, 18)

rule_param = sa.table(
    "rule_param",
    sa.column("key", sa.String),
    sa.column("value", sa.Text),
    sa.column("effective_from", sa.Date),
    sa.column("reason", sa.Text),
    sa.column("set_by", sa.String),
    sa.column("set_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    at = dt.datetime(2024, 7, 18, tzinfo=dt.UTC)
    if op.get_bind().dialect.name == "sqlite":
        at = at.replace(tzinfo=None)
    op.bulk_insert(
        rule_param,
        [
            {
                "key": key,
                "value": value,
                "effective_from": ISSUED,
                "reason": "内蒙古自治区生态环境厅“双随机、一公开”实施细则（2024年7月18日印发）第四十三条",
                "set_by": "migration",
                "set_at": at,
            }
            for key, value in SEED
        ],
    )


def downgrade() -> None:
    # Every row of these keys goes: the code before this revision knows none of them.
    op.execute(sa.delete(rule_param).where(rule_param.c.key.in_([key for key, _ in SEED])))
