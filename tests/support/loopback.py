"""Local services for tests that drive the CLI in-process (`bot.cli.main` runs its own event
loop): the WeCom stand-in on a loop of its own in a thread, and a tiny loopback HTTP proxy
that records the requests it forwards."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from bot.wecom.standin import WeComStandIn

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread; `run(coro)` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


class LoopbackProxy:
    """An HTTP forward proxy for plain http:// targets: records each request line it receives
    (absolute-form, "GET http://host:port/path?query HTTP/1.1") and relays it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode("ascii").split(" ")
            self.requests.append(f"{method} {target}")
            hostport, _, path = target.removeprefix("http://").partition("/")
            host, _, port = hostport.partition(":")
            headers = [
                h
                for h in rest.split(b"\r\n")
                if h and not h.lower().startswith((b"connection:", b"proxy-", b"keep-alive"))
            ]
            length = next(
                (int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length")),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
            request = f"{method} /{path} {version}\r\n".encode() + b"\r\n".join(headers)
            up_writer.write(request + b"\r\nConnection: close\r\n\r\n" + body)
            await up_writer.drain()
            writer.write(await up_reader.read())
            up_writer.close()
            await writer.drain()
        finally:
            writer.close()


@contextlib.contextmanager
def standin_in_thread(**options: Any) -> Iterator[tuple[WeComStandIn, str, LoopbackProxy, str]]:
    """The WeCom stand-in and a proxy in front of it, served from a thread: (stand-in, its
    api_base, proxy, proxy URL)."""
    loop = LoopThread()
    wecom = WeComStandIn(**options)
    proxy = LoopbackProxy()
    try:
        api_base = loop.run(wecom.start)
        proxy_url = loop.run(proxy.start)
        yield wecom, api_base, proxy, proxy_url
    finally:
        loop.run(proxy.stop)
        loop.run(wecom.stop)
        loop.close()
