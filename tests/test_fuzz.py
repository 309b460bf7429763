"""Fuzzing the edges: the callback endpoint (bodies, signatures, timestamps, XML), every chat
command's arguments through the real router, and the spreadsheet importer's cells. Never a 500,
never a traceback, never an unhandled exception: only the documented answers. Each run is
bounded (max_examples) so the suite stays fast."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import or_, select

from bot.runtime.app import dispatcher
from bot.runtime.worker import FAILED_REPLY
from storage.db import Database
from storage.directory import headers
from storage.models import InboundEvent
from tests.conftest import Harness
from tests.support.directory import run_import, write


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


CALLBACK_STATUSES = {200, 400, 403, 413}  # 503 only when the database cannot take the event

# What a person can type (WeCom carries no control characters or lone surrogates in XML).
typed = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
query_value = st.one_of(
    st.just(""), st.text(max_size=30), st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
)


def _inner_xml(h: Harness, text: str, kind: str) -> str:
    now = int(h.clock.now().timestamp())
    if kind == "text":
        return h.wecom.text_message_xml("fuzzer", text, h.next_msg_id(), now)
    if kind == "fragment":
        return f"<xml><MsgType>{text}</MsgType><FromUserName>u</FromUserName></xml>"
    return text  # anything at all where the XML should be


@fuzz(40)
@given(
    inner=typed,
    kind=st.sampled_from(["text", "fragment", "raw"]),
    skew=st.one_of(st.just(0), st.integers(-(10**6), 10**6)),
    tamper=st.sampled_from(["none", "signature", "timestamp", "nonce", "body", "params"]),
    junk=st.binary(max_size=300),
    value=query_value,
)
async def test_callback_fuzz_answers_only_documented_statuses(
    h: Harness, inner: str, kind: str, skew: int, tamper: str, junk: bytes, value: str
) -> None:
    params, body = h.wecom.seal_callback(
        _inner_xml(h, inner, kind), int(h.clock.now().timestamp()) + skew
    )
    data = body.encode()
    if tamper in ("signature", "timestamp", "nonce"):
        params = {**params, {"signature": "msg_signature"}.get(tamper, tamper): value}
    elif tamper == "body":
        data = junk
    elif tamper == "params":
        params = {k: v for k, v in params.items() if k != "nonce"} if not value else {"x": value}
    async with aiohttp.ClientSession() as http:
        async with http.post(h.url, params=params, data=data) as r:
            assert r.status in CALLBACK_STATUSES, (r.status, await r.text())
            assert "Traceback" not in await r.text()
        async with http.get(h.url, params={**params, "echostr": value}) as r:
            assert r.status in {200, 400, 403}
            assert "Traceback" not in await r.text()


COMMAND_WORDS = sorted({name for c in dispatcher().commands for name in c.names})


@fuzz(2)
@given(
    args=st.lists(typed, min_size=len(COMMAND_WORDS), max_size=len(COMMAND_WORDS)),
    user=st.sampled_from(["fuzzer", "nobody"]),
)
async def test_every_commands_arguments_fuzzed_never_fail_the_handler(
    h: Harness, args: list[str], user: str
) -> None:
    """Each example gives every command word (and alias) arguments of its own, so each run
    fuzzes every command, not a sample of them."""
    if not await _granted(h):
        for role, org, dept in [
            ("admin", "150000", ""),
            ("chief", "150100", "执法科"),
            ("publisher", "150100", ""),
            ("enforcement", "150100", ""),
        ]:
            await h.grant("fuzzer", role, org, dept)
    before = len(h.wecom.texts_to(user))
    for word, arg in zip(COMMAND_WORDS, args, strict=True):
        assert (await h.post_text(user, f"{word} {arg}"))[0] == 200
    await _handled_and_sent(h)
    sent = h.wecom.texts_to(user)[before:]
    assert len(sent) >= len(COMMAND_WORDS), "a command went unanswered"
    failed = FAILED_REPLY.split("（")[0]
    assert not any(failed in text for text in sent)
    async with h.db.transaction() as session:
        unhandled = await session.execute(
            select(InboundEvent.payload, InboundEvent.error).where(
                or_(InboundEvent.error.is_not(None), InboundEvent.status != "done")
            )
        )
        assert [tuple(row) for row in unhandled] == []


async def _handled_and_sent(h: Harness) -> None:
    """Handle every event and send every reply, moving the clock past WeCom's per-recipient
    minute (30 messages) as often as the replies need."""
    for _ in range(len(COMMAND_WORDS) // 10 + 2):
        await h.settle()
        if not any(m.status == "pending" for m in await h.outbox()):
            return
        h.clock.advance(seconds=60 + h.settings.worker.budget_margin_seconds + 1)
    raise AssertionError("replies still pending after every minute they needed")


async def _granted(h: Harness) -> bool:
    from storage.repos import Repositories

    async with h.db.transaction() as session:
        return bool(await Repositories(session).roles.bindings_for("fuzzer"))


cell = st.one_of(
    st.none(),
    typed,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    st.booleans(),
    st.sampled_from(["150100", "150102", "是", "否", "重点", "一般", "特殊", "现场", "执法证"]),
)


@fuzz(30)
@given(
    kind=st.sampled_from(["targets", "inspectors", "items"]),
    rows=st.lists(st.lists(cell, min_size=0, max_size=30), min_size=1, max_size=4),
    suffix=st.sampled_from([".xlsx", ".csv"]),
)
async def test_importer_fuzzed_cells_give_row_errors_never_an_exception(
    db: Database, tmp_path: Path, kind: str, rows: list[list[Any]], suffix: str
) -> None:
    names = headers(kind)
    table = [dict(zip(names, row + [None] * (len(names) - len(row)), strict=False)) for row in rows]
    path = write(tmp_path / f"{kind}-{uuid.uuid4().hex[:8]}{suffix}", table)
    report = await run_import(db, kind, path)
    assert report.added + report.updated + report.unchanged + report.rejected <= len(rows)
    for rejection in report.rejections:
        assert rejection.row >= 1 and rejection.reason and "Traceback" not in rejection.reason
