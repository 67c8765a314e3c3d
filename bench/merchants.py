"""Merchants benchmarks, each figure beside a baseline measured in the same run:

1. invoices generated for a school of N students (target: 50 000 in at most 30 s), beside a bare COPY
   of the same rows into the same tables;
2. a statement page for a merchant with N ledger lines (target: 1 000 000 lines, at most 200 ms), over
   HTTP with wrk, beside wrk on GET /healthz (no work) and the page's SQL run alone;
3. the live feed: p99 from the bank's webhook to the event on the vendor's stream with N open streams
   (target: 500 streams, under 1 s), beside Redis publish → subscriber alone and the webhook's own
   round trip.

    .venv/bin/python bench/merchants.py            # full size
    .venv/bin/python bench/merchants.py --small    # 5 000 students, 100 000 lines, 100 streams
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import psycopg
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchServers, hanoipay_api, start
from hanoipay.auth.service import Principal, create_user, issue_token
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from merchants.service import markets
from merchants.service.onboarding import add_member, register_merchant
from merchants.service.tuition import invoices, schools
from merchants.service.tuition.billing import Item, LateFeeRule, Share
from payments import ledger
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign

ADMIN = Principal(id="usr_bench_admin", kind="user", roles=frozenset({"admin", "finance"}))
KID, SECRET = "bench-bank", secrets.token_urlsafe(24)
JWT_KEYS = {"bench": secrets.token_urlsafe(32)}


def dsn(servers: BenchServers) -> str:
    return servers.database_url.replace("postgresql+psycopg://", "postgresql://")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def staff_token(merchant_id: str, role: str = "owner") -> str:
    """A JWT for a new staff member of the merchant."""
    with job_session() as session:
        user = create_user(
            session,
            email=f"{new_id('b').lower()}@bench.vn",
            password="bench password 1",
            full_name="Bench",
            roles=["customer"],
        )
        add_member(session, user, merchant_id, role, added_by=ADMIN.id)
        session.flush()
        return issue_token(user)[0]


# 1. Invoices ---------------------------------------------------------------------------------------------


def bench_invoices(servers: BenchServers, students: int) -> None:
    with job_session() as session:
        school = register_merchant(
            session,
            ADMIN,
            name="Trường bench",
            kind="school",
            fee_plan="school",
            payout_bank_bin="970436",
            payout_account="0011002233445",
            payout_account_name="TRUONG BENCH",
        ).payee
        schedule = schools.create_schedule(
            session,
            ADMIN,
            school.id,
            term="2026-2027 HK1",
            name="Học kỳ I",
            items=[
                Item("tuition", "Học phí", 1_500_000),
                Item("meals", "Tiền ăn", 600_000),
                Item("boarding", "Bán trú", 300_000),
                Item("insurance", "Bảo hiểm", 150_000),
                Item("books", "Sách", 120_000),
            ],
            installments=[Share(date(2026, 9, 15), 6_000), Share(date(2027, 1, 15), 4_000)],
            allow_partial=True,
            late_fee=LateFeeRule("percent", 200, 5),
        )
        school_id, schedule_id = school.id, schedule.id
    with psycopg.connect(dsn(servers)) as conn:
        classes = [
            (new_id("cls"), school_id, f"{6 + i // 10}A{i % 10 + 1}") for i in range(max(1, students // 40))
        ]
        with conn.cursor().copy("COPY school_class (id, merchant_id, name) FROM STDIN") as copy:
            for row in classes:
                copy.write_row(row)
        with conn.cursor().copy(
            "COPY student (id, merchant_id, code, full_name, class_id, date_of_birth) FROM STDIN"
        ) as copy:
            student_ids = []
            for i in range(students):
                sid = new_id("stu")
                student_ids.append(sid)
                copy.write_row(
                    (
                        sid,
                        school_id,
                        f"HS{i:06d}",
                        f"Nguyễn Văn Học {i}",
                        classes[i % len(classes)][0],
                        date(2014, 1, 1),
                    )
                )
        with conn.cursor().copy(
            "COPY student_adjustment (id, student_id, schedule_id, item_code, kind, percent_bps, amount,"
            " reason) FROM STDIN"
        ) as copy:
            for sid in student_ids[::20]:
                copy.write_row(
                    (new_id("adj"), sid, schedule_id, "tuition", "exemption", 10_000, None, "chính sách")
                )
        conn.commit()
    started = time.perf_counter()
    with job_session() as session:
        created = invoices.generate_invoices(session, ADMIN, school_id, schedule_id)
    elapsed = time.perf_counter() - started

    tables = {
        "invoice": "id, code, merchant_id, student_id, schedule_id, term, currency, total_amount,"
        " paid_amount, status, allow_partial, due_on, late_fee_kind, late_fee_value, late_fee_grace_days",
        "invoice_line": "invoice_id, kind, item_code, description, amount, reason, installment_seq",
        "invoice_installment": "invoice_id, seq, due_on, amount",
    }
    dumps: dict[str, bytes] = {}
    with psycopg.connect(dsn(servers)) as conn:
        for table, columns in tables.items():
            buffer = bytearray()
            with conn.cursor().copy(f"COPY {table} ({columns}) TO STDOUT") as copy:
                for chunk in copy:
                    buffer += chunk
            dumps[table] = bytes(buffer)
        conn.execute("TRUNCATE invoice_line, invoice_installment, invoice_payment, invoice")
        conn.commit()
        rows = {table: dumps[table].count(b"\n") for table in tables}
        t0 = time.perf_counter()
        for table, columns in tables.items():
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(dumps[table])
        conn.commit()
        copy_elapsed = time.perf_counter() - t0
    total_rows = sum(rows.values())
    print(
        f"\n1. Invoices for {students:,} students"
        f" ({created:,} invoices, {total_rows:,} rows with lines and installments)"
    )
    print(
        f"   generate_invoices: {elapsed:.2f} s ({created / elapsed:,.0f} invoices/s)"
        "   target: 50 000 in <= 30 s"
    )
    print(
        f"   baseline, bare COPY of the same rows: {copy_elapsed:.2f} s"
        f" ({total_rows / copy_elapsed:,.0f} rows/s)"
    )


# 2. Statement page ---------------------------------------------------------------------------------------


def bench_statement(servers: BenchServers, lines: int, seconds: int) -> None:
    with job_session() as session:
        merchant = register_merchant(
            session,
            ADMIN,
            name="Chợ bench",
            kind="market_vendor",
            fee_bps=100,
            payout_bank_bin="970436",
            payout_account="0011002233445",
            payout_account_name="BENCH",
        ).payee
        fee_account = ledger.fee_revenue_account(session, "VND").id
        source = ledger.receipts_account(session, "vietqr", "VND").id
    token = staff_token(merchant.id)
    year_start = datetime(2025, 11, 1, tzinfo=UTC)
    span = 365 * 86_400
    started = time.perf_counter()
    with psycopg.connect(dsn(servers)) as conn:
        params = {
            "n": lines,
            "start": year_start,
            "span": span,
            "payable": merchant.account_id,
            "fee": fee_account,
            "source": source,
        }
        conn.execute(
            "INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)"
            " SELECT 'je_bench_' || lpad(g::text, 9, '0'),"
            " CASE WHEN g %% 40 = 0 THEN 'refund' ELSE 'payment' END,"
            " 'bench:' || g, 'pi_bench_' || g, 'market_sale bench ' || g,"
            " %(start)s + (g::bigint * %(span)s / %(n)s) * interval '1 second'"
            " FROM generate_series(1, %(n)s) g",
            params,
        )
        conn.execute(
            "INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)"
            " SELECT e.id, a.account, 'VND',"
            " CASE WHEN e.kind = 'payment' THEN a.amount ELSE -a.amount END, e.posted_at"
            " FROM journal_entry e CROSS JOIN"
            " (VALUES (%(source)s, 45000), (%(payable)s, -44550), (%(fee)s, -450))"
            " AS a(account, amount) WHERE e.id LIKE 'je_bench_%%'",
            params,
        )
        conn.execute("ANALYZE journal_line")
        conn.execute("ANALYZE journal_entry")
        conn.commit()
    print(
        f"\n2. Statement page, a merchant with {lines:,} ledger lines over a year"
        f" (set up in {time.perf_counter() - started:.0f} s)"
    )
    query = "from=2026-05-01&to=2026-05-31&limit=100"
    path = f"/v1/merchants/{merchant.id}/statement?{query}"
    server = hanoipay_api(
        servers,
        {"HANOIPAY_JWT_KEYS": json.dumps(JWT_KEYS), "HANOIPAY_JWT_ACTIVE_KID": "bench"},
        port=free_port(),
        workers=2,
    )
    try:
        headers = {"Authorization": f"Bearer {token}"}
        t0 = time.perf_counter()
        first = httpx.get(f"http://127.0.0.1:{server.port}{path}", headers=headers, timeout=60)
        cold = time.perf_counter() - t0
        assert first.status_code == 200, first.text
        body = first.json()
        deep = f"{path}&starting_after={body['next_cursor']}"
        alone = wrk(server.port, path, headers, seconds, connections=1)
        page = wrk(server.port, path, headers, seconds)
        later = wrk(server.port, deep, headers, seconds)
        noop = wrk(server.port, "/healthz", {}, seconds)
    finally:
        server.stop()
    sql = raw_page_times(servers, merchant.account_id, fee_account)
    print(f"   first request (computes and caches the opening balance): {cold * 1000:.0f} ms")
    line("GET statement, first page, one reader at a time", alone, "target: <= 200 ms")
    line("GET statement, first page, 4 readers at once", page)
    line("GET statement, second page, 4 readers at once", later)
    line("baseline, GET /healthz (no work)", noop)
    line("baseline, the page's SQL alone (psycopg)", sql)


def line(label: str, figures: tuple[float, ...], note: str = "") -> None:
    """One figure: p50 and p99 in ms, and a rate when there is one."""
    rate = f"  {figures[2]:,.0f} req/s" if len(figures) > 2 else ""
    print(f"   {label + ':':<50} p50 {figures[0]:7.1f} ms  p99 {figures[1]:7.1f} ms{rate}  {note}".rstrip())


def free_port() -> int:
    """A TCP port nobody listens on now (benchmarks of other services may run at the same time)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(
    port: int, path: str, headers: dict[str, str], seconds: int, connections: int = 4
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) from wrk with `connections` connections on one thread."""
    script = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    out = subprocess.run(
        [
            "/usr/bin/wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            lua.name,
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(lua.name)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    found = {p: float(v) * scale[u] for p, v, u in _LATENCY.findall(out)}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return found["50"], found["99"], rate


def raw_page_times(servers: BenchServers, account: str, fee_account: str) -> tuple[float, float]:
    from merchants.service.statements import _ROWS

    sql = str(_ROWS).replace(":account", "%(account)s").replace(":fee_account", "%(fee_account)s")
    sql = sql.replace(":start", "%(start)s").replace(":end", "%(end)s").replace(":after_at", "%(after_at)s")
    sql = sql.replace(":after_id", "%(after_id)s").replace(":limit", "%(limit)s")
    params = {
        "account": account,
        "fee_account": fee_account,
        "start": datetime(2026, 4, 30, 17, tzinfo=UTC),
        "end": datetime(2026, 5, 31, 17, tzinfo=UTC),
        "after_at": datetime(1970, 1, 1, tzinfo=UTC),
        "after_id": 0,
        "limit": 101,
    }
    times = []
    with psycopg.connect(dsn(servers)) as conn:
        for _ in range(200):
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), percentile(times, 0.99)


# 3. Live feed -------------------------------------------------------------------------------------------


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


# An RQ worker that runs each job in its own process, as `hanoipay worker` does not: RQ's default worker
# forks a work horse per job, which costs this machine hundreds of milliseconds per event.
SIMPLE_WORKER = """
from rq import Queue, SimpleWorker
from city.domains import register_domains
from hanoipay import db, jobs
from hanoipay.settings import get_settings
settings = get_settings()
db.init_engine(settings.database_url)
connection = jobs.init_redis(settings.redis_url)
register_domains()
SimpleWorker([Queue(settings.queue_name, connection=connection)], connection=connection).work()
"""


def bench_feed(servers: BenchServers, streams: int, payments: int, worker_kind: str, rate: float) -> None:
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
                    "transaction_id": f"FT{worker_kind}{n:08d}",
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
    worker_name = "hanoipay worker (RQ's forking Worker)" if worker_kind == "fork" else "RQ SimpleWorker"
    print(
        f"\n3. Live feed: {len(feeds)} open streams ({merchants} merchants × {per_merchant}),"
        f" {payments} payments by webhook at {rate:g}/s, events delivered by {worker_name}"
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="reduced sizes, for iterating")
    parser.add_argument("--students", type=int)
    parser.add_argument("--lines", type=int)
    parser.add_argument("--streams", type=int)
    parser.add_argument("--payments", type=int)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration")
    parser.add_argument("--rate", type=float, default=5.0, help="bank webhooks per second in the feed test")
    parser.add_argument("--only", choices=["invoices", "statement", "feed"])
    parser.add_argument(
        "--worker", choices=["simple", "fork", "both"], default="both", help="the RQ worker delivering events"
    )
    args = parser.parse_args()
    students = args.students or (5_000 if args.small else 50_000)
    lines = args.lines or (100_000 if args.small else 1_000_000)
    streams = args.streams or (100 if args.small else 500)
    payments = args.payments or (40 if args.small else 200)
    get_settings().jwt_keys = JWT_KEYS
    get_settings().jwt_active_kid = "bench"
    servers = start()
    try:
        if args.only in (None, "invoices"):
            bench_invoices(servers, students)
        if args.only in (None, "statement"):
            bench_statement(servers, lines, args.seconds)
        if args.only in (None, "feed"):
            for kind in ("simple", "fork") if args.worker == "both" else (args.worker,):
                bench_feed(servers, streams, payments, kind, args.rate)
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
