"""The all-in-one `serve` as two processes: this one acknowledges (HTTP), a child handles.

One Python process runs on one core at a time (the GIL), and the acknowledgement waits for
whatever else its event loop runs: with the worker and the sender beside it, an acknowledgement
waited behind their work (ack p99 65-105 ms at 200 events/s against 2.5 ms for the bare
endpoint). So `serve` (role all) runs the ingress here and starts `serve --role worker` as a
child with the same configuration: the worker, the sender and the due actions run there, on the
other core.

The supervisor restarts the child when it dies (after `delay`, doubling while it keeps dying
young, up to `max_delay`), and stops it on shutdown. Nothing is lost meanwhile: the ingress
records every acknowledged event durably, and a restarted worker (or its heartbeat's expiry of a
dead one's leases) takes up whatever was claimed and not done. The child is told the
supervisor's pid, and dies with it (`die_with_parent`; it also stops when the wake pipe's write
end closes), so a killed `serve` leaves no worker behind holding the database's worker lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A child that ran at least this long was healthy: its next restart starts at the first delay.
HEALTHY_AFTER = 60.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class ChildSupervisor:
    """Runs `argv` as a child process and keeps it running until `stop()`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        pass_fds: Sequence[int] = (),
        delay: float = 1.0,
        max_delay: float = 30.0,
        announce: Callable[[str], None] = lambda line: None,
        ready_line: str = "serving",
    ) -> None:
        self.argv = list(argv)
        self.pass_fds = tuple(pass_fds)
        self.delay = delay
        self.max_delay = max_delay
        self.announce = announce  # one line per start and per exit (the CLI prints them)
        self.ready_line = ready_line
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.get_running_loop().create_future()

    async def start(self, within: float = 60.0) -> int:
        """Start the child and wait until it says it is serving; returns its pid. Raises
        RuntimeError if it exits first (a bad configuration: the same as the parent's, so
        this is rare)."""
        self._task = asyncio.create_task(self._run())
        return await asyncio.wait_for(asyncio.shield(self._first), within)

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the child's log lines go where ours go
            pass_fds=self.pass_fds,
        )
        self.proc = proc  # from now on, stop() ends it
        assert proc.stdout is not None
        while True:  # until the child's "serving" line, or its end
            line = await proc.stdout.readline()
            if not line or line.decode(errors="replace").startswith(self.ready_line):
                break
        return proc

    async def _run(self) -> None:
        delay = self.delay
        while not self._stop.is_set():
            started = time.monotonic()
            proc = await self._spawn()
            if proc.returncode is None and proc.stdout is not None and not proc.stdout.at_eof():
                self.starts += 1
                self.announce(f"worker process {proc.pid} started")
                if not self._first.done():
                    self._first.set_result(proc.pid)
            drain = asyncio.create_task(self._drain(proc))
            code = await proc.wait()
            drain.cancel()
            if self._stop.is_set():
                return
            if not self._first.done():
                self._first.set_exception(
                    RuntimeError(f"the worker process ended at start ({describe_exit(code)})")
                )
                return
            if time.monotonic() - started >= HEALTHY_AFTER:
                delay = self.delay
            log.error(
                "worker process %d ended (%s); restarting it in %.1f s",
                proc.pid,
                describe_exit(code),
                delay,
            )
            self.announce(f"worker process {proc.pid} ended ({describe_exit(code)})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self.max_delay)

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        """Reads what else the child prints, so a full pipe never blocks it."""
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the child (it finishes its transaction and stops), SIGKILL after `grace`
        seconds."""
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()  # if it was still waiting for a child to start, or to restart
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task


def die_with_parent(parent_pid: int) -> None:
    """In a supervised child: be killed when the supervisor dies (Linux: PR_SET_PDEATHSIG), and
    exit at once if it is already gone. Elsewhere the wake pipe's end (`listen`) stops it."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


class WakePipe:
    """The ingress wakes the worker child at once when it has recorded events (without it the
    worker would find them at its next poll, up to `[worker] poll_seconds` later). One byte a
    group commit, never blocking: a full pipe already means "wake up"."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)

    def notify(self) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self.write_fd, b"\0")

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


async def listen(read_fd: int, on_wake: Callable[[], None]) -> None:
    """In the child: calls `on_wake` whenever the supervisor writes to the wake pipe; returns
    when the supervisor is gone (the pipe's write end closed with it)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(read_fd, False)
    gone = asyncio.Event()

    def readable() -> None:
        try:
            data = os.read(read_fd, 4096)
        except BlockingIOError:
            return
        if data:
            on_wake()
        else:
            gone.set()

    loop.add_reader(read_fd, readable)
    try:
        await gone.wait()
    finally:
        loop.remove_reader(read_fd)
