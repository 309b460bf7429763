"""A TCP proxy on loopback in front of a database that can be switched to fail like a network.

- ``forward``: bytes pass both ways;
- ``black_hole``: connections are accepted and bytes are swallowed, never answered (packets go
  nowhere: the client waits until its own timeout);
- ``refuse``: new connections are closed at once (the port answers, the server does not).

``restore`` closes every connection opened or starved under a fault, as a rebooted server or a
healed network would, and forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "forward"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def black_hole(self) -> None:
        self.mode = "black_hole"

    def refuse(self) -> None:
        self.mode = "refuse"
        self._close_all()

    def restore(self) -> None:
        self._close_all()
        self.mode = "forward"

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self._close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode == "black_hole":
            await self._swallow(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for w in (writer, up_writer):
            w.transport.abort()
            self._writers.discard(w)

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.mode == "black_hole":
                    continue  # swallowed: the other side waits for an answer that never comes
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
