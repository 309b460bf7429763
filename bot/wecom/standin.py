"""A local WeCom for tests and the demo: WeCom's endpoints, JSON shapes and error codes, over HTTP.
One cohesive thing (~800 lines): a fake of one external service, both directions.

It plays both directions. Towards the bot's API client it answers gettoken, message/send,
update_template_card, media/upload and appchat/*, validating what WeCom validates and keeping
what it "delivered" for tests to inspect. It also behaves as WeCom does where that is easy to get
wrong: past 30 messages a minute to one member the rest are silently dropped (errcode 0), counted
when a message arrives (``latency`` after the client sent it), and ``enable_duplicate_check``
suppresses a message identical to one delivered within the interval. WeCom's documentation says
"同样内容（请求json）的消息" and no more: ``duplicate_compare`` picks the reading, "content" (the
default, the pessimistic one: what WeCom defines of the message, keys it does not know such as
our ``outbox_id`` ignored) or "json" (the whole request). Faults are injected before WeCom takes
a request or ``after`` it did (the answer then lost or late), optionally for one recipient only.
Towards the bot's callback URL it sends
encrypted, signed callbacks exactly as WeCom does.

Error codes marked "confirmed" are in WeCom's global error-code list (developer.work.weixin.qq.com
/document/path/90313, as mirrored in public SDKs) with the meaning used here; "chosen" ones are
plausible picks where no public source says which code WeCom uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.wecom.crypto import WeComCrypto, callback_body

# A valid 43-character EncodingAESKey (base64 of 32 bytes), fixed so sealed fixtures are stable.
DEFAULT_AES_KEY = "c2h1YW5nc3VpamkgV2VDb20gc3RhbmQtaW4ga2V5ISE"

# Confirmed codes.
SYSTEM_BUSY = -1
INVALID_SECRET = 40001
INVALID_MEDIA_TYPE = 40005
INVALID_FILE_SIZE = 40006
INVALID_MEDIA_ID = 40007
INVALID_MSGTYPE = 40008
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
INVALID_AGENTID = 40056
INVALID_PARAMETER = 40058
EMPTY_PARAMETER = 40063
MISSING_TOKEN = 41001
MISSING_CORPID = 41002
MISSING_SECRET = 41004
MISSING_MEDIA_ID = 41006
MISSING_URL = 41010
MISSING_AGENTID = 41011
MISSING_TITLE = 41016
MISSING_DESCRIPTION = 41033
TOKEN_EXPIRED = 42001
EMPTY_MEDIA = 44001
EMPTY_TEXT = 44004
CONTENT_TOO_LONG = 45002
ALL_RECIPIENTS_INVALID = 81013
NO_RECIPIENTS = 82001
INVALID_CHATID = 86001
CHATID_NOT_FOUND = 86003
CHAT_SIZE = 86006
OWNER_NOT_MEMBER = 86207
CHATID_TAKEN = 86215
INVALID_CHAT_MEMBER = 86216
CHATID_REQUIRED = 86201
CHAT_MEMBERS_REQUIRED = 86204
# Chosen: WeCom's answers for a bad, spent or expired response_code, a reused task_id and a
# malformed JSON body are not in any public source we found; the generic "invalid parameter"
# (40058) is the closest confirmed meaning.
BAD_RESPONSE_CODE = INVALID_PARAMETER
TASK_ID_TAKEN = INVALID_PARAMETER
BAD_JSON = INVALID_PARAMETER

ERRMSG = {
    SYSTEM_BUSY: "system busy",
    INVALID_SECRET: "invalid credential",
    INVALID_MEDIA_TYPE: "invalid media type",
    INVALID_FILE_SIZE: "invalid file size",
    INVALID_MEDIA_ID: "invalid media_id",
    INVALID_MSGTYPE: "invalid message type",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    INVALID_AGENTID: "invalid agentid",
    INVALID_PARAMETER: "invalid parameter",
    EMPTY_PARAMETER: "parameter is empty",
    MISSING_TOKEN: "access_token missing",
    MISSING_CORPID: "corpid missing",
    MISSING_SECRET: "corpsecret missing",
    MISSING_MEDIA_ID: "media_id missing",
    MISSING_URL: "url missing",
    MISSING_AGENTID: "agentid missing",
    MISSING_TITLE: "title missing",
    MISSING_DESCRIPTION: "description missing",
    TOKEN_EXPIRED: "access_token expired",
    EMPTY_MEDIA: "empty media data",
    EMPTY_TEXT: "empty content",
    CONTENT_TOO_LONG: "content size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    ALL_RECIPIENTS_INVALID: "user & party & tag all invalid",
    NO_RECIPIENTS: "user & party & tag all empty",
    INVALID_CHATID: "invalid chatid",
    CHATID_NOT_FOUND: "chatid not found",
    CHAT_SIZE: "chat member count out of range",
    OWNER_NOT_MEMBER: "owner not in member list",
    CHATID_TAKEN: "chatid already exists",
    INVALID_CHAT_MEMBER: "invalid chat member",
    CHATID_REQUIRED: "chatid required",
    CHAT_MEMBERS_REQUIRED: "userlist required",
}

# Types the stand-in checks the content of; others are refused (40008), so that a test cannot
# pass on a message shape nothing ever validated.
MESSAGE_TYPES = frozenset({"text", "markdown", "textcard", "template_card", "file"})
APPCHAT_TYPES = frozenset({"text", "markdown", "textcard", "file"})  # no template cards in chats
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
# Cards a user can act on: only these get a response_code and need a task_id.
INTERACTIVE_CARD_TYPES = frozenset(
    {"button_interaction", "vote_interaction", "multiple_interaction"}
)
TEXT_LIMIT_BYTES = 2048
MEDIA_LIMITS = {"file": 20 << 20, "image": 10 << 20, "voice": 2 << 20, "video": 10 << 20}
MEDIA_MIN_BYTES = 5  # WeCom requires every upload to be larger than 5 bytes
RATE_LIMIT = 30  # messages per member per minute; WeCom drops the rest without an error
RATE_WINDOW = 60.0
RESPONSE_CODE_TTL = 72 * 3600.0
DUPLICATE_INTERVAL_DEFAULT = 1800
DUPLICATE_INTERVAL_MAX = 4 * 3600
CHATID_PATTERN = re.compile(r"[0-9A-Za-z]{1,32}")


@dataclass
class Received:
    """One API request as the stand-in saw it, and the errcode it answered (None: connection cut
    or abandoned after the client gave up)."""

    path: str
    body: dict[str, Any]
    at: float
    errcode: int | None = 0


@dataclass(frozen=True)
class Delivery:
    """One message to one member (userid "@all" when sent to everyone and members are unknown)."""

    userid: str
    msgid: str
    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class UploadedMedia:
    media_id: str
    kind: str
    filename: str
    content: bytes
    at: float


@dataclass
class AppChat:
    chatid: str
    name: str
    owner: str
    members: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Failure:
    errcode: int | None
    delay: float
    drop_connection: bool
    hold: asyncio.Event | None = None  # wait until it is set (a test's release), like delay
    http_status: int | None = None  # answer with this HTTP status instead of WeCom's JSON
    to: str | None = None  # only message/send requests addressed to this member
    after: bool = False  # WeCom takes the request first; the failure hits the answer


# What WeCom defines of a message/send request: the "content" reading of the duplicate check
# compares these and ignores anything else in the JSON.
SEND_KEYS = (
    frozenset({"touser", "toparty", "totag", "msgtype", "agentid", "safe", "enable_id_trans"})
    | MESSAGE_TYPES
)


@dataclass
class _ResponseCode:
    issued_at: float
    used: bool = False


class _Refused(Exception):
    """Answer the request with this errcode."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


