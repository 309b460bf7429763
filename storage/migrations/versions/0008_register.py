"""The register of leave and declared conflicts; swaps name their evidence (Art. 29).

Each inspector's leave period and conflict list (the spreadsheet's columns) become confirmed
register records, one per leave and one per conflicting target, as an import would make them.

Revision ID: 0008_register
Revises: 0008_letter
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_register"
down_revision: str | None = "0008_letter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    register = op.create_table(
        "register_entry",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("inspector_id", BIG_ID, nullable=False),
        sa.Column("certificate_no", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_until", sa.Date(), nullable=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("declared_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("entered_by", sa.String(length=64), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heads", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["inspector_id"], ["inspector.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "version"),
    )
    with op.batch_alter_table("register_entry", schema=None) as batch_op:
        batch_op.create_index("ix_register_entry_inspector", ["inspector_id", "kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_register_entry_record_id"), ["record_id"], unique=False
        )
    with op.batch_alter_table("draw_amendment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("check_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("check_end", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
    _backfill(register)


def _backfill(register: sa.Table) -> None:
    bind = op.get_bind()
    inspector = sa.table(
        "inspector",
        sa.column("id", sa.Integer),
        sa.column("certificate_no", sa.String),
        sa.column("userid", sa.String),
        sa.column("leave_from", sa.Date),
        sa.column("leave_until", sa.Date),
        sa.column("conflicts", sa.JSON),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(inspector).where(
            sa.or_(
                inspector.c.leave_from.is_not(None),
                inspector.c.leave_until.is_not(None),
                inspector.c.conflicts.is_not(None),
            )
        )
    ).all()
    now = dt.datetime.now(dt.UTC)
    out = []
    for row in rows:
        at = row.updated_at or now
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        common = {
            "version": 1,
            "inspector_id": row.id,
            "certificate_no": row.certificate_no,
            "userid": row.userid or "",
            "company": "",
            "declared_on": None,
            "reason": "",
            "state": "confirmed",
            "source": "import",
            "entered_by": "migration",
            "entered_at": at,
            "confirmed_by": "migration",
            "effective_at": at,
            "heads": [],
            "note": "",
        }
        if row.leave_from is not None or row.leave_until is not None:
            out.append(
                common
                | {
                    "kind": "leave",
                    "date_from": row.leave_from,
                    "date_until": row.leave_until,
                    "targets": [],
                }
            )
        for key in row.conflicts or []:
            out.append(
                common
                | {"kind": "conflict", "date_from": None, "date_until": None, "targets": [str(key)]}
            )
    if out:
        op.bulk_insert(register, out)
        bind.execute(
            sa.update(register)
            .where(register.c.record_id.is_(None))
            .values(record_id=register.c.id)
        )


def downgrade() -> None:
    with op.batch_alter_table("draw_amendment", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("check_end")
        batch_op.drop_column("check_start")
        batch_op.drop_column("requested_at")
    with op.batch_alter_table("register_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_register_entry_record_id"))
        batch_op.drop_index("ix_register_entry_inspector")
    op.drop_table("register_entry")
