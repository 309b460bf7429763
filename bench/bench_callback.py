"""Acknowledgement latency and saturation throughput of the callback endpoint.

Servers, each in its own process(es), measured in the same run by the same load generator:
- bare: an aiohttp endpoint that only verifies the signature, decrypts and answers 200;
- all: the real `shuangsuiji serve` (role all) on SQLite (WAL): the ingress acknowledges and
  records in the `serve` process, its supervised worker child handles and sends (two processes);
- one: `serve --one-process`: role all on one event loop (the endpoint, worker and sender
  sharing one process and one core), the mode before the split, for comparison;
- ingress: `serve --role ingress`, the endpoint alone (nobody handles its events).
The WeCom stand-in runs in a process of its own; the load generator in this one, all on the
same cores.

Offered load: open loop at a fixed rate (requests leave on schedule whatever the answers), so
latency includes queueing. Saturation: closed loop with many requests in flight.

Load (fully handled): at 1x and 4x of --rate for --seconds, distinct 帮助 messages from
--users users with 20 % resends (the same signed callback posted again, as WeCom retries), against
a fresh server of each kind in the same run. A callback answered other than 200 (a 503 beyond
`max_inflight`, or after `ack_timeout_s`) is posted again after --retry-seconds, up to three
times, as WeCom does; "503s" counts such answers, "lost" the callbacks never acknowledged.
"handled/s" counts replies the stand-in received (handler committed, reply delivered) from the
first request until the last reply, waiting at most --drain-seconds; "cpu ms/ev" is the server's
CPU time (user + system, every process of it) per distinct event, less sensitive to a loaded
machine than wall time.

    .venv/bin/python bench/bench_callback.py [--rate 200] [--seconds 10] [--concurrency 32]
        [--users 1500] [--drain-seconds 120] [--retry-seconds 1] [--multiples 1 4]
        [--kinds bare all one ingress] [--niceness 5] [--load-only]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.wecom.crypto import WeComCrypto  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402

PATH = "/wecom/callback"
ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
# The arguments of `serve` per kind of server.
SERVE_ARGS = {"all": [], "one": ["--one-process"], "ingress": ["--role", "ingress"]}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and, recursively, its living children (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / TICK
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(_cpu_seconds(int(child)) for child in children)
    return total


async def _report(wecom: WeComStandIn | None, stats: Any) -> None:
    """Publishes the replies the stand-in received and this process's CPU seconds."""
    while True:
        times = os.times()
        stats[0] = float(len(wecom.deliveries)) if wecom is not None else 0.0
        stats[1] = times.user + times.system
        await asyncio.sleep(0.05)


async def _serve_standin(ready: mp.Queue, stats: Any) -> None:
    wecom = WeComStandIn()
    api_base = await wecom.start()
    reporter = asyncio.create_task(_report(wecom, stats))
    ready.put(api_base)
    await asyncio.Event().wait()
    reporter.cancel()


