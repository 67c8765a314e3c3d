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
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchServers, HttpServer, free_port, hanoipay_api, run_wrk_get, start
from bench.merchants_common import ADMIN, JWT_KEYS, dsn, line, percentile, staff_token
from bench.merchants_feed import bench_feed
from bench.merchants_invoices import bench_invoices
from hanoipay.db import job_session
from hanoipay.settings import get_settings
from merchants.service.onboarding import register_merchant
from payments import ledger

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
        alone = wrk(server, path, headers, seconds, connections=1)
        page = wrk(server, path, headers, seconds)
        later = wrk(server, deep, headers, seconds)
        noop = wrk(server, "/healthz", {}, seconds)
    finally:
        server.stop()
    sql = raw_page_times(servers, merchant.account_id, fee_account)
    print(f"   first request (computes and caches the opening balance): {cold * 1000:.0f} ms")
    line("GET statement, first page, one reader at a time", alone, "target: <= 200 ms")
    line("GET statement, first page, 4 readers at once", page)
    line("GET statement, second page, 4 readers at once", later)
    line("baseline, GET /healthz (no work)", noop)
    line("baseline, the page's SQL alone (psycopg)", sql)


def wrk(
    server: HttpServer, path: str, headers: dict[str, str], seconds: int, connections: int = 4
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) of wrk repeating one GET; a non-2xx answer or socket error fails."""
    result = run_wrk_get(server, path, headers, seconds=seconds, connections=connections)
    if result.non_2xx or result.socket_errors:
        raise RuntimeError(f"GET {path}: {result}\n{server.log_tail()}")
    return result.p50_ms, result.p99_ms, result.rate


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
            bench_feed(servers, streams, payments, args.rate)
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
