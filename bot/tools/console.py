"""`shuangsuiji console --as USERID`: chat with the bot in a terminal.

Each line goes the way a WeCom message goes after the endpoint: it is recorded in the inbound
queue, run through the same router by the event worker, and answered through the outbox. What
the bot sends this user alone in answer is printed here and marked delivered (channel "console");
what it sends anyone else stays queued for the real sender. Messages to several people including
this user (a team's task card), and those caused by someone else's message (the card a draw
sends), are printed too and left to the sender. Cards are printed as text with numbered choices:
answer with `:N` (several: `:1,3`) or the choice's text (`:责令整改`) to choose, and `:bN` or the
button's text to press it.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import func, select

from bot.chat.context import Clock, SystemClock
from bot.chat.inbound import envelope
from bot.config import Settings
from bot.runtime.app import dispatcher
from bot.runtime.worker import EventWorker
from bot.wecom.standin import WeComStandIn
from storage import inbound
from storage import outbox as ob
from storage.db import Database
from storage.models import OutboxMessage


@dataclass
class ShownCard:
    task_id: str
    card_type: str
    question_key: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)  # (id, text)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (key, text)
    chosen: list[str] = field(default_factory=list)


def render_card(card: dict[str, Any], *, numbered: bool = True) -> tuple[str, ShownCard]:
    """A template card as text, with its choices numbered (``[:1]``, ``[:b1]``: what the
    console's user types to tap them); ``numbered=False`` for reading only (the demo)."""
    shown = ShownCard(task_id=str(card.get("task_id", "")), card_type=str(card.get("card_type")))
    lines = []
    title = (card.get("main_title") or {}).get("title", "")
    desc = (card.get("main_title") or {}).get("desc", "")
    lines.append(f"┌ {title}" + (f" — {desc}" if desc else ""))
    for item in card.get("horizontal_content_list") or []:
        lines.append(f"│ {item.get('keyname', '')}：{item.get('value', '')}")
    if card.get("sub_title_text"):
        lines.append(f"│ {card['sub_title_text']}")
    checkbox = card.get("checkbox") or {}
    select_list = card.get("select_list") or []
    if checkbox:
        shown.question_key = str(checkbox.get("question_key", ""))
        for n, option in enumerate(checkbox.get("option_list") or [], 1):
            shown.options.append((str(option["id"]), str(option["text"])))
            lines.append(f"│ [:{n}] {option['text']}" if numbered else f"│ ○ {option['text']}")
    elif select_list:
        first = select_list[0]
        shown.question_key = str(first.get("question_key", ""))
        for n, option in enumerate(first.get("option_list") or [], 1):
            shown.options.append((str(option["id"]), str(option["text"])))
            lines.append(f"│ [:{n}] {option['text']}" if numbered else f"│ ○ {option['text']}")
    submit = card.get("submit_button")
    if submit:
        shown.buttons.append((str(submit.get("key", "")), str(submit.get("text", "提交"))))
    for button in card.get("button_list") or []:
        shown.buttons.append((str(button.get("key", "")), str(button.get("text", ""))))
    for n, (_, text) in enumerate(shown.buttons, 1):
        lines.append(f"│ [:b{n}] {text}" if numbered else f"│ 〔{text}〕")
    lines.append("└")
    return "\n".join(lines), shown


def render(message: OutboxMessage) -> tuple[str, ShownCard | None]:
    body = message.body
    msgtype = body.get("msgtype")
    if message.api == ob.UPDATE_CARD:
        text, _ = render_card(body.get("template_card") or {})
        return "（卡片已更新）\n" + text, None
    if msgtype == "text":
        return str(body["text"]["content"]), None
    if msgtype == "markdown":
        return str(body["markdown"]["content"]), None
    if msgtype == "textcard":
        card = body["textcard"]
        return f"【{card['title']}】\n{card['description']}", None
    if msgtype == "template_card":
        return render_card(body["template_card"])
    if message.api == ob.UPLOAD_AND_SEND_FILE:
        return f"（文件：{body.get('filename')}）", None
    return f"（{message.api} {msgtype}）", None


class ConsoleSession:
    """One user's chat with the bot, in-process."""

    def __init__(
        self, db: Database, settings: Settings, userid: str, clock: Clock | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.userid = userid
        self.clock = clock or SystemClock()
        self.worker = EventWorker(
            db,
            dispatcher(),
            settings,
            self.clock,
            owner=f"console-{secrets.token_hex(6)}",
            channel=inbound.CONSOLE,
        )
        self.xml = WeComStandIn(corp_id=settings.wecom.corp_id or "console")
        self.card: ShownCard | None = None
        self.seen: int | None = None  # the last outbox row looked at

    async def _start(self) -> list[str]:
        """What was sent before the session began is not shown again, except the last card this
        user was sent (among the latest messages), so that it can be answered here."""
        if self.seen is not None:
            return []
        async with self.db.transaction() as session:
            self.seen = await session.scalar(select(func.max(OutboxMessage.id))) or 0
            recent = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id > self.seen - 500)
                .order_by(OutboxMessage.id.desc())
            )
            for message in recent:
                text, card = render(message)
                if card is not None and self.userid in message.recipients:
                    self.card = card
                    return ["（您最近收到的卡片）\n" + text]
        return []

    async def say(self, line: str) -> list[str]:
        """Send one line; return what the bot answered this user."""
        line = line.strip()
        earlier = await self._start()
        if earlier:
            return earlier + await self.say(line)
        if line.startswith(":") and self.card is not None:
            xml = self._card_answer(line[1:].strip())
            if xml is None:
                return ["（请选择 :1 等选项，或 :b1 等按钮）"]
        else:
            xml = self.xml.text_message_xml(
                self.userid, line, secrets.randbits(62), int(self.clock.now().timestamp())
            )
        return await self._deliver(xml)

    def _card_answer(self, choice: str) -> str | None:
        card = self.card
        assert card is not None
        if choice.startswith("b") and choice[1:].isdigit():
            n = int(choice[1:])
            if not 1 <= n <= len(card.buttons):
                return None
            selected = [(card.question_key, card.chosen)] if card.question_key else []
            return self.xml.template_card_event_xml(
                self.userid,
                create_time=int(self.clock.now().timestamp()),
                event_key=card.buttons[n - 1][0],
                task_id=card.task_id,
                card_type=card.card_type,
                response_code=secrets.token_hex(16),
                selected=selected,
            )
        by_text = [n for n, (_, text) in enumerate(card.options, 1) if text == choice]
        pressed = [n for n, (_, text) in enumerate(card.buttons, 1) if text == choice]
        if pressed:
            return self._card_answer(f"b{pressed[0]}")
        if by_text:
            choice = str(by_text[0])
        picks = [p for p in choice.replace("，", ",").split(",") if p.strip().isdigit()]
        if not picks or any(not 1 <= int(p) <= len(card.options) for p in picks):
            return None
        card.chosen = [card.options[int(p) - 1][0] for p in picks]
        if len(card.buttons) == 1:  # one submit button: choosing is submitting
            return self._card_answer("b1")
        return None

    async def _deliver(self, xml: str) -> list[str]:
        env = envelope(xml)
        async with self.db.transaction() as session:
            event_id = await inbound.record(
                session,
                dedup_key=env.dedup_key,
                userid=env.user,
                kind=env.kind,
                payload=xml,
                now=self.clock.now(),
                channel=inbound.CONSOLE,
            )
        await self.worker.run_once()
        return await self._collect(event_id)

    async def _collect(self, event_id: int | None) -> list[str]:
        out: list[str] = []
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.id > (self.seen or 0))
                .order_by(OutboxMessage.id)
            )
            for message in rows.scalars():
                self.seen = max(self.seen or 0, message.id)
                text, card = render(message)
                ours = message.cause_event_id == event_id
                mine = self.userid in message.recipients
                if mine and card is not None:
                    self.card = card
                if ours and message.recipients == [self.userid]:
                    out.append(text)
                    message.status, message.sent_at = "sent", self.clock.now()
                    message.response = {"channel": "console"}
                elif mine:  # to several people with this user, or caused by someone else
                    others = [u for u in message.recipients if u != self.userid]
                    also = f"（同时发送给 {'、'.join(others)}）\n" if others else ""
                    out.append(also + text)
                elif ours:
                    who = "、".join(message.recipients) or message.body.get("chatid", "群聊")
                    out.append(f"（已排队发送给 {who}：{text[:60]}）")
        return out


async def run_console(
    db: Database,
    settings: Settings,
    userid: str,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    read: Callable[[], str] | None = None,
    clock: Clock | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    session = ConsoleSession(db, settings, userid, clock)
    print(f"以 {userid} 的身份与机器人对话。输入「帮助」开始，Ctrl-D 退出。", file=stdout)
    loop = asyncio.get_running_loop()
    while True:
        if stdin.isatty():
            print("> ", end="", file=stdout, flush=True)
        line = read() if read else await loop.run_in_executor(None, stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        for answer in await session.say(line):
            print(answer, file=stdout, flush=True)
