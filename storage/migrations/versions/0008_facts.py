"""The random checks as the statistics table counts them (Art. 17, 25, 29, 43): ``check_fact``
and ``check_fact_member``, kept by ``storage.facts`` with every change of the record, and
filled here from the existing rows (the same conditions as ``storage.facts.checks``). And the
public export of a draw as served (Art. 37): ``public_draw_export``, built once per draw and
amendment chain head; when it was first served (nothing before this was recorded as served).
And ``public_bigram_count``: lines per bigram and year, so that a search starts from its rarest;
``public_bigram.org_code``: a unit's page filters a bigram's lines in the index alone.

Revision ID: 0008_facts
Revises: 0008_register
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_facts"
down_revision: str | None = "0008_register"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# inspection.origins.QUOTA_ORIGINS when this was written; a later change of that set comes
# with its own migration that refreshes the facts.
ORIGINS = ("random", "construction", "joint")

BACKFILL = (
    """
    INSERT INTO check_fact (inspection_id, at, org_code, target_id, tier, code, case_filing)
    SELECT r.inspection_id, r.at, t.org_code, i.target_id, i.tier, r.code, r.case_filing
    FROM inspection_result r
    JOIN inspection i ON i.id = r.inspection_id
    JOIN target t ON t.id = i.target_id
    WHERE r.state = 'recorded'
      AND i.origin IN ({origins})
      AND i.status IN ('open', 'done', 'merged')
      AND NOT EXISTS (SELECT 1 FROM check_outside_draw o WHERE o.inspection_id = i.id)
    """.format(origins=", ".join(f"'{o}'" for o in ORIGINS)),
    """
    INSERT INTO check_fact_member (inspection_id, inspector_id, at, org_code)
    SELECT DISTINCT f.inspection_id, m.inspector_id, f.at, f.org_code
    FROM check_fact f
    JOIN team_member m ON m.inspection_id = f.inspection_id
    WHERE m.active AND NOT m.auxiliary
    """,
)


def upgrade() -> None:
    op.create_table(
        "check_fact",
        sa.Column("inspection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_code", sa.String(length=12), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("case_filing", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"]),
        sa.PrimaryKeyConstraint("inspection_id"),
    )
    op.create_table(
        "check_fact_member",
        sa.Column("inspection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["check_fact.inspection_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("inspection_id", "inspector_id"),
    )
    for statement in BACKFILL:  # before the indexes: one sort each instead of row by row
        op.execute(statement)
    op.create_index(
        "ix_check_fact_period",
        "check_fact",
        ["at", "org_code", "tier", "code", "case_filing", "target_id"],
    )
    op.create_index("ix_check_fact_target", "check_fact", ["target_id"])
    op.create_index(
        "ix_check_fact_member_period", "check_fact_member", ["at", "org_code", "inspector_id"]
    )

    op.create_table(
        "public_draw_export",
        sa.Column("draw_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("amendments_head", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_served_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draw.id"]),
        sa.PrimaryKeyConstraint("draw_id"),
    )
    op.add_column(
        "public_bigram",
        sa.Column("org_code", sa.String(length=12), server_default="", nullable=False),
    )
    op.execute(
        "UPDATE public_bigram SET org_code = "
        "(SELECT e.org_code FROM public_entry e WHERE e.id = public_bigram.entry_id)"
    )
    op.create_index(
        "ix_public_bigram_unit", "public_bigram", ["bigram", "year", "entry_id", "org_code"]
    )
    op.create_table(
        "public_bigram_count",
        sa.Column("bigram", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bigram", "year"),
    )
    op.execute(
        "INSERT INTO public_bigram_count (bigram, year, n) "
        "SELECT bigram, year, count(*) FROM public_bigram GROUP BY bigram, year"
    )


def downgrade() -> None:
    op.drop_table("public_bigram_count")
    op.drop_index("ix_public_bigram_unit", table_name="public_bigram")
    with op.batch_alter_table("public_bigram") as batch:
        batch.drop_column("org_code")
    op.drop_table("public_draw_export")
    op.drop_table("check_fact_member")
    op.drop_table("check_fact")
