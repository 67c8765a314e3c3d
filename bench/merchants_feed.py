"""The live feed for bench/merchants.py: p99 from the bank's webhook to the event on the vendor's stream
with N open streams (SSE clients in a process of their own), beside the webhook's own round trip and
Redis publish → subscriber alone.
"""

import asyncio
import json
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

import httpx
import redis
from sqlalchemy import text

from bench.common import BenchServers, free_port, hanoipay_api
from bench.merchants_common import ADMIN, JWT_KEYS, KID, SECRET, line, percentile, staff_token
from hanoipay.db import job_session
from hanoipay.settings import get_settings
from merchants.service import markets
from merchants.service.onboarding import register_merchant
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign


def stream_clients(
    port: int,
    feeds: list[tuple[str, str]],
    results: "multiprocessing.Queue[object]",
    ready: Event,
    stop: Event,
) -> None:
    """Open one SSE stream per (merchant, token) and report (intent id, received at) for each payment."""

    async def one(merchant_id: str, token: str, opened: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /v1/merchants/{merchant_id}/feed HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(status.decode())
        opened[0] += 1
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: {") and b"payment_intent.succeeded" in line[:80]:
                now = time.time()
                event = json.loads(line[6:])
                results.put((event["data"]["id"], now))

    async def main() -> None:
        opened = [0]
        tasks = [asyncio.create_task(one(m, t, opened)) for m, t in feeds]
        while opened[0] < len(feeds):
            await asyncio.sleep(0.05)
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()

    asyncio.run(main())


def bench_feed(servers: BenchServers, streams: int, payments: int, rate: float) -> None:
    per_merchant = 5
    merchants = max(1, streams // per_merchant)
    stalls, feeds = [], []
    market = None
    with job_session() as session:
        market = markets.create_market(session, ADMIN, name="Chợ bench", address="Hà Nội")
    for i in range(merchants):
        with job_session() as session:
            merchant = register_merchant(
                session,
                ADMIN,
                name=f"Sạp {i}",
                kind="market_vendor",
                fee_plan="market_stall",
                payout_bank_bin="970436",
                payout_account="0011002233445",
                payout_account_name="BENCH",
            ).payee
            stall = markets.create_stall(
                session, ADMIN, market_id=market.id, code=f"S{i}", name=f"Sạp {i}", merchant_id=merchant.id
            )
            stalls.append((merchant.id, stall.id))
        token = staff_token(merchant.id, "cashier")
        feeds += [(merchant.id, token)] * per_merchant
    env = {
        "HANOIPAY_JWT_KEYS": json.dumps(JWT_KEYS),
        "HANOIPAY_JWT_ACTIVE_KID": "bench",
        "HANOIPAY_BANK_WEBHOOK_SECRETS": json.dumps({KID: SECRET}),
    }
    server = hanoipay_api(servers, env, port=free_port(), workers=2)
    worker_env = {
        **os.environ,
        "HANOIPAY_DATABASE_URL": servers.database_url,
        "HANOIPAY_REDIS_URL": servers.redis_url,
        **env,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "city.cli", "worker"],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctx = multiprocessing.get_context("spawn")
    results, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    clients = None
    sales: list[tuple[str, str, int]] = []
    sent: dict[str, float] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
            for i in range(payments):
                merchant_id, stall_id = stalls[i % len(stalls)]
                token = next(t for m, t in feeds if m == merchant_id)
                r = http.post(
                    f"/v1/stalls/{stall_id}/sales",
                    json={"amount": 10_000 + i},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 201, r.text
                sales.append((r.json()["payment_intent"], r.json()["reference"], 10_000 + i))
            clients = ctx.Process(
                target=stream_clients, args=(server.port, feeds, results, ready, stop), daemon=True
            )
            clients.start()
            if not ready.wait(60):
                raise RuntimeError("the streams did not open")
            time.sleep(1)
            round_trips = []
            for n, (intent_id, reference, amount) in enumerate(sales):
                note = {
                    "transaction_id": f"FTFEED{n:08d}",
                    "account": get_settings().vietqr_account,
                    "amount": amount,
                    "description": f"CK {reference}",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                body = json.dumps(note).encode()
                headers = {
                    SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET),
                    "content-type": "application/json",
                }
                sent[intent_id] = time.time()
                t0 = time.perf_counter()
                r = http.post("/v1/webhooks/bank", content=body, headers=headers)
                round_trips.append((time.perf_counter() - t0) * 1000)
                assert r.json().get("status") == "applied", r.text
                time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
            latencies: list[float] = []
            deadline = time.time() + 30
            while len(latencies) < payments * per_merchant and time.time() < deadline:
                try:
                    intent_id, received = results.get(timeout=1)
                except queue.Empty:
                    continue
                latencies.append((received - sent[intent_id]) * 1000)
    finally:
        stop.set()
        if clients is not None:
            clients.join(5)
        worker.terminate()
        server.stop()
    expected = payments * per_merchant
    base = redis_baseline(servers.redis_url)
    with job_session() as session:
        created = {
            row[0]: row[1].timestamp()
            for row in session.execute(
                text("SELECT object_id, created_at FROM event WHERE type = 'payment_intent.succeeded'")
            )
        }
        to_row = [(created[i] - sent[i]) * 1000 for i in sent if i in created]
        queued = [
            float(v) * 1000
            for v in session.scalars(
                text(
                    "SELECT extract(epoch FROM delivered_at - created_at) FROM event"
                    " WHERE type = 'payment_intent.succeeded' AND delivered_at IS NOT NULL"
                    " AND object_id = ANY(:ids)"
                ),
                {"ids": [intent_id for intent_id, _, _ in sales]},
            )
        ]
    print(
        f"\n3. Live feed: {len(feeds)} open streams ({merchants} merchants × {per_merchant}),"
        f" {payments} payments by webhook at {rate:g}/s, events delivered by `hanoipay worker`"
    )
    summary = (statistics.median(latencies), percentile(latencies, 0.99))
    line(
        "webhook sent → event on the stream", summary, f"max {max(latencies):.0f} ms; target: p99 < 1 000 ms"
    )
    print(f"   events delivered: {len(latencies):,} of {expected:,}")
    line("of which: webhook sent → event row written", (statistics.median(to_row), percentile(to_row, 0.99)))
    line("of which: event row → published by the job", (statistics.median(queued), percentile(queued, 0.99)))
    line(
        "baseline, the webhook's own round trip",
        (statistics.median(round_trips), percentile(round_trips, 0.99)),
    )
    line("baseline, Redis publish → subscriber", base)


def redis_baseline(url: str) -> tuple[float, float]:
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe("bench:latency")
    pubsub.get_message(timeout=1)
    times = []
    for i in range(500):
        t0 = time.perf_counter()
        client.publish("bench:latency", str(i))
        while (message := pubsub.get_message(timeout=1)) is None or message["type"] != "message":
            pass
        times.append((time.perf_counter() - t0) * 1000)
    pubsub.close()
    return statistics.median(times), percentile(times, 0.99)
