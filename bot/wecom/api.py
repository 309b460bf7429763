"""The async client for WeCom's server API: the one module that talks to qyapi.weixin.qq.com.

wechatpy's client is synchronous, so this is a small aiohttp client of our own. It owns the
access_token (cached, refreshed once for all concurrent callers) and the retry policy:

- 40014 / 42001 / 40001 on an API call: the token went bad (WeCom may revoke it early), so we
  drop it and try once more with a fresh one; rejected again, the call fails as transient (the
  caller retries later, as for -1).
- -1 (system busy), 45009 (frequency limit), 45033 (concurrency limit) and network failures or
  timeouts: transient, retried with exponential backoff up to ``max_attempts`` in all.
- anything else: the request itself is wrong; retrying cannot help, so it raises at once.

Secrets never reach the log: we log the API path, never the URL with its query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

# The token we sent is no longer good: fetch a new one and try again, once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# WeCom's own advice for these is "try again later".
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033})
# Refresh this long before WeCom's expiry, so a token never dies in flight.
TOKEN_MARGIN = 300.0
NETWORK_ERRCODE = -1
# WeCom's longest duplicate-check interval (4 hours).
DUPLICATE_CHECK_MAX = 4 * 3600


SEND_PATH = "/cgi-bin/message/send"


class WeComError(Exception):
    """WeCom answered with a non-zero errcode, or could not be reached (errcode -1)."""

    def __init__(
        self, errcode: int, errmsg: str, *, retryable: bool, maybe_delivered: bool = False
    ) -> None:
        super().__init__(f"WeCom errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = retryable
        # An attempt was lost in transit (timeout, reset, HTTP 5xx): WeCom may have taken it.
        self.maybe_delivered = maybe_delivered


@dataclass(frozen=True)
class SendReceipt:
    """What message/send reports: who did not get the message, and the handles to follow it up."""

    msgid: str | None
    invalid_users: list[str] = field(default_factory=list)
    invalid_parties: list[str] = field(default_factory=list)
    invalid_tags: list[str] = field(default_factory=list)
    # Only interactive template cards get one: it is the key to update_template_card (72 h, once).
    response_code: str | None = None
    unlicensed_users: list[str] = field(default_factory=list)


class _Transient(Exception):
    """One attempt failed in a way that a later attempt may not."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


class WeComClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        corp_id: str,
        secret: str,
        agent_id: int,
        api_base: str,
        max_attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        proxy: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.agent_id = agent_id
        self._http = http
        self._corp_id = corp_id
        self._secret = secret
        self._api_base = api_base.rstrip("/")
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sleep = sleep
        self._monotonic = monotonic
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()
        self._proxy = proxy or None  # [wecom] proxy: every call goes through it

    # -- access token ------------------------------------------------------------------------

    async def token(self) -> str:
        """The cached access_token, fetched anew (by one caller only) when it is near expiry."""
        cached = self._valid_token()
        if cached is not None:
            return cached
        async with self._token_lock:
            # Whoever held the lock before us may have fetched it already.
            cached = self._valid_token()
            if cached is not None:
                return cached
            params = {"corpid": self._corp_id, "corpsecret": self._secret}
            data = await self._with_retries("GET", "/cgi-bin/gettoken", params=params)
            token = str(data["access_token"])
            expires_in = float(data.get("expires_in", 7200))
            margin = min(TOKEN_MARGIN, expires_in / 2)
            self._token = token
            self._token_expires_at = self._monotonic() + expires_in - margin
            return token

    def _valid_token(self) -> str | None:
        if self._token is not None and self._monotonic() < self._token_expires_at:
            return self._token
        return None

    def _drop_token(self, token: str) -> None:
        # Only if it is still the cached one: a concurrent caller may have refreshed already.
        if self._token == token:
            self._token = None

    # -- calls -------------------------------------------------------------------------------

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        """POST to an API path with the access_token; the answer, or WeComError."""
        refreshed = lost = False
        while True:
            token = await self.token()
            query = {**(params or {}), "access_token": token}
            try:
                return await self._with_retries("POST", path, params=query, json=json, form=form)
            except WeComError as exc:
                lost = lost or exc.maybe_delivered
                if exc.errcode not in TOKEN_ERRCODES:
                    exc.maybe_delivered = lost
                    raise
                if refreshed:
                    # A fresh token rejected too: WeCom's side is unsettled, not our request.
                    self._drop_token(token)
                    raise WeComError(
                        exc.errcode, exc.errmsg, retryable=True, maybe_delivered=lost
                    ) from exc
                log.info("wecom %s: token rejected (errcode %s), refreshing", path, exc.errcode)
                self._drop_token(token)
                refreshed = True

    async def _with_retries(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any],
        json: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        attempt = 1
        lost = False  # an attempt that WeCom may have taken without our hearing the answer
        while True:
            try:
                data = await self._exchange(method, path, params=params, json=json, form=form)
            except _Transient as exc:
                errcode, errmsg, lost = exc.errcode, exc.errmsg, True
                if path == SEND_PATH and json is not None and "enable_duplicate_check" not in json:
                    # The lost attempt may have been delivered: let WeCom drop the copy (unless
                    # the caller decided about the check itself).
                    json = {**json, "enable_duplicate_check": 1}
                    json.setdefault("duplicate_check_interval", DUPLICATE_CHECK_MAX)
            else:
                errcode = int(data.get("errcode", 0))
                if errcode == 0:
                    return data
                errmsg = str(data.get("errmsg", ""))
                if errcode not in TRANSIENT_ERRCODES:
                    raise WeComError(errcode, errmsg, retryable=False, maybe_delivered=lost)
            if attempt >= self._max_attempts:
                log.warning("wecom %s failed after %d attempts: %s", path, attempt, errcode)
                raise WeComError(errcode, errmsg, retryable=True, maybe_delivered=lost)
            delay = self._backoff * 2 ** (attempt - 1)
            log.warning(
                "wecom %s: %s %s (attempt %d), retrying in %.2fs",
                path,
                errcode,
                errmsg,
                attempt,
                delay,
            )
            await self._sleep(delay)
            attempt += 1

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any],
        json: dict[str, Any] | None,
        form: aiohttp.FormData | None,
    ) -> dict[str, Any]:
        """One HTTP round trip; _Transient for anything a retry might fix."""
        try:
            async with self._http.request(
                method,
                self._api_base + path,
                params=params,
                json=json,
                data=form,
                timeout=self._timeout,
                proxy=self._proxy,
            ) as resp:
                if resp.status >= 500:
                    raise _Transient(NETWORK_ERRCODE, f"HTTP {resp.status}")
                try:
                    data = await resp.json(content_type=None)
                except ValueError as exc:
                    raise _Transient(NETWORK_ERRCODE, "answer is not JSON") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception's own text may carry the URL; its type name is enough to act on.
            raise _Transient(NETWORK_ERRCODE, type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise WeComError(NETWORK_ERRCODE, "answer is not a JSON object", retryable=False)
        return data

    # -- endpoints ---------------------------------------------------------------------------

    async def send_message(self, body: dict[str, Any]) -> SendReceipt:
        """message/send. Recipients WeCom did not accept come back in the receipt, not as errors."""
        body = {"agentid": self.agent_id, **body}
        data = await self.call(SEND_PATH, json=body)
        return SendReceipt(
            msgid=data.get("msgid") or None,
            invalid_users=_split_ids(data.get("invaliduser")),
            invalid_parties=_split_ids(data.get("invalidparty")),
            invalid_tags=_split_ids(data.get("invalidtag")),
            response_code=data.get("response_code") or None,
            unlicensed_users=_split_ids(data.get("unlicenseduser")),
        )

    async def update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {"agentid": self.agent_id, **body}
        return await self.call("/cgi-bin/message/update_template_card", json=body)

    async def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        """media/upload (temporary media, valid 3 days); returns the media_id."""
        # Unquoted UTF-8 filename, as browsers send it: WeCom shows this name to the reader,
        # and percent-quoting would show them "%E6%8A%A5...".
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("media", content, filename=filename, content_type="application/octet-stream")
        data = await self.call("/cgi-bin/media/upload", params={"type": kind}, form=form)
        return str(data["media_id"])

    async def appchat_create(
        self, name: str, owner: str, userlist: list[str], chatid: str | None = None
    ) -> str:
        body: dict[str, Any] = {"name": name, "owner": owner, "userlist": list(userlist)}
        if chatid is not None:
            body["chatid"] = chatid
        data = await self.call("/cgi-bin/appchat/create", json=body)
        return str(data["chatid"])

    async def appchat_update(
        self,
        chatid: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        name: str | None = None,
        owner: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"chatid": chatid}
        if owner is not None:
            body["owner"] = owner
        if add:
            body["add_user_list"] = list(add)
        if remove:
            body["del_user_list"] = list(remove)
        if name is not None:
            body["name"] = name
        await self.call("/cgi-bin/appchat/update", json=body)

    async def appchat_send(self, body: dict[str, Any]) -> None:
        await self.call("/cgi-bin/appchat/send", json=body)


def _split_ids(value: object) -> list[str]:
    return [part for part in str(value or "").split("|") if part]


# -- message bodies --------------------------------------------------------------------------


def _envelope(
    touser: Sequence[str],
    msgtype: str,
    payload: dict[str, Any],
    enable_duplicate_check: bool,
    duplicate_check_interval: int | None,
) -> dict[str, Any]:
    if isinstance(touser, str):
        raise TypeError("touser is a list of userids, not a string")
    if not touser:
        raise ValueError("a message needs at least one recipient")
    body: dict[str, Any] = {"touser": "|".join(touser), "msgtype": msgtype, msgtype: payload}
    if enable_duplicate_check:
        body["enable_duplicate_check"] = 1
        if duplicate_check_interval is not None:
            body["duplicate_check_interval"] = duplicate_check_interval
    return body


def text_message(
    touser: Sequence[str],
    content: str,
    *,
    enable_duplicate_check: bool = False,
    duplicate_check_interval: int | None = None,
) -> dict[str, Any]:
    return _envelope(
        touser, "text", {"content": content}, enable_duplicate_check, duplicate_check_interval
    )


def markdown_message(
    touser: Sequence[str],
    content: str,
    *,
    enable_duplicate_check: bool = False,
    duplicate_check_interval: int | None = None,
) -> dict[str, Any]:
    return _envelope(
        touser, "markdown", {"content": content}, enable_duplicate_check, duplicate_check_interval
    )


def textcard_message(
    touser: Sequence[str],
    title: str,
    description: str,
    url: str,
    btntxt: str = "详情",
    *,
    enable_duplicate_check: bool = False,
    duplicate_check_interval: int | None = None,
) -> dict[str, Any]:
    card = {"title": title, "description": description, "url": url, "btntxt": btntxt}
    return _envelope(touser, "textcard", card, enable_duplicate_check, duplicate_check_interval)


def template_card_message(
    touser: Sequence[str],
    card: dict[str, Any],
    *,
    enable_duplicate_check: bool = False,
    duplicate_check_interval: int | None = None,
) -> dict[str, Any]:
    return _envelope(
        touser, "template_card", card, enable_duplicate_check, duplicate_check_interval
    )


def appchat_message(chatid: str, message: dict[str, Any]) -> dict[str, Any]:
    """The same message addressed to a group chat (appchat/send takes chatid, not touser)."""
    msgtype = message["msgtype"]
    return {"chatid": chatid, "msgtype": msgtype, msgtype: message[msgtype]}
