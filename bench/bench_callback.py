"""Acknowledgement latency and saturation throughput of the callback endpoint.

Servers, each in its own process, measured in the same run by the same load generator:
- bare: an aiohttp endpoint that only verifies the signature, decrypts and answers 200;
- all: `serve` (role all): SQLite (WAL), the endpoint with its worker and sender in-process,
  working off the backlog the load creates while it is acknowledging;
- ingress: `serve --role ingress`, the endpoint alone (its events are handled by
  `serve --role worker` instances elsewhere: a PostgreSQL deployment; on one SQLite file the two
  processes would contend for the file lock).

Offered load: open loop at a fixed rate (requests leave on schedule whatever the answers), so
latency includes queueing. Saturation: closed loop with many requests in flight.

Load (fully handled): at 1x and 4x of --rate for --seconds, distinct 帮助 messages from
--users users with 20 % resends (the same signed callback posted again, as WeCom retries), against
a fresh `serve` (role all) and the bare endpoint in the same run; "handled/s" counts replies the
stand-in received (handler committed, reply delivered) from the first request until the last
reply, waiting at most --drain-seconds; "cpu ms/event" is the server process's CPU time (user +
system) per distinct event, less sensitive to a loaded machine than wall time.

    .venv/bin/python bench/bench_callback.py [--rate 200] [--seconds 10] [--concurrency 32]
        [--users 1500] [--drain-seconds 120] [--load-only]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.runtime.app import Runtime  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.crypto import WeComCrypto  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402

PATH = "/wecom/callback"


async def _report(wecom: WeComStandIn | None, stats: Any) -> None:
    """Publishes the replies the stand-in received and this process's CPU seconds."""
    while True:
        times = os.times()
        stats[0] = float(len(wecom.deliveries)) if wecom is not None else 0.0
        stats[1] = times.user + times.system
        await asyncio.sleep(0.05)


async def _serve_ours(db_dir: str, ready: mp.Queue, role: str, stats: Any) -> None:  # type: ignore[type-arg]
    wecom = WeComStandIn()
    api_base = await wecom.start()
    runtime = Runtime(standin_settings(f"sqlite+aiosqlite:///{db_dir}/{role}.db", wecom, api_base))
    await runtime.migrate()
    port = await runtime.start(background=role.startswith("all"))
    reporter = asyncio.create_task(_report(wecom, stats))
    ready.put(port)
    await asyncio.Event().wait()
    reporter.cancel()


async def _serve_bare(ready: mp.Queue, stats: Any) -> None:  # type: ignore[type-arg]
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


def _server_main(kind: str, db_dir: str, ready: mp.Queue, stats: Any) -> None:  # type: ignore[type-arg]
    if kind.startswith("bare"):
        asyncio.run(_serve_bare(ready, stats))
    else:
        asyncio.run(_serve_ours(db_dir, ready, kind, stats))


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


async def _open_loop(
    url: str, reqs: list[tuple[dict[str, str], bytes]], rate: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal errors
            params, body = reqs[i]
            t0 = start + i / rate
            delay = t0 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with http.post(url, params=params, data=body) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            # Latency from the scheduled send time: lateness of the generator counts against us.
            latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one(i) for i in range(len(reqs))))
    return latencies, errors


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


def _start(kind: str, db_dir: str) -> tuple[mp.Process, int, Any]:
    ctx = mp.get_context("spawn")
    ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stats = ctx.Array("d", 2, lock=False)
    proc = ctx.Process(target=_server_main, args=(kind, db_dir, ready, stats))
    proc.start()
    return proc, int(ready.get(timeout=60)), stats


