"""Collector benchmark on 127.0.0.1: prints figures, asserts nothing.

In one run, with the same gunicorn settings (tracker.serve.gunicorn_options: gthread,
1 worker x FUNNEL_THREADS threads for the embedded store):
  1. single-event requests/s of POST /api/collect versus a trivial Flask endpoint;
  2. events/s with 50-event batches;
  3. p50/p99 latency at a fixed 1,000 requests/s (open loop, measured from the scheduled
     send time so a stall is not hidden);
  4. RSS of the serving process.
The load generator is a separate asyncio process using keep-alive connections.

    python bench/collect.py [--seconds 8] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SITE = "benchsite"


# -- servers --------------------------------------------------------------------------------


def serve_trivial(port: int) -> None:
    """A trivial Flask endpoint under exactly the collector's gunicorn options."""
    from flask import Flask, Response
    from gunicorn.app.base import BaseApplication

    from tracker.serve import gunicorn_options
    from tracker.settings import Settings

    app = Flask("trivial")

    @app.post("/api/collect")
    def collect() -> Response:
        return Response('{"accepted":1,"dropped":{}}', status=202, mimetype="application/json")

    options = gunicorn_options(Settings.from_env(), bind=f"127.0.0.1:{port}")
    options["post_worker_init"] = lambda worker: None  # nothing to open

    class Trivial(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Trivial().run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


def worker_pid(master: int) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry)
    return master


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- load generator -----------------------------------------------------------------------------


PAGES = [f"https://shop.example/p/{i}" for i in range(400)] + [
    f"https://shop.example/p/{i}?utm_source={src}&utm_medium={med}&utm_campaign=c{i % 7}"
    for i in range(100)
    for src, med in (("news", "email"), ("google", "cpc"))
]
REFERRERS = [
    "",
    "https://www.google.com/",
    "https://www.bing.com/search?q=red+shoes",
    "https://t.co/abc",
    "https://news.example.org/article",
    "https://shop.example/cart",
]


def make_event(rng: random.Random, visitor: str) -> dict[str, Any]:
    """One event as the snippet sends it: mostly pageviews, some clicks and custom events."""
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "url": rng.choice(PAGES),
        "referrer": rng.choice(REFERRERS),
        "title": "Product",
        "visitor": visitor,
        "ts": int(time.time() * 1000) - rng.randrange(60_000),
    }
    kind = rng.random()
    if kind < 0.2:
        event["type"] = "click"
        event["element"] = {"tag": "a", "text": "Add to cart", "href": "/cart", "id": "buy"}
    elif kind < 0.3:
        event["type"] = "event"
        event["name"] = "signup"
        event["props"] = {"plan": "pro", "seats": 3}
    return event


def build_requests(port: int, batch: int, count: int) -> list[bytes]:
    """Distinct bodies: each a batch from one visitor across the site's 600 URLs and a few
    referrers, so the collector's caches see a realistic mix, not one repeated page."""
    rng = random.Random(7)
    out = []
    for _ in range(count):
        visitor = uuid.uuid4().hex[:16]
        events = [make_event(rng, visitor) for _ in range(batch)]
        body = json.dumps(
            {"site": SITE, "events": events} if batch > 1 else {"site": SITE, **events[0]}
        ).encode()
        head = (
            f"POST /api/collect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {UA}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await reader.readexactly(length)
    return status


async def _closed_loop(port: int, reqs: list[bytes], conns: int, seconds: float) -> dict[str, Any]:
    stop = time.perf_counter() + seconds
    done = [0]
    bad = [0]

    async def one(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < stop:
            writer.write(reqs[i % len(reqs)])
            i += conns
            status = await _read_response(reader)
            if status == 202:
                done[0] += 1
            else:
                bad[0] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(conns)))
    elapsed = time.perf_counter() - started
    return {"requests": done[0], "non_202": bad[0], "seconds": elapsed}


