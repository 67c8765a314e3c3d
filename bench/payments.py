"""Wallet payments per second: service layer vs raw SQL, and over HTTP against a hand-written ceiling.

    .venv/bin/python bench/payments.py [--payments 4000] [--threads 4] [--http-seconds 10]
        [--connections 16] [--rounds 3] [--rate 50] [--fixed-seconds 20] [--api-workers 2]

Every figure is printed beside a baseline measured in the same run on the same servers. Over HTTP the
load generator is wrk (`bench/wrk/requests.lua`), which costs the servers' two cores almost nothing per
request; HanoiPay (`hanoipay api`) and the ceiling (`bench/ceiling.py`, the same row writes by hand behind
the same JWT and idempotency work) run under the same uvicorn with the same number of workers, loaded
alternately, three runs each.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ceiling import install_function
from bench.common import (
    BenchServers,
    HttpServer,
    WrkResult,
    api_jwt_env,
    hanoipay_api,
    new_user,
    run_wrk,
    start,
    uvicorn_app,
    write_requests,
)
from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, issue_token
from hanoipay.db import RELAY_AFTER_COMMIT, job_session
from hanoipay.ids import new_id
from payments import balances, intents, ledger
from payments.merchants import open_payee
from payments.topups import record_manual_topup
from payments.wallets import open_wallet

ADMIN = Principal(id="usr_bench_admin", kind="user", roles=frozenset({"admin", "finance"}))
PRICE = 8_000


def make_merchants(n: int) -> list[tuple[str, str]]:
    out = []
    with job_session() as session:
        for i in range(n):
            m = open_payee(session, name=f"Bench merchant {i}", fee_bps=100, currency="VND")
            out.append((m.id, m.account_id))
    return out


def make_payers(n: int, funds: int) -> list[tuple[Principal, str, str]]:
    payers = []
    with job_session() as session:
        for _ in range(n):
            user = new_user(session)
            who = Principal(id=user.id, kind="user", roles=frozenset(user.roles))
            wallet = open_wallet(session, who)
            record_manual_topup(session, ADMIN, wallet.id, amount=funds, reason="bench")
            payers.append((who, wallet.id, wallet.account_id))
    return payers


def run_threads(threads: int, total: int, work: Callable[[int, int], None]) -> float:
    """Run `work(thread, i)` `total` times over `threads` threads; returns operations per second."""
    per_thread = total // threads
    started = time.perf_counter()

    def thread(t: int) -> None:
        for i in range(per_thread):
            work(t, i)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(thread, range(threads)))
    return per_thread * threads / (time.perf_counter() - started)


def service_rate(
    payers: list[tuple[Principal, str, str]], merchants: list[tuple[str, str]], total: int
) -> float:
    """Create + confirm + ledger posting through `payments.intents`, one transaction each.

    As in an API request, the outbox row is left to the worker's relayer (which moves up to 1 000 rows
    to Redis in one round trip), not relayed by the session after its commit as a job's session does.
    """

    def pay(t: int, i: int) -> None:
        who, wallet_id, _ = payers[t]
        merchant_id = merchants[(t * 7 + i) % len(merchants)][0]
        with job_session() as session:
            session.info[RELAY_AFTER_COMMIT] = False
            intents.create_intent(
                session,
                who,
                amount=PRICE,
                currency="VND",
                purpose="merchant_payment",
                merchant_id=merchant_id,
                provider="wallet",
                wallet_id=wallet_id,
                confirm=True,
            )

    return run_threads(len(payers), total, pay)


def raw_rate(
    dsn: str,
    payers: list[tuple[Principal, str, str]],
    merchants: list[tuple[str, str]],
    total: int,
    fee_acct: str,
) -> float:
    """The same row writes in hand-written SQL over psycopg: the baseline the service layer is held to."""
    conns = [psycopg.connect(dsn) for _ in payers]

    def pay(t: int, i: int) -> None:
        who, wallet_id, wallet_acct = payers[t]
        merchant_id, merchant_acct = merchants[(t * 7 + i) % len(merchants)]
        pi, je, ev = new_id("pi"), new_id("je"), new_id("evt")
        fee = PRICE // 100
        with conns[t].transaction():
            c = conns[t]
            c.execute(
                "INSERT INTO payment_intent (id, merchant_id, payer_id, purpose, amount, currency, status,"
                " capture_method, provider, wallet_id, amount_capturable, amount_received, amount_refunded,"
                " fee_amount, metadata, created_by, updated_at) VALUES (%s,%s,%s,'merchant_payment',%s,'VND',"
                "'requires_confirmation','automatic','wallet',%s,0,0,0,0,'{}',%s,now())",
                (pi, merchant_id, who.id, PRICE, wallet_id, who.id),
            )
            c.execute("SELECT * FROM payment_intent WHERE id = %s FOR UPDATE", (pi,))
            c.execute(
                "UPDATE account_balance SET posted = posted - %s, updated_at = now()"
                " WHERE account_id = %s AND posted - held - %s >= 0 RETURNING account_id",
                (PRICE, wallet_acct, PRICE),
            )
            c.execute(
                "INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)"
                " VALUES (%s,'payment',%s,%s,'bench',now())",
                (je, f"payment:{pi}", pi),
            )
            c.execute(
                "INSERT INTO balance_delta (account_id, amount) VALUES (%s,%s),(%s,%s)",
                (merchant_acct, PRICE - fee, fee_acct, fee),
            )
            c.execute(
                "INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)"
                " VALUES (%s,%s,'VND',%s,now()),(%s,%s,'VND',%s,now()),(%s,%s,'VND',%s,now())",
                (je, wallet_acct, PRICE, je, merchant_acct, fee - PRICE, je, fee_acct, -fee),
            )
            c.execute(
                "UPDATE payment_intent SET status='succeeded', amount_received=%s, fee_amount=%s,"
                " succeeded_at=now(), updated_at=now() WHERE id=%s",
                (PRICE, fee, pi),
            )
            c.execute(
                "INSERT INTO event (id, type, merchant_id, object_id, data)"
                " VALUES (%s,'payment_intent.succeeded',%s,%s,%s)",
                (ev, merchant_id, pi, json.dumps({"id": pi})),
            )
            c.execute(
                "INSERT INTO outbox (job, kwargs) VALUES ('payments.deliver_event', %s) RETURNING id",
                (json.dumps({"event_id": ev}),),
            )

    rate = run_threads(len(payers), total, pay)
    for c in conns:
        c.close()
    return rate


TARGETS = (
    ("HanoiPay", "hanoipay", "/v1/payment_intents"),
    ("ceiling, statement by statement", "ceiling", "/ceiling/statements"),
    ("ceiling, one PL/pgSQL call", "ceiling", "/ceiling/function"),
)


def payment_requests(
    people: list[tuple[Principal, str, str]], merchants: list[tuple[str, str]], path: str
) -> list[tuple[str, str, dict[str, str], str]]:
    """One request per payer (cycled by wrk), each to a merchant in turn, with a fresh Idempotency-Key."""
    requests = []
    with job_session() as session:
        for i, (who, wallet_id, _) in enumerate(people):
            user = session.get(User, who.id)
            assert user is not None
            token, _ = issue_token(user, lifetime=timedelta(hours=10))
            body = {
                "amount": PRICE,
                "currency": "VND",
                "merchant_id": merchants[i % len(merchants)][0],
                "purpose": "merchant_payment",
                "provider": "wallet",
                "wallet_id": wallet_id,
                "confirm": True,
            }
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": "bench-{n}",
            }
            requests.append(("POST", path, headers, json.dumps(body)))
    return requests


def payments_made(servers: BenchServers) -> int:
    """Payment intents in the database: each answered request of a run must have made one."""
    dsn = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM payment_intent").fetchone()
    assert row is not None
    return int(row[0])


def median(results: list[WrkResult]) -> WrkResult:
    """The run with the median rate."""
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


def http_comparison(servers: BenchServers, args: argparse.Namespace, workdir: Path) -> None:
    """HanoiPay against both ceilings over HTTP, loaded by wrk, alternating, three rounds each."""
    env = api_jwt_env()
    install_function(servers.database_url.replace("postgresql+psycopg://", "postgresql://"))
    apps = {
        "hanoipay": hanoipay_api(servers, env, 18_731, args.api_workers),
        "ceiling": uvicorn_app(servers, "bench.ceiling:app", env, 18_732, args.api_workers),
    }
    try:
        print(
            f"\nHTTP, wrk (1 thread, {args.connections} connections, {args.http_seconds:.0f} s a run),"
            f" {args.api_workers} uvicorn workers each; an Idempotency-Key on every request;"
            f" median of {args.rounds} alternating runs"
        )
        header = f"{'':<34}{'payments/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/payment':>16}"
        for label, n_merchants in (("spread over 50 merchants", 50), ("one hot merchant", 1)):
            merchants = make_merchants(n_merchants)
            people = make_payers(args.payers, funds=10**11)
            files = {
                path: write_requests(workdir / f"{n_merchants}{path.replace('/', '-')}.tsv",
                                     payment_requests(people, merchants, path))
                for _, _, path in TARGETS
            }  # fmt: skip
            for position, (_, app, path) in enumerate(TARGETS):  # warm up: connections, statements, caches
                run_wrk(
                    apps[app], files[path], seconds=2, connections=args.connections,
                    run=f"w{n_merchants}-{position}",
                )  # fmt: skip
            runs: dict[str, list[WrkResult]] = {path: [] for _, _, path in TARGETS}
            for round_number in range(args.rounds):
                for position, (_, app, path) in enumerate(TARGETS):
                    # Each run's Idempotency-Keys are its own: with the same payers, a key another target
                    # used in the same round would be answered from storage, not paid.
                    before = payments_made(servers)
                    result = run_wrk(
                        apps[app], files[path], seconds=args.http_seconds, connections=args.connections,
                        run=f"r{n_merchants}-{round_number}-{position}",
                    )  # fmt: skip
                    assert result.non_2xx == 0, result
                    assert result.socket_errors == 0, result
                    made = payments_made(servers) - before
                    assert made >= result.requests, f"{path}: {result.requests} answers, {made} payments"
                    runs[path].append(result)
            print(f"\n{label}\n{header}")
            best = {path: median(results) for path, results in runs.items()}
            for name, _, path in TARGETS:
                r = best[path]
                print(
                    f"{name:<34}{r.rate:>11.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.cpu_ms_per_request:>16.2f}"
                )
            ours = best["/v1/payment_intents"].rate
            print(
                f"ratio to the statement-by-statement ceiling: {ours / best['/ceiling/statements'].rate:.2f}"
                f" (target >= 0.6); to the one-call ceiling: {ours / best['/ceiling/function'].rate:.2f}"
            )
        fixed_rate(apps, args, workdir)
    finally:
        for server in apps.values():
            server.stop()


def fixed_rate(apps: dict[str, HttpServer], args: argparse.Namespace, workdir: Path) -> None:
    """Latency at a fixed offered rate, as a city's traffic arrives, for HanoiPay and the ceiling."""
    merchants = make_merchants(20)
    people = make_payers(args.payers, funds=10**11)
    connections = 10
    delay_ms = round(connections * 1000 / args.rate)
    print(
        f"\nFixed rate: {args.rate} payments/s offered for {args.fixed_seconds:.0f} s"
        f" ({connections} connections, each sending every {delay_ms} ms)"
    )
    print(f"{'':<34}{'done/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'CPU ms/payment':>16}")
    for name, app, path in TARGETS[:2]:
        requests = write_requests(
            workdir / f"fixed{path.replace('/', '-')}.tsv", payment_requests(people, merchants, path)
        )
        r = run_wrk(
            apps[app], requests, seconds=args.fixed_seconds, connections=connections, delay_ms=delay_ms,
            run=f"fixed-{app}",
        )  # fmt: skip
        assert r.non_2xx == 0, r
        print(
            f"{name:<34}{r.rate:>8.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.p999_ms:>10.1f}{r.cpu_ms_per_request:>16.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=4_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--http-seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--payers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=50, help="the fixed rate, payments/s")
    parser.add_argument("--fixed-seconds", type=float, default=20)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args()
    servers = start()
    dsn = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with job_session() as session:
            fee_acct = ledger.fee_revenue_account(session, "VND").id
        funds = PRICE * args.payments * 2
        rows = []
        cases = () if args.skip_service else (("spread over 50 merchants", 50), ("one hot merchant", 1))
        for label, n_merchants in cases:
            merchants = make_merchants(n_merchants)
            payers = make_payers(args.threads, funds)
            raw = raw_rate(dsn, payers, merchants, args.payments, fee_acct)
            payers = make_payers(args.threads, funds)
            service = service_rate(payers, merchants, args.payments)
            rows.append((label, service, raw))
        print(f"\nWallet payments (create + confirm + ledger), {args.payments} each, {args.threads} threads")
        print(f"{'case':<28}{'service/s':>12}{'raw SQL/s':>12}{'ratio':>8}")
        for label, service, raw in rows:
            print(f"{label:<28}{service:>12.0f}{raw:>12.0f}{service / raw:>8.2f}")
        with job_session() as session:
            assert balances.verify(session).ok, "ledger verification failed after the benchmark"
        if not args.skip_http:
            with tempfile.TemporaryDirectory() as workdir:
                http_comparison(servers, args, Path(workdir))
            with job_session() as session:
                assert balances.verify(session).ok, "ledger verification failed after the HTTP runs"
            print("\nhanoipay ledger verify after every run: OK")
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
