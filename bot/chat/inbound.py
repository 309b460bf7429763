"""What a user sent, typed: parsed safely from the decrypted XML, deduplicated, and given both
as typed (what is stored) and folded (what is parsed)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import BaseModel, Field, ValidationError

from bot.wecom.crypto import parse_standard_message

TEMPLATE_CARD_EVENT = "template_card_event"


class PayloadError(ValueError):
    """The XML is malformed, dangerous (DTD/entities) or lacks what WeCom always sends."""


def safe_xml(xml: str) -> Element:
    """Parse with DTDs, entity expansion and external entities refused."""
    try:
        return SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise PayloadError(f"unsafe or malformed XML: {type(exc).__name__}") from exc


def normalise(text: str) -> str:
    """The folded view for parsing: NFKC (full-width digits, letters and spaces become ASCII),
    trimmed, spaces folded. Never what is stored of a person's free text."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).strip()


class SelectedItem(BaseModel):
    question_key: str = Field(alias="QuestionKey")
    option_ids: list[str] = Field(default_factory=list, alias="OptionIds")


class TemplateCardEventModel(BaseModel):
    """WeCom's template_card_event, which wechatpy does not know."""

    to_user: str = Field(alias="ToUserName")
    from_user: str = Field(alias="FromUserName", min_length=1)
    create_time: int = Field(alias="CreateTime")
    event_key: str = Field(default="", alias="EventKey")
    task_id: str = Field(default="", alias="TaskId")
    card_type: str = Field(default="", alias="CardType")
    response_code: str = Field(default="", alias="ResponseCode")
    agent_id: int | None = Field(default=None, alias="AgentID")
    selected_items: list[SelectedItem] = Field(default_factory=list, alias="SelectedItems")


def _text(node: Element, tag: str) -> str | None:
    child = node.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _card_event_fields(root: Element) -> dict[str, Any]:
    data: dict[str, Any] = {
        child.tag: (child.text or "").strip() for child in root if len(child) == 0
    }
    items = []
    for item in root.iterfind("SelectedItems/SelectedItem"):
        options = [(o.text or "").strip() for o in item.iterfind("OptionIds/OptionId")]
        items.append({"QuestionKey": _text(item, "QuestionKey") or "", "OptionIds": options})
    data["SelectedItems"] = items  # always a list, even for one item
    return data


@dataclass(frozen=True)
class TextCommand:
    """``text`` is folded (``normalise``) for parsing command words, numbers and codes; ``raw``
    is what the person typed (trimmed), which is what descriptions, reasons and record
    numbers are stored as."""

    user: str
    text: str
    msg_id: str
    create_time: int
    raw: str | None = None  # None: typed exactly as folded
    # The whole message, when this is a command's argument text (the router took the command
    # word off): a description that merely began with a command word is stored from it.
    whole: TextCommand | None = None

    @property
    def typed(self) -> str:
        return self.text if self.raw is None else self.raw

    def typed_after(self, consumed: str) -> str:
        """What was typed after the part whose folded form is ``consumed`` (a prefix of
        ``text``: the command word, an inspection number), exactly as typed, trimmed."""
        raw = self.typed
        for i in range(len(raw) + 1):
            if normalise(raw[:i]) == consumed:
                return raw[i:].strip()
        return self.text.removeprefix(consumed).strip()  # not a prefix as typed: the folded rest

    def typed_after_words(self, n: int) -> str:
        """What was typed after the first ``n`` words, exactly as typed."""
        return self.typed_after(" ".join(self.text.split(" ")[:n]))

    def words(self) -> list[Word]:
        """The typed words (split at any whitespace, full-width spaces too), each with its
        folded form for parsing and its place in ``typed``."""
        return [
            Word(normalise(m.group()), m.group(), m.start(), m.end())
            for m in _WORD.finditer(self.typed)
        ]

    def typed_span(self, words: list[Word]) -> str:
        """The typed text of ``words`` (consecutive words keep what was typed between them;
        a gap, such as an option typed in between, becomes one space)."""
        parts: list[str] = []
        for i, w in enumerate(words):
            if i:
                prev = words[i - 1]
                between = self.typed[prev.end : w.start]
                parts.append(between if _WORD.search(between) is None else " ")
            parts.append(w.typed)
        return "".join(parts)