async def _serve_bare(ready: mp.Queue, stats: Any) -> None:
    wecom = WeComStandIn()
    crypto = WeComCrypto(wecom.token, wecom.encoding_aes_key, wecom.corp_id)

    async def handle(request: web.Request) -> web.Response:
        import defusedxml.ElementTree as ET

        q = request.query
        outer = ET.fromstring(await request.read())
        encrypt = outer.findtext("Encrypt") or ""
        if not crypto.verify(q["msg_signature"], q["timestamp"], q["nonce"], encrypt):
            return web.Response(status=403)
        crypto.decrypt(encrypt)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post(PATH, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    reporter = asyncio.create_task(_report(None, stats))
    ready.put(runner.addresses[0][1])
    await asyncio.Event().wait()
    reporter.cancel()


def _helper_main(kind: str, ready: mp.Queue, stats: Any) -> None:
    asyncio.run(_serve_bare(ready, stats) if kind == "bare" else _serve_standin(ready, stats))


def _helper(kind: str) -> tuple[Any, Any, Any]:
    """The bare endpoint or the WeCom stand-in in a process of its own: (process, what it
    announced (port or API base), shared stats: replies received, CPU seconds)."""
    ctx = mp.get_context("spawn")
    ready: Any = ctx.Queue()
    stats = ctx.Array("d", 2, lock=False)
    proc = ctx.Process(target=_helper_main, args=(kind, ready, stats))
    proc.start()
    return proc, ready.get(timeout=60), stats


@dataclass
class Server:
    """One server of the run: the bare endpoint, or `serve` with its own stand-in."""

    kind: str
    url: str
    pid: int
    stop: Any
    standin: Any = None  # the stand-in's shared stats (replies received), for `serve`

    def replies(self) -> int:
        return int(self.standin[0]) if self.standin is not None else 0

    def cpu(self) -> float:
        return _cpu_seconds(self.pid)


def _start(kind: str, db_dir: str, niceness: int = 5) -> Server:
    if kind == "bare":
        proc, port, _ = _helper("bare")

        def stop_bare() -> None:
            proc.terminate()
            proc.join(5)

        return Server(kind, f"http://127.0.0.1:{port}{PATH}", int(proc.pid or 0), stop_bare)
    standin, api, stats = _helper("standin")
    db = Path(db_dir) / f"{kind}-{time.monotonic_ns()}.db"
    env = {
        **WeComStandIn().serve_env(api),  # the same default credentials as the stand-in's
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SHUANGSUIJI_DATABASE__URL": f"sqlite:///{db}",
        "SHUANGSUIJI_LOG__LEVEL": "error",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0"]
        + SERVE_ARGS[kind]
        + (["--niceness", str(niceness)] if kind == "all" else []),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert serve.stdout is not None
    line = serve.stdout.readline()
    found = re.search(r" on 127\.0\.0\.1:(\d+)", line)
    if not found:
        raise RuntimeError(f"serve did not start: {line!r}")
    if kind == "all":  # and its worker child (its start-up is not part of the run)
        line = serve.stdout.readline()
        if "worker process" not in line:
            raise RuntimeError(f"serve's worker did not start: {line!r}")

    def stop_serve() -> None:
        serve.terminate()
        try:
            serve.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.communicate()
        standin.terminate()
        standin.join(5)

    url = f"http://127.0.0.1:{found.group(1)}{PATH}"
    return Server(kind, url, serve.pid, stop_serve, standin=stats)


def _requests(n: int, offset: int) -> list[tuple[dict[str, str], bytes]]:
    """Distinct signed, encrypted text messages from 500 users (as WeCom would send them)."""
    wecom = WeComStandIn()
    now = int(time.time())
    out = []
    for i in range(n):
        xml = wecom.text_message_xml(f"user{i % 500}", f"帮助 {i}", offset + i, now)
        params, body = wecom.seal_callback(xml, now)
        out.append((params, body.encode()))
    return out


@dataclass
class OpenLoop:
    latencies: list[float] = field(default_factory=list)  # of each first post
    errors: int = 0  # first posts answered other than 200
    refused: int = 0  # answers other than 200, resends included
    acked: set[int] = field(default_factory=set)  # events acknowledged (by any post)
    lost: int = 0  # callbacks never acknowledged after WeCom's three retries


async def _open_loop(
    url: str,
    reqs: list[tuple[dict[str, str], bytes]],
    rate: float,
    events: list[int] | None = None,
    retry: float | None = None,
) -> OpenLoop:
    """Posts `reqs` on schedule. With `retry`, a callback answered other than 200 (or not at
    all) is posted again after `retry` seconds, up to three times, as WeCom does."""
    out = OpenLoop()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()

        async def post(i: int) -> bool:
            params, body = reqs[i]
            try:
                async with http.post(url, params=params, data=body) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            out.refused += not ok
            return ok

        async def one(i: int) -> None:
            t0 = start + i / rate
            delay = t0 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ok = await post(i)
            # Latency from the scheduled send time: lateness of the generator counts against us.
            out.latencies.append(time.perf_counter() - t0)
            out.errors += not ok
            tries = 3 if retry is not None else 0
            while not ok and tries:
                await asyncio.sleep(retry or 0)
                ok = await post(i)
                tries -= 1
            if ok and events is not None:
                out.acked.add(events[i])
            out.lost += not ok

        await asyncio.gather(*(one(i) for i in range(len(reqs))))
    return out


async def _closed_loop(
    url: str, reqs: list[tuple[dict[str, str], bytes]], concurrency: int, seconds: float
) -> tuple[float, int]:
    done = 0
    errors = 0
    idx = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def worker() -> None:
            nonlocal done, errors, idx
            while time.perf_counter() < deadline and idx < len(reqs):
                params, body = reqs[idx]
                idx += 1
                async with http.post(url, params=params, data=body) as resp:
                    await resp.read()
                    done += 1
                    errors += resp.status != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done / elapsed, errors


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _load_requests(
    n: int, offset: int, users: int, resend_share: float
) -> tuple[list[tuple[dict[str, str], bytes]], list[int], int]:
    """n callbacks: distinct 帮助 messages spread over `users` users, every 1/resend_share-th
    one a resend of an earlier callback (same MsgId, same signature). Returns them, the event
    number of each, and how many are distinct."""
    wecom = WeComStandIn()
    now = int(time.time())
    out: list[tuple[dict[str, str], bytes]] = []
    events: list[int] = []
    distinct = 0
    every = round(1 / resend_share)
    for i in range(n):
        if i % every == every - 1 and out:
            earlier = len(out) // 2 + (i % max(1, len(out) // 2))
            out.append(out[earlier])
            events.append(events[earlier])
            continue
        xml = wecom.text_message_xml(f"load{distinct % users}", "帮助", offset + distinct, now)
        params, body = wecom.seal_callback(xml, now)
        out.append((params, body.encode()))
        events.append(distinct)
        distinct += 1
    return out, events, distinct


def _load_phase(
    kind: str, tmp: str, rate: float, args: argparse.Namespace, offset: int
) -> dict[str, float]:
    reqs, events, distinct = _load_requests(int(rate * args.seconds), offset, args.users, 0.2)
    server = _start(kind, tmp, args.niceness)
    try:
        cpu0 = server.cpu()
        start = time.perf_counter()
        run = asyncio.run(_open_loop(server.url, reqs, rate, events, args.retry_seconds))
        acked = time.perf_counter() - start
        # Every acknowledged event must be handled: wait for its reply (bare: nothing to handle).
        expected = len(run.acked) if kind in ("all", "one") else 0
        deadline = time.perf_counter() + args.drain_seconds
        while server.replies() < expected and time.perf_counter() < deadline:
            time.sleep(0.02)
        delivered = server.replies() if expected else len(run.acked)
        elapsed = time.perf_counter() - start if expected else acked
        cpu = server.cpu() - cpu0
    finally:
        server.stop()
    return {
        "p50_ms": _pct(run.latencies, 50) * 1000,
        "p99_ms": _pct(run.latencies, 99) * 1000,
        "refused": run.refused,
        "lost": run.lost,
        "requests": len(reqs),
        "distinct": distinct,
        "delivered": delivered,
        "handled_per_s": delivered / elapsed,
        "last_s": elapsed,
        "cpu_ms_per_event": cpu / distinct * 1000,
    }


def _load(args: argparse.Namespace, tmp: str) -> None:
    print(
        f"load: {args.users} users, 20 % resends, {args.seconds:.0f} s per rate, "
        f"non-200 posted again after {args.retry_seconds:g} s (3 times at most), "
        f"drain at most {args.drain_seconds:.0f} s; all: --niceness {args.niceness}; "
        f"load average {_loadavg()}"
    )
    print(
        f"{'server':8} {'rate/s':>7} {'reqs':>6} {'events':>6} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'503s':>6} {'lost':>5} {'handled':>7} {'handled/s':>9} {'last s':>7} {'cpu ms/ev':>9}"
    )
    offset = 5_000_000
    for mult in args.multiples:
        rate = args.rate * mult
        for kind in args.kinds:
            offset += 1_000_000
            r = _load_phase(kind, tmp, rate, args, offset)
            print(
                f"{kind:8} {rate:7.0f} {int(r['requests']):6d} "
                f"{int(r['distinct']):6d} {r['p50_ms']:7.2f} {r['p99_ms']:8.2f} "
                f"{int(r['refused']):6d} {int(r['lost']):5d} {int(r['delivered']):7d} "
                f"{r['handled_per_s']:9.1f} {r['last_s']:7.1f} {r['cpu_ms_per_event']:9.2f}",
                flush=True,
            )
    print(f"load average after: {_loadavg()}")


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--saturation-seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument("--retry-seconds", type=float, default=1.0)
    parser.add_argument(
        "--multiples", type=float, nargs="+", default=[1, 4], help="load rates, times --rate"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["bare", "all", "one"],
        choices=["bare", "all", "one", "ingress"],
        help="ingress: `serve --role ingress` alone (nothing handled)",
    )
    parser.add_argument(
        "--niceness", type=int, default=5, help="serve --niceness of the all-in-one server"
    )
    parser.add_argument("--load-only", action="store_true")
    args = parser.parse_args()
    n_open = int(args.rate * args.seconds)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _load(args, tmp)
        if args.load_only:
            return
        for offset, kind in ((1_000_000, "bare"), (2_000_000, "all"), (3_000_000, "ingress")):
            server = _start(kind, tmp)
            try:
                warm = _requests(200, offset)
                asyncio.run(_closed_loop(server.url, warm, 8, 2.0))
                open_reqs = _requests(n_open, offset + 1000)
                run = asyncio.run(_open_loop(server.url, open_reqs, args.rate))
                sat_reqs = _requests(int(args.saturation_seconds * 3000), offset + 500_000)
                throughput, sat_errors = asyncio.run(
                    _closed_loop(server.url, sat_reqs, args.concurrency, args.saturation_seconds)
                )
            finally:
                server.stop()
            results[kind] = {
                "p50_ms": _pct(run.latencies, 50) * 1000,
                "p99_ms": _pct(run.latencies, 99) * 1000,
                "mean_ms": statistics.fmean(run.latencies) * 1000,
                "errors": run.errors + sat_errors,
                "throughput": throughput,
            }
    print(
        f"cpus={os.cpu_count()} offered={args.rate:.0f}/s for {args.seconds:.0f}s ({n_open} events)"
    )
    print(f"{'endpoint':8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'sat/s':>8} {'errors':>7}")
    for kind, r in results.items():
        print(
            f"{kind:8} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['mean_ms']:8.2f} "
            f"{r['throughput']:8.0f} {int(r['errors']):7d}"
        )
    for kind in ("all", "ingress"):
        ratio = results[kind]["throughput"] / results["bare"]["throughput"]
        print(
            f"{kind}: saturation ratio to bare = {ratio:.2f} (target >= 0.30); "
            f"p99 at {args.rate:.0f}/s = {results[kind]['p99_ms']:.2f} ms (target < 20 ms)"
        )


if __name__ == "__main__":
    main()
