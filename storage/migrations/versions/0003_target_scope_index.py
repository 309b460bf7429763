"""A covering index for reading a task's scope: the organisation, then what the pool looks at.

It replaces the index on org_code alone (its first column serves every lookup by organisation).
A draw reads its ordinary targets grouped by these columns (``storage.tasks._scope_batches``):
with the index that is a walk of the index in order, without the table or a sort.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE_COLUMNS = [
    "org_code",
    "tier",
    "status",
    "on_positive_list",
    "approval_level",
    "construction_started_on",
    "operation_started_on",
    "key",
]


def upgrade() -> None:
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.drop_index("ix_target_org_code")
        batch_op.create_index("ix_target_scope", SCOPE_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.drop_index("ix_target_scope")
        batch_op.create_index("ix_target_org_code", ["org_code"], unique=False)