_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """One typed word: ``folded`` is what is parsed, ``typed`` what is stored."""

    folded: str
    typed: str
    start: int
    end: int

    def option(self) -> tuple[str, str, str] | None:
        """``键=值`` (``＝`` too): (folded key, folded value, value as typed); None otherwise."""
        key, sep, value = self.folded.partition("=")
        if not sep:
            return None
        for i in range(1, len(self.typed) + 1):
            if normalise(self.typed[:i]) == key + "=":
                return key, value, self.typed[i:]
        return key, value, value


@dataclass(frozen=True)
class CardEvent:
    user: str
    create_time: int
    event_key: str
    task_id: str
    card_type: str
    response_code: str
    selected: tuple[SelectedItem, ...] = ()

    def options(self, question_key: str) -> list[str]:
        for item in self.selected:
            if item.question_key == question_key:
                return item.option_ids
        return []


@dataclass(frozen=True)
class OtherEvent:
    user: str
    create_time: int
    kind: str  # e.g. "event:enter_agent", "image"
    raw: dict[str, str] = field(default_factory=dict)


Inbound = TextCommand | CardEvent | OtherEvent


@dataclass(frozen=True)
class Envelope:
    """What the endpoint needs before queueing: who, what kind, and the durable key."""

    user: str
    kind: str
    dedup_key: str


def envelope(xml: str) -> Envelope:
    root = safe_xml(xml)
    user = _text(root, "FromUserName")
    msg_type = (_text(root, "MsgType") or "").lower()
    create_time = _text(root, "CreateTime") or ""
    if not user or not msg_type or not create_time.isdigit():
        raise PayloadError("FromUserName, MsgType and CreateTime are required")
    if msg_type == "event":
        event = (_text(root, "Event") or "").lower()
        identity = ":".join(
            _text(root, tag) or "" for tag in ("EventKey", "TaskId", "ResponseCode", "ChangeType")
        )
        return Envelope(user, f"event:{event}", f"evt:{user}:{create_time}:{event}:{identity}")
    msg_id = _text(root, "MsgId")
    if not msg_id:
        raise PayloadError("MsgId is required for a message")
    return Envelope(user, msg_type, f"msg:{msg_id}")


def _number(root: Element, tag: str) -> int:
    try:
        return int(_text(root, tag) or 0)
    except ValueError as exc:
        raise PayloadError(f"{tag} is not a number") from exc


def _text_command(root: Element) -> TextCommand:
    """A text message, read from the tree already parsed: what wechatpy's parser gives for it
    (whitespace-trimmed values, MsgId and CreateTime as integers), without parsing the XML a
    second time (the worker's most common event)."""
    content = _text(root, "Content") or ""
    return TextCommand(
        user=_text(root, "FromUserName") or "",
        text=normalise(content),
        msg_id=str(_number(root, "MsgId")),
        create_time=_number(root, "CreateTime"),
        raw=content,
    )


def parse(xml: str) -> Inbound:
    """Typed message from a decrypted payload (already checked by `envelope`)."""
    root = safe_xml(xml)
    msg_type = (_text(root, "MsgType") or "").lower()
    event = (_text(root, "Event") or "").lower()
    if msg_type == "event" and event == TEMPLATE_CARD_EVENT:
        try:
            model = TemplateCardEventModel.model_validate(_card_event_fields(root))
        except ValidationError as exc:
            raise PayloadError(f"bad template_card_event: {exc.errors()[0]['loc']}") from exc
        return CardEvent(
            user=model.from_user,
            create_time=model.create_time,
            event_key=model.event_key,
            task_id=model.task_id,
            card_type=model.card_type,
            response_code=model.response_code,
            selected=tuple(model.selected_items),
        )
    if msg_type == "text":
        return _text_command(root)
    message = parse_standard_message(xml)
    user = str(message.source or "")
    create_time = int(message.time or 0)
    raw = {child.tag: (child.text or "") for child in root if len(child) == 0}
    kind = f"event:{event}" if msg_type == "event" else msg_type
    return OtherEvent(user=user, create_time=create_time, kind=kind, raw=raw)
