"""Imported checks: whether a result was published elsewhere, and a result row for each so that
it counts where results count (quotas by quarter, Art. 25) and can be published (Art. 37).

Revision ID: 0008_letter
Revises: 0008_cancel
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_letter"
down_revision: str | None = "0008_cancel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A check date becomes noon in China (UTC+8), the region's only time zone: the same date in
# every zone within eleven hours of it.
NOON = dt.time(4, 0, tzinfo=dt.UTC)


def upgrade() -> None:
    with op.batch_alter_table("imported_check", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("published_elsewhere", sa.Text(), nullable=False, server_default="")
        )
    # Checks imported before this revision had no result row: give them one, as the import
    # now does (never to publish: they predate this revision's publication of imports).
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT i.id, i.task_id, i.result_code, i.check_start, m.imported_by "
            "FROM inspection i JOIN imported_check m ON m.inspection_id = i.id "
            "LEFT JOIN inspection_result r ON r.inspection_id = i.id "
            "WHERE r.inspection_id IS NULL AND i.result_code IS NOT NULL"
        )
    ).all()
    if not rows:
        return
    phrases = _phrases(conn)
    result = sa.table(
        "inspection_result",
        sa.column("inspection_id", sa.BigInteger),
        sa.column("task_id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("code", sa.String),
        sa.column("phrase", sa.String),
        sa.column("description", sa.Text),
        sa.column("department", sa.String),
        sa.column("userid", sa.String),
        sa.column("name", sa.String),
        sa.column("channel", sa.String),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("case_filing", sa.Boolean),
        sa.column("secret", sa.Boolean),
        sa.column("secret_reason", sa.Text),
    )
    op.bulk_insert(
        result,
        [
            {
                "inspection_id": iid,
                "task_id": task_id,
                "state": "recorded",
                "code": code,
                "phrase": phrases.get(code, code)[:100],
                "description": "",
                "department": "",
                "userid": (by or "import")[:64],
                "name": "导入",
                "channel": "import",
                "at": dt.datetime.combine(_date(on), NOON),
                "case_filing": code == "case_filed",
                "secret": False,
                "secret_reason": "",
            }
            for iid, task_id, code, on, by in rows
        ],
    )


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _phrases(conn: sa.Connection) -> dict[str, str]:
    """The seven phrases of Art. 38 as of this revision (a migration does not import the app); a
    phrase the region added is written as its code."""
    return {
        "no_problem": "未发现问题",
        "ordered_to_rectify": "发现问题已责令整改",
        "case_filed": "发现违法行为已立案调查",
        "deregistered": "检查对象已注销",
        "transferred": "发现问题已移交有关部门",
        "refused": "不配合检查",
        "pending_followup": "发现问题待后续处理",
    }


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "DELETE FROM inspection_result WHERE channel = 'import' AND inspection_id IN "
            "(SELECT inspection_id FROM imported_check)"
        )
    )
    with op.batch_alter_table("imported_check", schema=None) as batch_op:
        batch_op.drop_column("published_elsewhere")
