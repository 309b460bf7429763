"""Typed SQLAlchemy models. Names follow ../shared/GLOSSARY.md.

Timestamps are stored as timezone-aware UTC (`UtcDateTime`) on both databases.
One cohesive thing: the schema, every table in one place (Alembic compares it with the
migrations), grouped by area.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# One integer type that is BIGINT on PostgreSQL but INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# A list of search tokens: text[] on PostgreSQL (GIN-indexed); SQLite has no arrays and keeps
# none (NULL), its search walks ``public_bigram`` alone.
Tokens = ARRAY(Text()).with_variant(Text(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out; SQLite stores them naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --- organisations and people -------------------------------------------------------------


class Organisation(Base):
    """Region department, league/city bureau or banner/county branch, by GB/T 2260 code."""

    __tablename__ = "organisation"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))  # region / city / county
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("organisation.code"), index=True)
    group_chats: Mapped[bool] = mapped_column(Boolean, default=False)


class RuleParam(Base):
    """One rule parameter from an effective date (Art. 24, 25, 28, 37, 38, 45): set by the
    region, with its reason; the values in force on a day are the latest row of each key."""

    __tablename__ = "rule_param"
    __table_args__ = (UniqueConstraint("key", "effective_from"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[dt.datetime]


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("org_code", "code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))


class RoleBinding(Base):
    """(WeCom userid, role, organisation, department or none); covers the org's subtree."""

    __tablename__ = "role_binding"
    __table_args__ = (UniqueConstraint("userid", "role", "org_code", "dept_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(20))
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    # "" rather than NULL so the unique constraint holds on both databases.
    dept_code: Mapped[str] = mapped_column(String(20), default="")
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[dt.datetime]
    # The person's name as the granting admin typed it ("" when not given): shown instead of
    # the account id where the inspector directory does not know them.
    name: Mapped[str] = mapped_column(String(40), default="", server_default="")


# --- the directories (Art. 8-18) -------------------------------------------------------------


class CheckItem(Base):
    """随机抽查事项清单 (Art. 8-10)."""

    __tablename__ = "check_item"
    __table_args__ = (UniqueConstraint("org_code", "code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    target_scope: Mapped[str] = mapped_column(Text, default="")
    check_type: Mapped[str] = mapped_column(String(12))  # directed / undirected
    method: Mapped[str] = mapped_column(String(12))  # onsite / offsite
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    responsible_dept: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Target(Base):
    """检查对象名录库 (Art. 11-13). Key: permit/registration number, else the USCC."""

    __tablename__ = "target"
    # A task's scope is read through this covering index (migration 0003).
    __table_args__ = (
        Index(
            "ix_target_scope",
            "org_code",
            "tier",
            "status",
            "on_positive_list",
            "approval_level",
            "construction_started_on",
            "operation_started_on",
            "key",
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    permit_no: Mapped[str | None] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(50), default="")
    legal_rep: Mapped[str] = mapped_column(String(50), default="")
    registration_authority: Mapped[str] = mapped_column(String(100), default="")
    established_on: Mapped[dt.date | None] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(300), default="")
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    tier: Mapped[str] = mapped_column(String(10), index=True)  # special / key / general
    status: Mapped[str] = mapped_column(String(15), default="operating")
    industry: Mapped[str] = mapped_column(String(100), default="")
    pollutant_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scale: Mapped[str] = mapped_column(String(20), default="")
    production_cycle: Mapped[str] = mapped_column(String(50), default="")
    supervision_type: Mapped[str] = mapped_column(String(50), default="")
    performance_grade: Mapped[str | None] = mapped_column(String(2))
    on_positive_list: Mapped[bool] = mapped_column(Boolean, default=False)
    construction_status: Mapped[str] = mapped_column(String(30), default="")
    approval_level: Mapped[str] = mapped_column(String(20), default="")  # ministry/region/...
    construction_started_on: Mapped[dt.date | None] = mapped_column(Date)
    operation_started_on: Mapped[dt.date | None] = mapped_column(Date)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # department-defined
    updated_at: Mapped[dt.datetime]


class Inspector(Base):
    """检查人员名录库 (Art. 15-18); an active record with a userid confers the inspector role."""

    __tablename__ = "inspector"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certificate_no: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_kind: Mapped[str] = mapped_column(String(20), default="enforcement")
    certificate_issued_on: Mapped[dt.date | None] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(50), index=True)
    gender: Mapped[str] = mapped_column(String(4), default="")
    unit: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[str] = mapped_column(String(50), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"), index=True)
    dept_code: Mapped[str] = mapped_column(String(20), default="")
    userid: Mapped[str | None] = mapped_column(String(64), index=True)
    auxiliary: Mapped[bool] = mapped_column(Boolean, default=False)
    years_of_service: Mapped[int | None] = mapped_column(Integer)
    expertise: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    leave_from: Mapped[dt.date | None] = mapped_column(Date)
    leave_until: Mapped[dt.date | None] = mapped_column(Date)
    conflicts: Mapped[list[Any]] = mapped_column(JSON, default=list)  # target keys
    updated_at: Mapped[dt.datetime]


class DirectoryHistory(Base):
    """Every change to a target's tier, tags, status or an inspector's standing (Art. 13, 16)."""

    __tablename__ = "directory_history"
    __table_args__ = (Index("ix_directory_history_subject", "kind", "subject_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # target / inspector / item
    subject_key: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(40))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    # What the change rests on, when it is not an edit (e.g. "inspection:1001": a result
    # 检查对象已注销, Art. 13, 38).
    evidence: Mapped[str] = mapped_column(String(200), default="", server_default="")


# --- the runtime: inbound queue, outbox, audit ------------------------------------------------


class InboundEvent(Base):
    """The callback queue: one row per distinct WeCom message or event (durable dedup key)."""

    __tablename__ = "inbound_event"
    __table_args__ = (Index("ix_inbound_pending_user", "status", "userid", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    userid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the decrypted XML, as received
    received_at: Mapped[dt.datetime]
    # Where it came in: "wecom" (the callback) or "console"; each is claimed only by its own
    # kind of worker, so a console beside a running server never takes a WeCom event.
    channel: Mapped[str] = mapped_column(String(10), default="wecom", server_default="wecom")
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending/done/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    processed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class WorkerHeartbeat(Base):
    """Each running instance's claiming loops (event worker, outbox sender) beat here every few
    seconds: the leases of an owner that stopped beating are freed long before they expire."""

    __tablename__ = "worker_heartbeat"
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[dt.datetime]


class OutboxMessage(Base):
    """A message to WeCom, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "priority", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime]
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 0 reply, 1 notification, 2 bulk
    api: Mapped[str] = mapped_column(String(40))  # message/send, update_template_card, ...
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending/sent/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[dt.datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    invalid_users: Mapped[list[Any]] = mapped_column(JSON, default=list)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cause_event_id: Mapped[int | None] = mapped_column(BigId)
    ref: Mapped[str | None] = mapped_column(String(100), index=True)  # e.g. card task id
    # message/send: a hash of recipients and body, when first sent, and whether it went with
    # WeCom's duplicate check (off when another message with the same content went within the
    # check's interval: see bot.runtime.sender).
    content_key: Mapped[str | None] = mapped_column(String(64), index=True)
    first_sent_at: Mapped[dt.datetime | None]
    duplicate_check: Mapped[bool | None]


class TemplateCard(Base):
    """A delivered template card: the response code WeCom returned for it, which an update of
    the card needs (written by the sender when the card is delivered)."""

    __tablename__ = "template_card"
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    response_code: Mapped[str] = mapped_column(String(128))
    delivered_at: Mapped[dt.datetime]


class CardCode(Base):
    """A response code WeCom handed out for an interactive card: on delivery (the sender) or
    with a click (the handler). One update of the card consumes one code, within 72 hours."""

    __tablename__ = "card_code"
    response_code: Mapped[str] = mapped_column(String(128), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), index=True)
    issued_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class CardVoid(Base):
    """A card a user holds that could not be updated (no usable code) and was voided by a text:
    a tap on it changes nothing and answers with the current state."""

    __tablename__ = "card_void"
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime]


class GroupChat(Base):
    """A group chat the bot created (appchat/create) and who owns it now; written with the
    change that creates it or hands it over, so a second change sees the first."""

    __tablename__ = "group_chat"
    chatid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class OutboxDelivery(Base):
    """One row per recipient per delivered message: the per-recipient rate budget's ledger."""

    __tablename__ = "outbox_delivery"
    __table_args__ = (
        Index("ix_outbox_delivery_recipient_at", "recipient", "sent_at"),
        # The sender stamps and frees an attempt's slots by these (storage.outbox).
        Index("ix_outbox_delivery_message_attempt", "message_id", "attempt"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id"))
    recipient: Mapped[str] = mapped_column(String(64))
    # When WeCom counts it: in flight, a bound on the arrival still to come; once answered (or
    # lost in transit), the time of the answer, which is never before the arrival.
    sent_at: Mapped[dt.datetime]
    attempt: Mapped[int | None]  # the message's attempt that reserved it


class AuditEntry(Base):
    """Append-only, hash-chained: hash = SHA-256(prev_hash || canonical entry)."""

    __tablename__ = "audit_entry"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's head, locked while appending so appends serialise."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class Conversation(Base):
    """What a user is in the middle of (e.g. a description owed for a result)."""

    __tablename__ = "conversation"
    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[dt.datetime]


class DueAction(Base):
    """Timers owned by the database (reminders, lapses): the scheduler only ticks."""

    __tablename__ = "due_action"
    __table_args__ = (
        Index("ix_due_action_due", "status", "due_at"),
        UniqueConstraint("kind", "ref"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[dt.datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending/done/cancelled
    done_at: Mapped[dt.datetime | None]


class PaceWarning(Base):
    """A pace warning sent (Art. 25): a tier of a league/city behind its quarterly minimum, once
    per occasion; the unique key lets one instance only send it."""

    __tablename__ = "pace_warning"
    __table_args__ = (UniqueConstraint("org_code", "tier", "year", "quarter", "occasion"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_code: Mapped[str] = mapped_column(String(12))
    tier: Mapped[str] = mapped_column(String(10))
    year: Mapped[int] = mapped_column(Integer)
    quarter: Mapped[int] = mapped_column(Integer)
    occasion: Mapped[str] = mapped_column(String(10))  # behind / final
    required: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[dt.datetime]


class DomainClock(Base):
    """Which clock this database runs on (one row): the real clock, or a drill's simulated clock
    from ``start`` at ``speed``, anchored at the wall time ``anchor`` so that every process
    computes the same simulated time and a restart never moves it backwards."""

    __tablename__ = "domain_clock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))  # real / drill
    start: Mapped[dt.datetime | None]
    speed: Mapped[float | None] = mapped_column(Float)
    anchor: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class UploadToken(Base):
    """One-time signed upload links (import in chat): single use, short-lived."""

    __tablename__ = "upload_token"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class Sequence(Base):
    """Named counters (task codes per org and year, inspection numbers)."""

    __tablename__ = "sequence"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BigId, default=0)


# --- plans, tasks, draws and inspections (Art. 19-31) ------------------------------------------


class Plan(Base):
    """年度抽查计划 (Art. 20, 22): one organisation's tasks for a year."""

    __tablename__ = "plan"
    __table_args__ = (UniqueConstraint("org_code", "year", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    year: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class Task(Base):
    """抽查任务 (Art. 22): what is drawn, from where, by whom, when, and the team policies."""

    __tablename__ = "task"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)  # T2026-150100-017
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plan.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"), index=True)  # draws
    drawing_dept: Mapped[str] = mapped_column(String(20), default="")
    checking_depts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Joint task (Art. 19, 21, 23): one visit covers every department's items.
    initiating_dept: Mapped[str] = mapped_column(String(20), default="")
    participating_depts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scope_orgs: Mapped[list[Any]] = mapped_column(JSON, default=list)  # subtree roots
    tag_filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # Art. 26 directed
    # Per tier {"ratio": "1/4"} or {"count": 3}; a tier not listed is not drawn.
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    item_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    focus: Mapped[str] = mapped_column(Text, default="")
    draw_on: Mapped[dt.date | None] = mapped_column(Date)
    check_start: Mapped[dt.date] = mapped_column(Date)
    check_end: Mapped[dt.date] = mapped_column(Date)
    team_size: Mapped[int] = mapped_column(Integer, default=2)
    qualifying_kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    locality: Mapped[str] = mapped_column(String(12), default="scope")
    auxiliary_per_team: Mapped[int] = mapped_column(Integer, default=0)
    avoid_last_inspector: Mapped[bool] = mapped_column(Boolean, default=True)
    max_load: Mapped[int | None] = mapped_column(Integer)
    # Art. 25: a market entity is randomly checked at most once a year, whichever level draws;
    # special targets may be checked more often; the level above may re-check (Art. 30).
    once_a_year: Mapped[bool] = mapped_column(Boolean, default=True)
    special_more_often: Mapped[bool] = mapped_column(Boolean, default=True)
    recheck_below: Mapped[bool] = mapped_column(Boolean, default=False)
    skip_checked_above: Mapped[bool] = mapped_column(Boolean, default=False)  # Art. 30
    construction_projects: Mapped[bool] = mapped_column(Boolean, default=True)  # Art. 25(4)
    status: Mapped[str] = mapped_column(String(12), default="planned")
    # Art. 5: a banner/county branch's task is proposed ("proposed") until its league/city
    # bureau approves it ("planned") or refuses it ("refused"); the draw is then the city's, or
    # that of the one branch admin the city authorised for this task.
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None]
    authorised_drawer: Mapped[str | None] = mapped_column(String(64))
    # Before issue 13 a chief could approve one more draw ({"by", "reason", "at"}); no longer
    # written: a sealed draw is cancelled (Draw.cancellation), never re-drawn.
    redraw_approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The task whose draw was cancelled and which this one replaces (its code); its draw
    # names that draw (DRAW_ALGORITHM.md section 16).
    replaces: Mapped[str | None] = mapped_column(String(30))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]


class Draw(Base):
    """抽取: one committed draw of a task. Every attempt is kept (re-draws need approval)."""

    __tablename__ = "draw"
    __table_args__ = (UniqueConstraint("task_id", "attempt"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    org_code: Mapped[str] = mapped_column(String(12))
    # committed / drawn / failed / cancelled (abandoned / superseded: before issue 13 only)
    status: Mapped[str] = mapped_column(String(12))
    algorithm_version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # zlib of the canonical {"algorithm_version", "input"} document the fingerprint hashes.
    input_doc: Mapped[bytes] = mapped_column(LargeBinary)
    construction_fingerprint: Mapped[str | None] = mapped_column(String(64))
    construction_doc: Mapped[bytes | None] = mapped_column(LargeBinary)
    exclusions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_hex: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    witnessed: Mapped[bool] = mapped_column(Boolean, default=True)
    witness: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    construction_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    redraw_reason: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    committed_by: Mapped[str] = mapped_column(String(64))
    committed_at: Mapped[dt.datetime]
    drawn_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]  # cancelled (abandoned or superseded before)
    # Fixed at sealing: who witnesses, in the order their values enter the seed (userids), and
    # by when; each value as it comes (None until typed). None: no witness, or a draw sealed
    # before witnesses were named (its one value is in ``witness``).
    witnesses: Mapped[list[Any] | None] = mapped_column(JSON)
    witness_values: Mapped[list[Any] | None] = mapped_column(JSON)
    witness_deadline: Mapped[dt.datetime | None]
    unwitnessed_reason: Mapped[str | None] = mapped_column(Text)
    # A public random source named at sealing instead of witnesses (RFC 3797 style):
    # {"source": description, "value": None until confirmed, "typed": None or {"value", "by",
    # "at"}, "confirmed_by", "confirmed_at"}.
    public_source: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"requested_by", "reason", "requested_at", "approved_by", "approved_at", "approval"}:
    # approval "level_above", or "region_two_person" for a region draw (chief and admin).
    cancellation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DrawAmendment(Base):
    """A later change to a draw's result, appended so the record replays: a swap (Art. 29)
    or a merge into another task's visit to the same market entity (Art. 19; ``into``, with
    ``leaving`` and ``replacement`` empty)."""

    __tablename__ = "draw_amendment"
    __table_args__ = (UniqueConstraint("draw_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draw.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # swap / merge
    part: Mapped[str] = mapped_column(String(12), default="random")  # random / construction
    target_key: Mapped[str] = mapped_column(String(64))
    leaving: Mapped[str] = mapped_column(String(64))  # certificate numbers
    replacement: Mapped[str] = mapped_column(String(64))
    excluded: Mapped[list[Any]] = mapped_column(JSON, default=list)
    into: Mapped[str | None] = mapped_column(String(80))  # merge: "<task code>:<number>"
    reason: Mapped[str] = mapped_column(Text, default="")
    approved_by: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    # Version 2 (DRAW_ALGORITHM.md section 10): when the swap was asked for, the check window
    # the leave records are read against, and the register records (exported form, one per
    # ``excluded`` entry, same order) that justify each exclusion.
    requested_at: Mapped[dt.datetime | None]
    check_start: Mapped[dt.date | None] = mapped_column(Date)
    check_end: Mapped[dt.date | None] = mapped_column(Date)
    evidence: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class RegisterEntry(Base):
    """The register of leave and declared conflicts (Art. 29): one row per version of a record.

    A record's stable id is ``record_id`` (the id of its first version); amending or
    withdrawing it adds a version, the old ones stay. A version counts from ``effective_at``
    (when it was confirmed: by the chief for chat entries, by the importer for a spreadsheet)
    until a later version of the same record takes effect. Kinds: ``leave`` (``date_from`` /
    ``date_until``, either may be open) and ``conflict`` (``targets``: the target keys the
    declaration names, resolved when declared; ``company`` and ``declared_on`` as typed)."""

    __tablename__ = "register_entry"
    __table_args__ = (
        UniqueConstraint("record_id", "version"),
        Index("ix_register_entry_inspector", "inspector_id", "kind"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id"))
    certificate_no: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(10))  # leave / conflict
    date_from: Mapped[dt.date | None] = mapped_column(Date)
    date_until: Mapped[dt.date | None] = mapped_column(Date)
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    company: Mapped[str] = mapped_column(String(200), default="")  # as typed
    declared_on: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")  # as typed
    # pending / confirmed / rejected / withdrawn
    state: Mapped[str] = mapped_column(String(10), default="pending")
    source: Mapped[str] = mapped_column(String(10), default="chat")  # chat / import
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[dt.datetime]
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    effective_at: Mapped[dt.datetime | None]
    heads: Mapped[list[Any]] = mapped_column(JSON, default=list)  # who got the card
    note: Mapped[str] = mapped_column(Text, default="")  # a rejection's reason


class Inspection(Base):
    """检查: one target, one team, one visit; its number is what every card and message shows."""

    __tablename__ = "inspection"
    __table_args__ = (Index("ix_inspection_status_target", "status", "target_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[int] = mapped_column(BigId, unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    draw_id: Mapped[int | None] = mapped_column(ForeignKey("draw.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("target.id"))
    target_key: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(10))  # onsite / offsite (Art. 31)
    origin: Mapped[str] = mapped_column(String(12), default="random")  # random / construction
    item_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    joined_tasks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # other tasks' codes
    check_start: Mapped[dt.date] = mapped_column(Date)
    check_end: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open/merged/cancelled/done
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("inspection.id"))
    card_task_id: Mapped[str | None] = mapped_column(String(128))  # latest card's task_id
    chatid: Mapped[str | None] = mapped_column(String(32))
    result_code: Mapped[str | None] = mapped_column(String(40))  # set by the results work
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]


class TeamMember(Base):
    """检查组 membership (Art. 28); a swapped-out member stays, inactive (Art. 29, 40)."""

    __tablename__ = "team_member"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id"))
    certificate_no: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64), index=True)
    auxiliary: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    card_task_id: Mapped[str | None] = mapped_column(String(128))  # the card this member got
    joined_at: Mapped[dt.datetime]
    left_at: Mapped[dt.datetime | None]
    amendment_id: Mapped[int | None] = mapped_column(ForeignKey("draw_amendment.id"))


# --- results, swaps and checks outside the draw (Art. 6, 29, 32-38, 40) ----------------------


class InspectionResult(Base):
    """检查结果 (Art. 38): an inspection's current result, or one member's hold on it while the
    description of a problem is written. One row per inspection, so the database decides the
    first submission (a conditional upsert on this key); the history is in ``ResultEntry``."""

    __tablename__ = "inspection_result"
    __table_args__ = (
        Index("ix_inspection_result_at", "at"),  # a period's results (reports)
        # Results recorded before a period's end and unpublished at its end, not yet or later
        # (Art. 37, 43; migration 0011): both ranges read from the index alone.
        Index("ix_inspection_result_published_at", "published_at", "at"),
        # Results not yet published, by task (migration 0010_pgsearch): the few recorded after
        # their unit published, found each reminder tick without reading every result (Art. 37).
        Index(
            "ix_inspection_result_unpublished",
            "task_id",
            sqlite_where=sql_text("published_at IS NULL"),
            postgresql_where=sql_text("published_at IS NULL"),
        ),
    )
    inspection_id: Mapped[int] = mapped_column(BigId, ForeignKey("inspection.id"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    state: Mapped[str] = mapped_column(String(10))  # held / recorded
    code: Mapped[str] = mapped_column(String(40))
    phrase: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(100), default="")  # phrase 5: handed to
    userid: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(50), default="")
    channel: Mapped[str] = mapped_column(String(10))  # card / text / console
    at: Mapped[dt.datetime]
    held_until: Mapped[dt.datetime | None]
    case_filing: Mapped[bool] = mapped_column(Boolean, default=False)  # phrase 3 (Art. 34)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)  # Art. 37: never published
    secret_reason: Mapped[str] = mapped_column(Text, default="")
    secret_by: Mapped[str | None] = mapped_column(String(64))
    secret_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]  # set by the publication work
    # A chief's explicit confirmation: from then on the submitter can no longer amend their own
    # description or record number (nor after publication); a chief's 更正 still can.
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[dt.datetime | None]


class PublicDrawExport(Base):
    """A draw's public export as the public page serves it (Art. 37; DRAW_ALGORITHM.md section
    18), built once and shared by every instance: valid while the draw's amendment chain head
    is ``amendments_head`` (a new draw is a new row). ``first_served_at`` is when the public
    first got it: from then its targets are out, and a check of the draw can no longer be made
    secret (``storage.results.mark_secret`` refuses)."""

    __tablename__ = "public_draw_export"
    draw_id: Mapped[int] = mapped_column(BigId, ForeignKey("draw.id"), primary_key=True)
    amendments_head: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    built_at: Mapped[dt.datetime]
    first_served_at: Mapped[dt.datetime]


class CheckFact(Base):
    """A random check with its recorded result, as the statistics table counts it (Art. 25, 43):
    one row per inspection whose result is recorded, whose origin counts for the quotas, which
    is not cancelled and not a check outside the draw, with the target's organisation and tier.
    Derived, never typed: ``storage.facts.refresh`` rewrites an inspection's row in the same
    transaction as whatever changes it (a result, a correction, a cancellation, a swap, a
    registration outside the draw, a target moved to another unit), and the table of a quarter
    is one range scan of ``ix_check_fact_period``."""

    __tablename__ = "check_fact"
    __table_args__ = (
        Index("ix_check_fact_period", "at", "org_code", "tier", "code", "case_filing", "target_id"),
        Index("ix_check_fact_target", "target_id"),
    )
    inspection_id: Mapped[int] = mapped_column(BigId, ForeignKey("inspection.id"), primary_key=True)
    at: Mapped[dt.datetime]  # when the check was made (storage.facts.check_time)
    org_code: Mapped[str] = mapped_column(String(12))  # where the target is
    target_id: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(40))
    case_filing: Mapped[bool] = mapped_column(Boolean)


class CheckFactMember(Base):
    """The inspectors who took part in a ``CheckFact`` (active, not auxiliary; Art. 17, 29),
    with its time and unit, so that the people of a quarter are one range scan too."""

    __tablename__ = "check_fact_member"
    __table_args__ = (Index("ix_check_fact_member_period", "at", "org_code", "inspector_id"),)
    inspection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("check_fact.inspection_id", ondelete="CASCADE"), primary_key=True
    )
    inspector_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime]
    org_code: Mapped[str] = mapped_column(String(12))


class Publication(Base):
    """一公开 (Art. 37, "who checks, enters and publishes"): a checking unit's results of a task
    made public, once: when, by whom, where (the portal's address or the bot's own page), and
    whether it was within the deadline. Reminders stop and the statistics count from here."""

    __tablename__ = "publication"
    __table_args__ = (UniqueConstraint("task_id", "org_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    org_code: Mapped[str] = mapped_column(String(12))  # the checking unit
    published_at: Mapped[dt.datetime]
    published_by: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    results: Mapped[int] = mapped_column(Integer, default=0)  # published with it
    withheld: Mapped[int] = mapped_column(Integer, default=0)  # secret checks (Art. 37)


class PublicationEvent(Base):
    """One act of publication of a checking unit's results of a task (Art. 37): its first 公示,
    or a supplement for results recorded after it. Each of the results it made public is
    judged against its own due day (``inspection.deadlines.results_publication_due``): one in
    by the task clock's start is due with the task, a later one n working days after its
    recording. The statistics table (Art. 43) counts results published on time and late from
    here, in the quarter of ``published_at``."""

    __tablename__ = "publication_event"
    __table_args__ = (Index("ix_publication_event_at", "published_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id"), index=True)
    org_code: Mapped[str] = mapped_column(String(12))  # the checking unit
    published_at: Mapped[dt.datetime]
    supplement: Mapped[bool] = mapped_column(Boolean, default=False)
    due: Mapped[dt.date | None] = mapped_column(Date)  # the earliest due day of its results
    on_time: Mapped[int] = mapped_column(Integer, default=0)  # results published by their due day
    late: Mapped[int] = mapped_column(Integer, default=0)  # results published after it


class PublicEntry(Base):
    """One line of the public page (一公开, Art. 37): only what the public may read, copied when
    a unit publishes a task (and again when a published result is corrected), so the public
    page reads nothing internal. Secret results (Art. 37) never get a line."""

    __tablename__ = "public_entry"
    __table_args__ = (
        Index("ix_public_entry_page", "org_code", "year", "id"),
        Index("ix_public_entry_year", "year", "id"),
        Index("ix_public_entry_uscc", "uscc"),
        # PostgreSQL: one GIN index over each line's tokens (migration 0010_pgsearch), so a
        # search intersects the posting lists of all its bigrams and its units at once. Empty
        # on SQLite (no line has tokens there).
        Index(
            "ix_public_entry_grams",
            "grams",
            postgresql_using="gin",
            sqlite_where=sql_text("grams IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), unique=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id"), index=True)
    org_code: Mapped[str] = mapped_column(String(12))  # the checking unit
    unit_name: Mapped[str] = mapped_column(String(100))
    year: Mapped[int] = mapped_column(Integer)  # the task's: the page 公示 names
    task_code: Mapped[str] = mapped_column(String(30))
    task_name: Mapped[str] = mapped_column(String(200))
    target_name: Mapped[str] = mapped_column(String(200))  # as stored, as shown
    # What a name search matches (storage.public.searchable): the name width- and case-folded
    # (NFKC, casefold) without spaces, written with the line (migration 0011_searchfold).
    search_name: Mapped[str] = mapped_column(Text, default="", server_default="", deferred=True)
    uscc: Mapped[str] = mapped_column(String(18), default="")
    check_date: Mapped[dt.date] = mapped_column(Date)
    phrase: Mapped[str] = mapped_column(String(100))
    penalty: Mapped[str] = mapped_column(Text, default="")  # Art. 38, once linked
    published_at: Mapped[dt.datetime]
    corrected_at: Mapped[dt.datetime | None]
    # PostgreSQL only: "<year>:<bigram>" for each bigram of the name and "o:<org code>"
    # (storage.public.tokens), rewritten with the line; NULL on SQLite.
    grams: Mapped[list[str] | None] = mapped_column(Tokens, nullable=True, deferred=True)


class PublicBigram(Base):
    """Character bigrams of published target names, by year: serves a search by any two or
    more characters of a Chinese name from an index, newest line first, at any size (a LIKE
    scan would not)."""

    __tablename__ = "public_bigram"
    # The line's unit beside its key (migration 0008): a unit's page filters a bigram's lines
    # in this index alone, without reading them.
    __table_args__ = (Index("ix_public_bigram_unit", "bigram", "year", "entry_id", "org_code"),)
    bigram: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("public_entry.id", ondelete="CASCADE"), primary_key=True
    )
    org_code: Mapped[str] = mapped_column(String(12), server_default="")


class PublicBigramCount(Base):
    """How many lines of a year have a bigram (``PublicBigram``), kept with them: a search
    starts from its rarest bigram and probes the next ones, whatever the name's words."""

    __tablename__ = "public_bigram_count"
    bigram: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class Reminder(Base):
    """A reminder sent once per occasion (Art. 37, 40, 43): claimed by inserting its key, in the
    transaction that queues the message, so two instances or a restart never send it twice."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("kind", "subject", "occasion"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # publication / results / statistics_table ...
    subject: Mapped[str] = mapped_column(String(100))  # what it is about, e.g. "T2026-..:150102"
    occasion: Mapped[str] = mapped_column(String(40))  # before5 / before1 / overdue:2026-12-29
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sent_at: Mapped[dt.datetime]


class DigestChat(Base):
    """An organisation whose reminders go as one morning digest to a group chat the bot
    created, instead of one message per person (Art. 37, 40, 43); no row: per person."""

    __tablename__ = "digest_chat"
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"), primary_key=True)
    chatid: Mapped[str] = mapped_column(String(32))
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime]


class Deadline(Base):
    """A computed deadline as last announced, so that adding a missing year's holiday schedule
    can say which provisional deadlines moved (Art. 37)."""

    __tablename__ = "deadline"
    __table_args__ = (UniqueConstraint("kind", "subject"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # publication
    subject: Mapped[str] = mapped_column(String(100))  # the task code
    due: Mapped[dt.date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)  # weekends alone
    computed_at: Mapped[dt.datetime]


class ResultEntry(Base):
    """Every result and correction as it was made (Art. 33, 40); a correction never overwrites
    the original."""

    __tablename__ = "result_entry"
    __table_args__ = (UniqueConstraint("inspection_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # result / correction / merged
    code: Mapped[str] = mapped_column(String(40))
    phrase: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # a correction's
    userid: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(50), default="")
    channel: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime]


class RecordNumber(Base):
    """现场检查记录 / 移动执法记录 numbers attached to an inspection (Art. 35)."""

    __tablename__ = "record_number"
    __table_args__ = (UniqueConstraint("inspection_id", "record_no"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    record_no: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    # Replaced by its submitter's amendment (kept: the history of what was attached).
    superseded_at: Mapped[dt.datetime | None]


class FollowUp(Base):
    """What followed an inspection (Art. 34, 38): the hand-over of a suspected crime to the
    judiciary (``judiciary``: the receiving body and date), and a penalty decision made later
    (``penalty``: its decision number and date), which is published with the result."""

    __tablename__ = "follow_up"
    __table_args__ = (UniqueConstraint("inspection_id", "kind", "body", "reference"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # judiciary / penalty
    body: Mapped[str] = mapped_column(String(100), default="")  # the receiving body, as typed
    reference: Mapped[str] = mapped_column(String(100), default="")  # decision no., as typed
    on: Mapped[dt.date] = mapped_column(Date)
    userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]


class SwapRequest(Base):
    """替换申请 (Art. 29): a member asks to leave a team; their department head decides, once."""

    __tablename__ = "swap_request"
    __table_args__ = (Index("ix_swap_request_member_status", "member_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("team_member.id"))
    certificate_no: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))  # the requester
    reason: Mapped[str] = mapped_column(Text)
    # pending / approved / rejected / lapsed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    heads: Mapped[list[Any]] = mapped_column(JSON, default=list)  # who got the approval card
    card_task_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime]
    reminded_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")  # a rejection's reason
    replacement_userid: Mapped[str | None] = mapped_column(String(64))
    amendment_id: Mapped[int | None] = mapped_column(ForeignKey("draw_amendment.id"))


class CheckOutsideDraw(Base):
    """A check outside the draw (Art. 6): one of the kinds of ``inspection.origins.OUTSIDE_KINDS``
    with its reason; its inspection has origin "targeted" and is counted apart from random
    checks."""

    __tablename__ = "check_outside_draw"
    inspection_id: Mapped[int] = mapped_column(BigId, ForeignKey("inspection.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    lead_dept: Mapped[str] = mapped_column(String(100), default="")  # before 0006 only
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime]


class JointCheck(Base):
    """An inter-agency joint random check (部门联合抽查, Art. 6, 7, 36), led and drawn by another
    authority: its inspection has origin "joint" and counts as a random check (once a year,
    quotas); our participants are its team members, its result the inspection's result.

    ``checked_at`` is the lead authority's check date (typed with the registration, local noon
    of that day, as imported checks' results are): the date once a year, the quarterly counts,
    the publication clock and the public page go by, not the day it was registered here."""

    __tablename__ = "joint_check"
    inspection_id: Mapped[int] = mapped_column(BigId, ForeignKey("inspection.id"), primary_key=True)
    lead_authority: Mapped[str] = mapped_column(String(100))
    lead_task: Mapped[str] = mapped_column(String(200))
    lead_draw_ref: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[dt.datetime]
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime]


class ImportedCheck(Base):
    """A check made before the bot was adopted, imported from a spreadsheet (Art. 14, 25): its
    inspection (status "done", its result and check date) counts for once a year and the
    quotas like one made here; ``kind`` is random, joint or an Art. 6 kind."""

    __tablename__ = "imported_check"
    inspection_id: Mapped[int] = mapped_column(BigId, ForeignKey("inspection.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    # Art. 37: where the result was published before the import (an address or "已公开", as
    # typed); empty: a random check of the import's year is published here like any other.
    published_elsewhere: Mapped[str] = mapped_column(Text, default="", server_default="")
    source_file: Mapped[str] = mapped_column(String(200))
    source_row: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime]
