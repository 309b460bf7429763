"""A text message is read from the tree the safe parser already built, not parsed a second time
by wechatpy: the command is what wechatpy's parser gives for the same XML."""

from __future__ import annotations

import pytest

from bot.chat.inbound import PayloadError, TextCommand, normalise, parse
from bot.wecom.crypto import parse_standard_message


def _xml(content: str, msg_id: str = "7001", create_time: str = "1764464400") -> str:
    return (
        "<xml><ToUserName><![CDATA[corp]]></ToUserName>"
        "<FromUserName><![CDATA[ZhangSan]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
        "<AgentID>1000002</AgentID></xml>"
    )


def _as_wechatpy_reads_it(xml: str) -> TextCommand:
    message = parse_standard_message(xml)
    return TextCommand(
        user=str(message.source or ""),
        text=normalise(str(message.content or "")),
        msg_id=str(message.id),
        create_time=int(message.time or 0),
        raw=str(message.content or "").strip(),
    )


@pytest.mark.parametrize(
    ("content", "msg_id"),
    [
        ("帮助", "7001"),
        ("  结果　２０２６０１  发现问题\n已责令整改  ", "7002"),
        ("", "7003"),
        ("<&>\"'😀", "0042"),
        ("登记\t示例化工有限公司\r\n第二行", "+17"),
    ],
)
def test_a_text_message_parses_as_wechatpy_reads_it(content: str, msg_id: str) -> None:
    xml = _xml(content, msg_id)
    assert parse(xml) == _as_wechatpy_reads_it(xml)


def test_a_text_message_without_content_or_id_parses_as_wechatpy_reads_it() -> None:
    xml = (
        "<xml><FromUserName>u1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType></xml>"
    )
    assert parse(xml) == _as_wechatpy_reads_it(xml) == TextCommand("u1", "", "0", 1, "")


def test_a_message_id_that_is_no_number_is_a_payload_error_not_a_crash() -> None:
    with pytest.raises(PayloadError):
        parse(_xml("帮助", msg_id="abc"))