class WeComStandIn:
    def __init__(
        self,
        *,
        corp_id: str = "ww_standin_corp",
        secret: str = "standin-secret",
        agent_id: int = 1000002,
        token: str = "standintoken",
        encoding_aes_key: str = DEFAULT_AES_KEY,
        token_ttl: int = 7200,
        known_users: set[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.token_ttl = token_ttl
        # None: every userid is a member. Matching is case-insensitive, as in WeCom.
        self.known_users = known_users
        self.crypto = WeComCrypto(token, encoding_aes_key, corp_id)
        self.received: list[Received] = []
        self.deliveries: list[Delivery] = []
        self.dropped: list[Delivery] = []  # over the per-member rate limit
        self.duplicates: list[dict[str, Any]] = []  # suppressed by enable_duplicate_check
        self.card_updates: list[dict[str, Any]] = []
        self.media: dict[str, UploadedMedia] = {}
        self.chats: dict[str, AppChat] = {}
        self._clock = clock
        self._tokens: dict[str, float] = {}  # access_token -> expiry on self._clock
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._recent: dict[str, deque[float]] = defaultdict(deque)  # member -> delivery times
        self._sent_bodies: dict[str, tuple[float, str, str | None]] = {}  # for duplicate check
        self._response_codes: dict[str, _ResponseCode] = {}
        self._task_ids: set[str] = set()
        # Seconds between the client sending a request and WeCom stamping its arrival.
        self.latency = 0.0
        self.duplicate_compare = "content"
        # Faults drawn at random per request (bench/chaos.py): see chaos().
        self._chaos: dict[str, tuple[float, Callable[[], float], list[list[_Failure]]]] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        self.app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        json_endpoints = {
            "/cgi-bin/message/send": self._message_send,
            "/cgi-bin/message/update_template_card": self._update_template_card,
            "/cgi-bin/appchat/create": self._appchat_create,
            "/cgi-bin/appchat/update": self._appchat_update,
            "/cgi-bin/appchat/send": self._appchat_send,
        }
        for path, answer in json_endpoints.items():
            self.app.router.add_post(path, self._json_endpoint(path, answer))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port); returns the base URL for WeComClient."""
        # A short shutdown timeout: a request held by inject(delay=...) must not hold up stop().
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        return f"http://{host}:{bound_port}"

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- test controls -----------------------------------------------------------------------

    def inject(
        self,
        path: str,
        *,
        errcode: int | None = None,
        delay: float = 0.0,
        drop_connection: bool = False,
        times: int = 1,
        hold: asyncio.Event | None = None,
        http_status: int | None = None,
        to: str | None = None,
        after: bool = False,
    ) -> None:
        """Make the next ``times`` calls to ``path`` (addressed to ``to``, if given) fail: wait
        ``delay`` seconds first (or until ``hold`` is set), then cut the connection, answer
        ``http_status`` or ``errcode``; a delay alone only slows the call down. ``after``: WeCom
        handles the request first (the message is delivered) and the failure hits the answer."""
        if (
            errcode is None
            and http_status is None
            and not drop_connection
            and delay <= 0
            and hold is None
        ):
            raise ValueError("inject needs an errcode, a status, a delay, a hold or a drop")
        failure = _Failure(errcode, delay, drop_connection, hold, http_status, to, after)
        self._failures[path].extend([failure] * times)

    def chaos(
        self,
        path: str,
        rate: float,
        faults: Sequence[Sequence[dict[str, Any]]],
        random: Callable[[], float],
    ) -> None:
        """Fault a share ``rate`` of the calls to ``path`` at random (``random()`` in [0, 1)):
        each faulted call gets one of ``faults``, a run of ``inject`` keyword sets applied to
        that call and the ones after it (e.g. 42001 then 40014: two token errors in a row)."""
        runs = [[_Failure(**_failure_fields(f)) for f in run] for run in faults]
        self._chaos[path] = (rate, random, runs)

    def expire_tokens(self) -> None:
        """Expire every token issued so far, as WeCom may do early: the next call gets 42001."""
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def serve_env(self, api_base: str) -> dict[str, str]:
        """The environment that points a `shuangsuiji serve` process at this stand-in (its
        credentials and `api_base`, its address), over this process's own."""
        return {
            **os.environ,
            "SHUANGSUIJI_WECOM__CORP_ID": self.corp_id,
            "SHUANGSUIJI_WECOM__AGENT_ID": str(self.agent_id),
            "SHUANGSUIJI_WECOM__SECRET": self.secret,
            "SHUANGSUIJI_WECOM__TOKEN": self.token,
            "SHUANGSUIJI_WECOM__ENCODING_AES_KEY": self.encoding_aes_key,
            "SHUANGSUIJI_WECOM__API_BASE": api_base,
        }

    def new_response_code(self) -> str:
        """A fresh response_code, as WeCom hands out with each card send and each card click."""
        code = secrets.token_urlsafe(32)
        self._response_codes[code] = _ResponseCode(issued_at=self._clock())
        return code

    def messages(self, touser: str | None = None) -> list[dict[str, Any]]:
        """Bodies of message/send calls delivered (to ``touser``, if given), each once, in order."""
        wanted = None if touser is None else touser.lower()
        seen: set[str] = set()
        bodies = []
        for delivery in self.deliveries:
            if wanted is not None and delivery.userid.lower() not in (wanted, "@all"):
                continue
            if delivery.msgid not in seen:
                seen.add(delivery.msgid)
                bodies.append(delivery.body)
        return bodies

    def texts_to(self, userid: str) -> list[str]:
        """What a member read: text and markdown content, and card titles with descriptions."""
        return [text for body in self.messages(userid) if (text := _readable(body))]

    def chat_messages(self, chatid: str) -> list[dict[str, Any]]:
        return list(self.chats[chatid].messages)

    def calls(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    # -- callbacks towards the bot -----------------------------------------------------------

    def seal_callback(
        self, inner_xml: str, timestamp: int, nonce: str | None = None
    ) -> tuple[dict[str, str], str]:
        """The query parameters and outer XML body of a callback carrying ``inner_xml``."""
        sealed = self.crypto.seal(inner_xml, str(timestamp), nonce)
        params = {k: sealed[k] for k in ("msg_signature", "timestamp", "nonce")}
        return params, callback_body(sealed["Encrypt"], self.corp_id, str(self.agent_id))

    def text_message_xml(self, from_user: str, content: str, msg_id: int, create_time: int) -> str:
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>"
            f"<MsgType>{_cdata('text')}</MsgType>"
            f"<Content>{_cdata(content)}</Content>"
            f"<MsgId>{msg_id}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def template_card_event_xml(
        self,
        from_user: str,
        *,
        create_time: int,
        event_key: str,
        task_id: str,
        card_type: str,
        response_code: str,
        selected: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> str:
        """A click on a template card. Its response_code becomes valid for update_template_card,
        as a real click's does."""
        self._response_codes.setdefault(response_code, _ResponseCode(issued_at=self._clock()))
        items = "".join(
            f"<SelectedItem><QuestionKey>{_cdata(key)}</QuestionKey><OptionIds>"
            + "".join(f"<OptionId>{_cdata(option)}</OptionId>" for option in options)
            + "</OptionIds></SelectedItem>"
            for key, options in selected
        )
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>"
            f"<MsgType>{_cdata('event')}</MsgType>"
            f"<Event>{_cdata('template_card_event')}</Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey>"
            f"<TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata(card_type)}</CardType>"
            f"<ResponseCode>{_cdata(response_code)}</ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID>"
            + (f"<SelectedItems>{items}</SelectedItems>" if selected else "")
            + "</xml>"
        )

    def enter_agent_event_xml(self, from_user: str, create_time: int) -> str:
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>"
            f"<MsgType>{_cdata('event')}</MsgType>"
            f"<Event>{_cdata('enter_agent')}</Event>"
            f"<EventKey>{_cdata('')}</EventKey>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    async def post_callback(
        self, url: str, inner_xml: str, *, timestamp: int | None = None
    ) -> tuple[int, str]:
        """Seal ``inner_xml`` and POST it to the bot's callback URL; (status, body text)."""
        ts = int(self._clock()) if timestamp is None else timestamp
        params, body = self.seal_callback(inner_xml, ts)
        async with self._http().post(
            url, params=params, data=body.encode(), headers={"Content-Type": "text/xml"}
        ) as resp:
            return resp.status, await resp.text()

    async def verify_url(self, url: str, echo: str, timestamp: int) -> tuple[int, str]:
        """WeCom's URL verification: GET with an encrypted, signed echostr; the bot must answer
        the plain ``echo``."""
        sealed = self.crypto.seal(echo, str(timestamp))
        params = {
            "msg_signature": sealed["msg_signature"],
            "timestamp": sealed["timestamp"],
            "nonce": sealed["nonce"],
            "echostr": sealed["Encrypt"],
        }
        async with self._http().get(url, params=params) as resp:
            return resp.status, await resp.text()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- request plumbing --------------------------------------------------------------------

    def _next_failure(self, path: str, touser: object = None) -> _Failure | None:
        queue = self._failures.get(path)
        if not queue and path in self._chaos:
            rate, random, runs = self._chaos[path]
            if random() < rate:
                self._failures[path].extend(runs[int(random() * len(runs))])
                queue = self._failures[path]
        if not queue:
            return None
        members = {u.lower() for u in _split(touser)}
        for i, failure in enumerate(queue):
            if failure.to is None or failure.to.lower() in members:
                del queue[i]
                return failure
        return None

    async def _fail_if_injected(self, request: web.Request, path: str) -> web.Response | None:
        failure = self._next_failure(path)
        return None if failure is None else await self._fail(request, path, failure)

    async def _fail(
        self, request: web.Request, path: str, failure: _Failure, *, taken: bool = False
    ) -> web.Response | None:
        """Apply an injected failure; None when it only slowed the call down. ``taken``: the
        request was handled and recorded already."""
        if failure.delay > 0 or failure.hold is not None:
            await asyncio.sleep(failure.delay)
            if failure.hold is not None:
                await failure.hold.wait()
            transport = request.transport
            if transport is None or transport.is_closing():
                # The client gave up waiting (before: nothing was processed).
                if not taken:
                    self._record(path, {}, None)
                return web.Response(status=499)
        if failure.drop_connection:
            if not taken:
                self._record(path, {}, None)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        if failure.http_status is not None:
            if not taken:
                self._record(path, {}, None)
            return web.Response(status=failure.http_status, text="Internal Server Error")
        if failure.errcode is not None:
            return self._answer(path, {}, _error(failure.errcode))
        return None

    def _token_error(self, request: web.Request) -> int | None:
        token = request.query.get("access_token")
        if not token:
            return MISSING_TOKEN
        expires_at = self._tokens.get(token)
        if expires_at is None:
            return INVALID_TOKEN
        if self._clock() >= expires_at:
            return TOKEN_EXPIRED
        return None

    def _record(self, path: str, body: dict[str, Any], errcode: int | None) -> None:
        self.received.append(Received(path=path, body=body, at=self._clock(), errcode=errcode))

    def _answer(self, path: str, body: dict[str, Any], result: dict[str, Any]) -> web.Response:
        self._record(path, body, int(result["errcode"]))
        return web.json_response(result, dumps=_dumps)

    def _json_endpoint(
        self, path: str, answer: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = json.loads(await request.text())
            except ValueError:
                body = None
            recorded = body if isinstance(body, dict) else {}
            failure = self._next_failure(path, recorded.get("touser"))
            if failure is not None and not failure.after:
                failed = await self._fail(request, path, failure)
                if failed is not None:
                    return failed
            answered = self._handle_json(path, answer, request, body, recorded)
            if failure is not None and failure.after:
                failed = await self._fail(request, path, failure, taken=True)
                if failed is not None:
                    return failed
            return answered

        return handler

    def _handle_json(
        self,
        path: str,
        answer: Callable[[dict[str, Any]], dict[str, Any]],
        request: web.Request,
        body: object,
        recorded: dict[str, Any],
    ) -> web.Response:
        token_error = self._token_error(request)
        if token_error is not None:
            return self._answer(path, recorded, _error(token_error))
        if not isinstance(body, dict):
            return self._answer(path, recorded, _error(BAD_JSON, "wrong json format"))
        try:
            result = answer(body)
        except _Refused as refused:
            result = _error(refused.errcode, refused.errmsg)
        return self._answer(path, body, result)

    # -- endpoints ---------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/gettoken"
        injected = await self._fail_if_injected(request, path)
        if injected is not None:
            return injected
        corpid = request.query.get("corpid", "")
        secret = request.query.get("corpsecret", "")
        recorded = {"corpid": corpid}  # never the secret
        for errcode, failed in (
            (MISSING_CORPID, not corpid),
            (INVALID_CORPID, corpid != self.corp_id),
            (MISSING_SECRET, not secret),
            (INVALID_SECRET, secret != self.secret),
        ):
            if failed:
                return self._answer(path, recorded, _error(errcode))
        now = self._clock()
        # Within its lifetime WeCom hands out the same token again.
        current = [(t, exp) for t, exp in self._tokens.items() if exp > now]
        if current:
            token, expires_at = max(current, key=lambda item: item[1])
        else:
            token, expires_at = secrets.token_urlsafe(48), now + self.token_ttl
            self._tokens[token] = expires_at
        result = {
            "errcode": 0,
            "errmsg": "ok",
            "access_token": token,
            "expires_in": int(expires_at - now),
        }
        return self._answer(path, recorded, result)

    def _message_send(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_agent(body)
        msgtype = body.get("msgtype")
        if msgtype not in MESSAGE_TYPES:
            raise _Refused(INVALID_MSGTYPE)
        users = _split(body.get("touser"))
        parties = _split(body.get("toparty"))
        tags = _split(body.get("totag"))
        if not (users or parties or tags):
            raise _Refused(NO_RECIPIENTS)
        self._check_content(msgtype, body.get(msgtype))
        valid, invalid = self._resolve_users(users)
        if not valid:
            raise _Refused(ALL_RECIPIENTS_INVALID)
        # Departments and tags are not modelled: with @all WeCom ignores them; otherwise they
        # come back invalid, so that a test relying on them notices.
        unmodelled = ([], []) if "@all" in users else (parties, tags)
        now = self._clock() + self.latency  # WeCom's time of arrival
        duplicate_key = _duplicate_key(body, self.duplicate_compare)
        if str(body.get("enable_duplicate_check", 0)) == "1":
            interval = _duplicate_interval(body)
            earlier = self._sent_bodies.get(duplicate_key)
            if earlier is not None and now - earlier[0] < interval:
                # Not delivered again; we answer as for the original (WeCom's exact answer to a
                # suppressed duplicate is not documented).
                self.duplicates.append(body)
                return _send_result(invalid, *unmodelled, earlier[1], earlier[2])
        response_code = self._check_card(body) if msgtype == "template_card" else None
        msgid = secrets.token_urlsafe(24)
        # Remembered whether or not this one asked for the check: a later one may.
        self._sent_bodies[duplicate_key] = (now, msgid, response_code)
        for userid in valid:
            self._deliver(Delivery(userid=userid, msgid=msgid, body=body, at=now))
        return _send_result(invalid, *unmodelled, msgid, response_code)

    def _resolve_users(self, users: list[str]) -> tuple[list[str], list[str]]:
        """(members to deliver to, invalid userids in lower case as WeCom returns them)."""
        if "@all" in users:
            return (["@all"] if self.known_users is None else sorted(self.known_users)), []
        if self.known_users is None:
            return users, []
        known = {u.lower() for u in self.known_users}
        valid = [u for u in users if u.lower() in known]
        invalid = [u.lower() for u in users if u.lower() not in known]
        return valid, invalid

    def _deliver(self, delivery: Delivery) -> None:
        window = self._recent[delivery.userid.lower()]
        while window and delivery.at - window[0] >= RATE_WINDOW:
            window.popleft()
        if len(window) >= RATE_LIMIT:
            self.dropped.append(delivery)
            return
        window.append(delivery.at)
        self.deliveries.append(delivery)

    def _check_agent(self, body: dict[str, Any]) -> None:
        if "agentid" not in body:
            raise _Refused(MISSING_AGENTID)
        if str(body["agentid"]) != str(self.agent_id):
            raise _Refused(INVALID_AGENTID)

    def _check_content(self, msgtype: str, payload: object) -> None:
        if not isinstance(payload, dict):
            raise _Refused(EMPTY_TEXT if msgtype in ("text", "markdown") else INVALID_PARAMETER)
        if msgtype in ("text", "markdown"):
            content = payload.get("content")
            if not isinstance(content, str) or not content:
                raise _Refused(EMPTY_TEXT)
            if len(content.encode()) > TEXT_LIMIT_BYTES:
                raise _Refused(CONTENT_TOO_LONG)
        elif msgtype == "textcard":
            for key, errcode in (
                ("title", MISSING_TITLE),
                ("description", MISSING_DESCRIPTION),
                ("url", MISSING_URL),
            ):
                if not payload.get(key):
                    raise _Refused(errcode)
        elif msgtype == "file":
            media_id = payload.get("media_id")
            if not media_id:
                raise _Refused(MISSING_MEDIA_ID)
            if media_id not in self.media:
                raise _Refused(INVALID_MEDIA_ID)
        elif msgtype == "template_card" and payload.get("card_type") not in CARD_TYPES:
            raise _Refused(INVALID_PARAMETER, "invalid card_type")

    def _check_card(self, body: dict[str, Any]) -> str | None:
        """Register the card's task_id; the response_code it earns, if any."""
        card = body["template_card"]
        interactive = card["card_type"] in INTERACTIVE_CARD_TYPES
        task_id = card.get("task_id")
        if interactive and not task_id:
            raise _Refused(INVALID_PARAMETER, "task_id required")
        if task_id:
            if task_id in self._task_ids:
                raise _Refused(TASK_ID_TAKEN, "task_id already exists")
            self._task_ids.add(task_id)
        # Notices with an action_menu can be updated too, so they get a code as well.
        if interactive or "action_menu" in card:
            return self.new_response_code()
        return None

    def _update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_agent(body)
        if not any(body.get(key) for key in ("userids", "partyids", "tagids", "atall")):
            raise _Refused(NO_RECIPIENTS)
        code = body.get("response_code")
        if not code:
            raise _Refused(EMPTY_PARAMETER, "response_code missing")
        state = self._response_codes.get(code)
        if state is None:
            raise _Refused(BAD_RESPONSE_CODE, "invalid response_code")
        if state.used:
            raise _Refused(BAD_RESPONSE_CODE, "response_code already used")
        if self._clock() - state.issued_at > RESPONSE_CODE_TTL:
            raise _Refused(BAD_RESPONSE_CODE, "response_code expired")
        if "button" not in body and "template_card" not in body:
            raise _Refused(INVALID_PARAMETER, "button or template_card required")
        state.used = True
        self.card_updates.append(body)
        _, invalid = self._resolve_users([str(u) for u in body.get("userids") or []])
        return {"errcode": 0, "errmsg": "ok", "invaliduser": invalid}

    async def _media_upload(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/media/upload"
        injected = await self._fail_if_injected(request, path)
        if injected is not None:
            return injected
        kind = request.query.get("type", "")
        filename, content = await _read_media(request)
        recorded = {"type": kind, "filename": filename, "size": len(content)}
        token_error = self._token_error(request)
        if token_error is not None:
            return self._answer(path, recorded, _error(token_error))
        if kind not in MEDIA_LIMITS:
            return self._answer(path, recorded, _error(INVALID_MEDIA_TYPE))
        if not content:
            return self._answer(path, recorded, _error(EMPTY_MEDIA))
        if not MEDIA_MIN_BYTES < len(content) <= MEDIA_LIMITS[kind]:
            return self._answer(path, recorded, _error(INVALID_FILE_SIZE))
        now = self._clock()
        media_id = secrets.token_urlsafe(32)
        self.media[media_id] = UploadedMedia(media_id, kind, filename, content, now)
        result = {
            "errcode": 0,
            "errmsg": "",
            "type": kind,
            "media_id": media_id,
            "created_at": str(int(now)),
        }
        return self._answer(path, recorded, result)

    def _appchat_create(self, body: dict[str, Any]) -> dict[str, Any]:
        userlist = body.get("userlist")
        if not isinstance(userlist, list) or not userlist:
            raise _Refused(CHAT_MEMBERS_REQUIRED)
        members = [str(u) for u in userlist]
        if len(set(members)) < 2:
            raise _Refused(CHAT_SIZE)
        self._check_members(members)
        owner = str(body.get("owner") or members[0])
        if owner not in members:
            raise _Refused(OWNER_NOT_MEMBER)
        chatid = body.get("chatid")
        if chatid is None:
            chatid = secrets.token_hex(16)
        elif not isinstance(chatid, str) or not CHATID_PATTERN.fullmatch(chatid):
            raise _Refused(INVALID_CHATID)
        if chatid in self.chats:
            raise _Refused(CHATID_TAKEN)
        name = str(body.get("name") or "")[:50]
        self.chats[chatid] = AppChat(chatid=chatid, name=name, owner=owner, members=members)
        return {"errcode": 0, "errmsg": "ok", "chatid": chatid}

    def _appchat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(body)
        add = [str(u) for u in body.get("add_user_list") or []]
        remove = [str(u) for u in body.get("del_user_list") or []]
        self._check_members(add)
        if any(u not in chat.members for u in remove):
            raise _Refused(INVALID_CHAT_MEMBER)
        members = [u for u in chat.members if u not in remove]
        members += [u for u in add if u not in members]
        owner = str(body.get("owner") or chat.owner)
        if owner not in members:
            raise _Refused(OWNER_NOT_MEMBER)
        chat.members, chat.owner = members, owner
        if body.get("name"):
            chat.name = str(body["name"])[:50]
        return {"errcode": 0, "errmsg": "ok"}

    def _appchat_send(self, body: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(body)
        msgtype = body.get("msgtype")
        if msgtype not in APPCHAT_TYPES:
            raise _Refused(INVALID_MSGTYPE)
        self._check_content(msgtype, body.get(msgtype))
        chat.messages.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _chat(self, body: dict[str, Any]) -> AppChat:
        chatid = body.get("chatid")
        if not chatid:
            raise _Refused(CHATID_REQUIRED)
        chat = self.chats.get(str(chatid))
        if chat is None:
            raise _Refused(CHATID_NOT_FOUND)
        return chat

    def _check_members(self, userids: list[str]) -> None:
        if self.known_users is None:
            return
        known = {u.lower() for u in self.known_users}
        if any(u.lower() not in known for u in userids):
            raise _Refused(INVALID_CHAT_MEMBER)


async def _read_media(request: web.Request) -> tuple[str, bytes]:
    """The filename and bytes of the multipart field "media" (empty when there is none)."""
    if not request.content_type.startswith("multipart/"):
        return "", b""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, aiohttp.BodyPartReader) and part.name == "media":
            return part.filename or "", bytes(await part.read())
    return "", b""


def _send_result(
    invalid_users: list[str],
    invalid_parties: list[str],
    invalid_tags: list[str],
    msgid: str,
    response_code: str | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "errcode": 0,
        "errmsg": "ok",
        "invaliduser": "|".join(invalid_users),
        "invalidparty": "|".join(invalid_parties),
        "invalidtag": "|".join(invalid_tags),
        "unlicenseduser": "",
        "msgid": msgid,
    }
    if response_code is not None:
        result["response_code"] = response_code
    return result


def _failure_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    fields = {"errcode": None, "delay": 0.0, "drop_connection": False}
    return {**fields, **kwargs}


def _error(errcode: int, errmsg: str | None = None) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error")}


def _split(value: object) -> list[str]:
    return [part for part in str(value or "").split("|") if part]


def _duplicate_key(body: dict[str, Any], compare: str) -> str:
    """ "The same content (request JSON)", recipients included: the whole body ("json"), or only
    what WeCom defines of a message ("content")."""
    if compare == "content":
        body = {k: v for k, v in body.items() if k in SEND_KEYS}
    else:
        body = {
            k: v
            for k, v in body.items()
            if k not in ("enable_duplicate_check", "duplicate_check_interval")
        }
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def _duplicate_interval(body: dict[str, Any]) -> int:
    try:
        interval = int(body.get("duplicate_check_interval", DUPLICATE_INTERVAL_DEFAULT))
    except (TypeError, ValueError):
        raise _Refused(INVALID_PARAMETER, "invalid duplicate_check_interval") from None
    return min(interval, DUPLICATE_INTERVAL_MAX)


def _readable(body: dict[str, Any]) -> str:
    msgtype = body.get("msgtype")
    payload = body.get(str(msgtype)) or {}
    if msgtype in ("text", "markdown"):
        return str(payload.get("content", ""))
    if msgtype == "textcard":
        return f"{payload.get('title', '')}\n{payload.get('description', '')}"
    if msgtype == "template_card":
        main = payload.get("main_title") or {}
        parts = [main.get("title"), main.get("desc"), payload.get("sub_title_text")]
        return "\n".join(str(p) for p in parts if p)
    return ""


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
