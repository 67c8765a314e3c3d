"""Wallet payments per second: service layer vs a raw-SQL baseline, spread and hot merchant, and over HTTP.

    .venv/bin/python bench/payments.py [--payments 4000] [--threads 4] [--http-seconds 15] [--clients 32]

Every figure is printed beside a baseline measured in the same run on the same servers.
"""

import argparse
import itertools
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ApiServer, BenchServers, LoadResult, Request, run_load, start
from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, create_user, issue_token
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from payments import intents, ledger
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
        for i in range(n):
            user = create_user(
                session,
                email=f"payer{i}-{new_id('x').lower()}@bench.vn",
                password="bench-password",
                full_name="Bench",
                roles=["customer"],
            )
            who = Principal(id=user.id, kind="user", roles=frozenset(user.roles))
            wallet = open_wallet(session, who)
            record_manual_topup(session, ADMIN, wallet.id, amount=funds, reason="bench")
            payers.append((who, wallet.id, wallet.account_id))
    return payers


def run_threads(threads: int, total: int, work: Callable[[int, int], None]) -> float:
    """Run `work(thread, i)` `total` times over `threads` threads; returns operations per second."""
    per_thread = total // threads
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda t: [work(t, i) for i in range(per_thread)], range(threads)))
    return per_thread * threads / (time.perf_counter() - started)


def service_rate(
    payers: list[tuple[Principal, str, str]], merchants: list[tuple[str, str]], total: int
) -> float:
    """Create + confirm + ledger posting through `payments.intents`, one transaction each."""

    def pay(t: int, i: int) -> None:
        who, wallet_id, _ = payers[t]
        merchant_id = merchants[(t * 7 + i) % len(merchants)][0]
        with job_session() as session:
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


def http_rate(
    servers: BenchServers, payers: int, seconds: float, clients: int, workers: int
) -> tuple[LoadResult, LoadResult, int]:
    """Confirmed wallet payments per second over HTTP, and the merchant balance they applied."""
    merchant_id = make_merchants(1)[0][0]
    people = make_payers(payers, funds=10**11)
    keys = {"bench": secrets.token_urlsafe(32)}
    get_settings().jwt_keys = keys
    bodies = []
    with job_session() as session:
        for who, wallet_id, _ in people:
            user = session.get(User, who.id)
            assert user is not None
            body = {
                "amount": PRICE,
                "currency": "VND",
                "merchant_id": merchant_id,
                "purpose": "merchant_payment",
                "provider": "wallet",
                "wallet_id": wallet_id,
                "confirm": True,
            }
            headers = {"Authorization": f"Bearer {issue_token(user)[0]}", "content-type": "application/json"}
            bodies.append((headers, json.dumps(body).encode()))
    turn = itertools.cycle(bodies)

    def next_payment() -> Request:
        headers, body = next(turn)
        return "/v1/payment_intents", headers, body

    server = ApiServer(servers, {"HANOIPAY_JWT_KEYS": json.dumps(keys)}, workers=workers)
    try:
        result = run_load(server.port, next_payment, 201, seconds, clients)
        noop = run_load(server.port, lambda: ("/healthz", {}, b""), 200, seconds, clients)
    finally:
        server.stop()
    with job_session() as session:
        applied = ledger.balance(session, make_merchant_account(merchant_id)).posted
    return result, noop, applied


def make_merchant_account(merchant_id: str) -> str:
    from payments.models import Merchant

    with job_session() as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        return merchant.account_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=4_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--http-seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=32)
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
            assert ledger.verify(session).ok, "ledger verification failed after the benchmark"
        if not args.skip_http:
            load, noop, applied = http_rate(
                servers, args.clients, args.http_seconds, args.clients, args.api_workers
            )
            rate, p50, p99 = load.rate, load.p50_ms, load.p99_ms
            print(
                f"\nHTTP: POST /v1/payment_intents confirm=true, {args.clients} clients,"
                f" {args.api_workers} uvicorn workers"
            )
            print(
                f"  {rate:.0f} confirmed payments/s applied to balances; p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
            print(
                f"  merchant balance after the run: {applied:,} VND"
                f" ({applied // (PRICE - PRICE // 100):,} payments)"
            )
            print(f"  baseline, the same server answering GET /healthz (no work): {noop.rate:.0f}/s")
            if rows:
                print(f"  baseline, service layer in-process (spread): {rows[0][1]:.0f}/s")
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