async def _open_loop(port: int, reqs: list[bytes], rate: int, seconds: float) -> dict[str, Any]:
    conns = 32
    latencies: list[float] = []
    bad = [0]
    interval = conns / rate
    start = time.perf_counter() + 0.2

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while True:
            scheduled = start + k * (1 / rate) + n * interval
            if scheduled > start + seconds:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(reqs[(k + n * conns) % len(reqs)])
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - scheduled)
            if status != 202:
                bad[0] += 1
            n += 1
        writer.close()

    await asyncio.gather(*(one(k) for k in range(conns)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "non_202": bad[0],
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "rate": len(latencies) / (time.perf_counter() - start),
    }


def _load(kind: str, port: int, batch: int, conns: int, seconds: float, q: Any) -> None:
    reqs = build_requests(port, batch, 2000 if batch == 1 else 400)
    if kind == "closed":
        q.put(asyncio.run(_closed_loop(port, reqs, conns, seconds)))
    else:
        q.put(asyncio.run(_open_loop(port, reqs, 1000, seconds)))


def load(kind: str, port: int, batch: int, conns: int, seconds: float) -> dict[str, Any]:
    """Run the generator in its own process so it does not share the benchmark's GIL."""
    q: Any = mp.Queue()
    proc = mp.Process(target=_load, args=(kind, port, batch, conns, seconds, q))
    proc.start()
    result = q.get(timeout=seconds + 120)
    proc.join()
    return dict(result)


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve-trivial", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_trivial:
        serve_trivial(args.serve_trivial)
        return

    # The server's data (spool, chDB store, config DB) is thrown away after the run.
    with tempfile.TemporaryDirectory(prefix="funnel-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    env.update(FUNNEL_DATA_DIR=str(data_dir), FUNNEL_RATE_LIMIT="0", FUNNEL_LOG_LEVEL="warning")
    # The knobs being measured pass through from the caller's environment.
    for var in ("FUNNEL_THREADS", "FUNNEL_SPOOL_FSYNC"):
        if var in os.environ:
            env[var] = os.environ[var]
    py = sys.executable
    subprocess.run([py, "-m", "tracker", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [py, "-m", "tracker", "create-site", "--name", "Bench", "--key", SITE],
        env=env,
        check=True,
        capture_output=True,
    )
    secs, conns = args.seconds, args.connections
    print(
        f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start "
        "(on a shared machine figures vary run to run; compare the ratios)"
    )
    print(
        f"gunicorn: gthread, 1 worker x {os.environ.get('FUNNEL_THREADS', '8')} threads; "
        f"spool fsync {os.environ.get('FUNNEL_SPOOL_FSYNC', 'always')}; "
        f"{conns} keep-alive connections; {secs:.0f}s per phase"
    )

    trivial_port = free_port()
    trivial = subprocess.Popen(
        [py, __file__, "--serve-trivial", str(trivial_port)], env=env, start_new_session=True
    )
    try:
        wait_up(f"http://127.0.0.1:{trivial_port}/")
        load("closed", trivial_port, 1, conns, 2)  # warm-up
        base = load("closed", trivial_port, 1, conns, secs)
    finally:
        os.killpg(trivial.pid, signal.SIGTERM)
        trivial.wait(timeout=30)
    base_rps = base["requests"] / base["seconds"]

    port = free_port()
    server = subprocess.Popen(
        [py, "-m", "tracker", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        start_new_session=True,
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
        load("closed", port, 1, conns, 2)  # warm-up: caches, salts, writer thread
        single = load("closed", port, 1, conns, secs)
        batch = load("closed", port, 50, conns, secs)
        latency = load("open", port, 1, conns, secs)
        rss = rss_mb(worker_pid(server.pid))
        deadline = time.monotonic() + 120
        depth = -1.0
        while time.monotonic() < deadline:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            depth = next(
                float(line.split()[1])
                for line in text.splitlines()
                if line.startswith("funnel_spool_depth_events ")
            )
            if depth == 0:
                break
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    single_rps = single["requests"] / single["seconds"]
    events_s = batch["requests"] * 50 / batch["seconds"]
    print()
    print(f"trivial Flask endpoint      {base_rps:10.0f} req/s")
    print(
        f"collect, single event       {single_rps:10.0f} req/s   "
        f"ratio {single_rps / base_rps:.2f} (target >= 0.60)"
    )
    print(f"collect, 50-event batches   {events_s:10.0f} events/s (target >= 30000)")
    print(
        f"latency at 1000 req/s       p50 {latency['p50_ms']:.1f} ms, "
        f"p99 {latency['p99_ms']:.1f} ms ({latency['requests']} requests, "
        f"{latency['rate']:.0f} req/s achieved)"
    )
    print(f"serving process RSS         {rss:10.1f} MB")
    non_202 = single["non_202"] + batch["non_202"] + latency["non_202"]
    print(f"non-202 answers: {non_202}; spool drained after the run: {depth == 0}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
