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

    .venv/bin/python bench/bench_callback.py [--rate 200] [--seconds 10] [--concurrency 32]
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

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.runtime.app import Runtime  # noqa: E402
from bot.tools.demo import standin_settings  # noqa: E402
from bot.wecom.crypto import WeComCrypto  # noqa: E402
from bot.wecom.standin import WeComStandIn  # noqa: E402

PATH = "/wecom/callback"


async def _serve_ours(db_dir: str, ready: mp.Queue, role: str) -> None:  # type: ignore[type-arg]
    wecom = WeComStandIn()
    api_base = await wecom.start()
    runtime = Runtime(standin_settings(f"sqlite+aiosqlite:///{db_dir}/{role}.db", wecom, api_base))
    await runtime.migrate()
    port = await runtime.start(background=role == "all")
    ready.put(port)
    await asyncio.Event().wait()


async def _serve_bare(ready: mp.Queue) -> None:  # type: ignore[type-arg]
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
    ready.put(runner.addresses[0][1])
    await asyncio.Event().wait()


def _server_main(kind: str, db_dir: str, ready: mp.Queue) -> None:  # type: ignore[type-arg]
    if kind == "bare":
        asyncio.run(_serve_bare(ready))
    else:
        asyncio.run(_serve_ours(db_dir, ready, kind))


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


def _start(kind: str, db_dir: str) -> tuple[mp.Process, int]:
    ctx = mp.get_context("spawn")
    ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_server_main, args=(kind, db_dir, ready))
    proc.start()
    return proc, int(ready.get(timeout=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--saturation-seconds", type=float, default=5.0)
    args = parser.parse_args()
    n_open = int(args.rate * args.seconds)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for offset, kind in ((1_000_000, "bare"), (2_000_000, "all"), (3_000_000, "ingress")):
            proc, port = _start(kind, tmp)
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