def _load_requests(
    n: int, offset: int, users: int, resend_share: float
) -> tuple[list[tuple[dict[str, str], bytes]], int]:
    """n callbacks: distinct 帮助 messages spread over `users` users, every 1/resend_share-th
    one a resend of an earlier callback (same MsgId, same signature). Returns them and how many
    are distinct."""
    wecom = WeComStandIn()
    now = int(time.time())
    out: list[tuple[dict[str, str], bytes]] = []
    distinct = 0
    every = round(1 / resend_share)
    for i in range(n):
        if i % every == every - 1 and out:
            out.append(out[len(out) // 2 + (i % max(1, len(out) // 2))])
            continue
        xml = wecom.text_message_xml(f"load{distinct % users}", "帮助", offset + distinct, now)
        params, body = wecom.seal_callback(xml, now)
        out.append((params, body.encode()))
        distinct += 1
    return out, distinct


def _load_phase(
    kind: str, tmp: str, rate: float, seconds: float, users: int, drain: float, offset: int
) -> dict[str, float]:
    reqs, distinct = _load_requests(int(rate * seconds), offset, users, 0.2)
    proc, port, stats = _start(kind, tmp)
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        cpu0 = stats[1]
        start = time.perf_counter()
        lat, errors = asyncio.run(_open_loop(url, reqs, rate))
        acked = time.perf_counter() - start
        expected = distinct if kind.startswith("all") else 0
        deadline = time.perf_counter() + drain
        while stats[0] < expected and time.perf_counter() < deadline:
            time.sleep(0.02)
        delivered = int(stats[0])
        elapsed = time.perf_counter() - start if expected else acked
        cpu = stats[1] - cpu0
    finally:
        proc.terminate()
        proc.join(5)
    return {
        "p50_ms": _pct(lat, 50) * 1000,
        "p99_ms": _pct(lat, 99) * 1000,
        "errors": errors,
        "requests": len(reqs),
        "distinct": distinct,
        "delivered": delivered if expected else distinct,
        "handled_per_s": (delivered if expected else distinct) / elapsed,
        "last_s": elapsed,
        "cpu_ms_per_event": cpu / distinct * 1000,
    }


def _load(args: argparse.Namespace, tmp: str) -> None:
    print(
        f"load: {args.users} users, 20 % resends, {args.seconds:.0f} s per rate, "
        f"drain at most {args.drain_seconds:.0f} s"
    )
    print(
        f"{'endpoint':8} {'rate/s':>7} {'reqs':>6} {'events':>6} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'errors':>6} {'handled':>7} {'handled/s':>9} {'last s':>7} {'cpu ms/ev':>9}"
    )
    offset = 5_000_000
    for mult in (1, 4):
        rate = args.rate * mult
        for kind in (f"bare{mult}", f"all{mult}"):
            offset += 1_000_000
            r = _load_phase(kind, tmp, rate, args.seconds, args.users, args.drain_seconds, offset)
            print(
                f"{kind.rstrip('14'):8} {rate:7.0f} {int(r['requests']):6d} "
                f"{int(r['distinct']):6d} {r['p50_ms']:7.2f} {r['p99_ms']:8.2f} "
                f"{int(r['errors']):6d} {int(r['delivered']):7d} {r['handled_per_s']:9.1f} "
                f"{r['last_s']:7.1f} {r['cpu_ms_per_event']:9.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--saturation-seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument("--load-only", action="store_true")
    args = parser.parse_args()
    n_open = int(args.rate * args.seconds)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _load(args, tmp)
        if args.load_only:
            return
        for offset, kind in ((1_000_000, "bare"), (2_000_000, "all"), (3_000_000, "ingress")):
            proc, port, _ = _start(kind, tmp)
            url = f"http://127.0.0.1:{port}{PATH}"
            try:
                warm = _requests(200, offset)
                asyncio.run(_closed_loop(url, warm, 8, 2.0))
                open_reqs = _requests(n_open, offset + 1000)
                lat, errors = asyncio.run(_open_loop(url, open_reqs, args.rate))
                sat_reqs = _requests(int(args.saturation_seconds * 3000), offset + 500_000)
                throughput, sat_errors = asyncio.run(
                    _closed_loop(url, sat_reqs, args.concurrency, args.saturation_seconds)
                )
            finally:
                proc.terminate()
                proc.join(5)
            results[kind] = {
                "p50_ms": _pct(lat, 50) * 1000,
                "p99_ms": _pct(lat, 99) * 1000,
                "mean_ms": statistics.fmean(lat) * 1000,
                "errors": errors + sat_errors,
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
