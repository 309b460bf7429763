"""Facts the domain reads, in tables of their own instead of outbox bodies; events' channel.

- ``inbound_event.channel``: "wecom" or "console", set at ingress; a worker claims its own.
- ``template_card``: a delivered card's response code (needed to update the card).
- ``group_chat``: the chats the bot created and their current owner.

Existing rows are carried over from the outbox, where these facts used to be read.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), server_default="wecom", nullable=False)
        )
    op.create_table(
        "template_card",
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("response_code", sa.String(length=128), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_table(
        "group_chat",
        sa.Column("chatid", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chatid"),
    )
    _carry_over()


def _carry_over() -> None:
    card = sa.table(
        "template_card",
        sa.column("task_id", sa.String),
        sa.column("response_code", sa.String),
        sa.column("delivered_at", UtcDateTime()),
    )
    chat = sa.table(
        "group_chat",
        sa.column("chatid", sa.String),
        sa.column("name", sa.String),
        sa.column("owner", sa.String),
        sa.column("created_at", UtcDateTime()),
        sa.column("updated_at", UtcDateTime()),
    )
    outbox = sa.table(
        "outbox_message",
        sa.column("id", sa.BigInteger),
        sa.column("api", sa.String),
        sa.column("ref", sa.String),
        sa.column("status", sa.String),
        sa.column("body", sa.JSON),
        sa.column("response", sa.JSON),
        sa.column("created_at", UtcDateTime()),
        sa.column("sent_at", UtcDateTime()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            outbox.c.api,
            outbox.c.ref,
            outbox.c.status,
            outbox.c.body,
            outbox.c.response,
            outbox.c.created_at,
            outbox.c.sent_at,
        )
        .where(outbox.c.api.in_(["message/send", "appchat/create", "appchat/update"]))
        .where(outbox.c.ref.is_not(None))
        .order_by(outbox.c.id)
    ).all()
    cards: dict[str, dict[str, object]] = {}
    chats: dict[str, dict[str, object]] = {}
    for api, ref, status, body, response, created_at, sent_at in rows:
        if api == "message/send":
            code = (response or {}).get("response_code")
            if status == "sent" and code:
                cards[ref] = {"task_id": ref, "response_code": code, "delivered_at": sent_at}
        elif api == "appchat/create":
            chats[ref] = {
                "chatid": ref,
                "name": (body or {}).get("name", ""),
                "owner": (body or {}).get("owner", ""),
                "created_at": created_at,
                "updated_at": created_at,
            }
        elif (body or {}).get("owner") and ref in chats:
            chats[ref] |= {"owner": body["owner"], "updated_at": created_at}
    if cards:
        op.bulk_insert(card, list(cards.values()))
    if chats:
        op.bulk_insert(chat, list(chats.values()))


def downgrade() -> None:
    op.drop_table("group_chat")
    op.drop_table("template_card")
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.drop_column("channel")
