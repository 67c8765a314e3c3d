"""The other money paths over HTTP beside the ceiling of their own writes, and VietQR PNGs per second.

    .venv/bin/python bench/providers.py [--seconds 5] [--rounds 3] [--connections 16] [--per-run 6000]

Webhooks: each request is a bank notification signed with HMAC-SHA256, verified, matched to a waiting
VietQR intent by its reference; the intent succeeds and the ledger is posted, through `hanoipay api`.
Refunds: partial refunds of confirmed wallet payments, an Idempotency-Key on each. Each is loaded by wrk
alternately with a hand-written endpoint doing the same writes (`bench/ceiling.py`).
PNGs: `payments.providers.vietqr.image.render_png` (code + caption) beside a bare `qrcode` PNG of the
same payload.
"""

import argparse
import io
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import qrcode
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HttpServer,
    WrkResult,
    api_jwt_env,
    hanoipay_api,
    run_wrk,
    start,
    uvicorn_app,
    write_requests,
)
from bench.payments import PRICE, make_merchants, make_payers
from hanoipay.auth.models import User
from hanoipay.auth.service import issue_token
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from payments import balances, intents
from payments.models import PaymentIntent
from payments.providers.vietqr import payload_for
from payments.providers.vietqr.image import render_png
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, apply_notification, parse_notification, sign

KID = "bench-bank"


def waiting_intents(n: int) -> list[tuple[str, int]]:
    """`n` VietQR intents waiting for their transfer: (reference, amount)."""
    merchant_id = make_merchants(1)[0][0]
    who = make_payers(1, funds=1)[0][0]
    out = []
    for start_at in range(0, n, 500):
        with job_session() as session:
            for _ in range(start_at, min(n, start_at + 500)):
                intent = intents.create_intent(
                    session,
                    who,
                    amount=PRICE,
                    currency="VND",
                    purpose="merchant_payment",
                    merchant_id=merchant_id,
                    provider="vietqr",
                    confirm=True,
                )
                assert intent.reference is not None
                out.append((intent.reference, intent.amount))
    return out


def png_rates(n: int) -> tuple[float, float]:
    """PNGs per second: the full render, and a bare qrcode PNG of the same payload."""
    with job_session() as session:
        intent = session.scalars(
            select(PaymentIntent).where(PaymentIntent.provider == "vietqr").limit(1)
        ).one()
        payload, reference = payload_for(intent), intent.reference
    t0 = time.perf_counter()
    for _ in range(n):
        render_png(
            payload,
            bank_short_name="VCB",
            account_holder="CONG TY HANOIPAY",
            amount=PRICE,
            reference=reference,
        )
    ours = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n):
        qrcode.make(payload).save(io.BytesIO())
    return ours, n / (time.perf_counter() - t0)


def bank_requests(
    path: str, waiting: list[tuple[str, int]], secret: str
) -> list[tuple[str, str, dict[str, str], str]]:
    """One signed notification per waiting intent (signed now: the signature is good for five minutes)."""
    requests = []
    for reference, amount in waiting:
        body = json.dumps(
            {
                "transaction_id": f"FT{new_id('x')[2:]}",
                "account": get_settings().vietqr_account,
                "amount": amount,
                "description": f"MBVCB.{reference}.CT",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        )
        headers = {
            SIGNATURE_HEADER: sign(body.encode(), kid=KID, secret=secret),
            "Content-Type": "application/json",
        }
        requests.append(("POST", path, headers, body))
    return requests


def refund_requests(
    path: str, intent_ids: list[str], token: str
) -> list[tuple[str, str, dict[str, str], str]]:
    """A partial refund (1 000 VND) of each intent in turn, each with a fresh Idempotency-Key."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": "re-{n}",
    }
    return [("POST", path, headers, json.dumps({"payment_intent": i, "amount": 1_000})) for i in intent_ids]


def paid_intents(n: int) -> list[str]:
    """`n` confirmed wallet payments of 8 000 VND, to refund a little at a time."""
    merchant_id = make_merchants(1)[0][0]
    who, wallet_id, _ = make_payers(1, funds=PRICE * n * 2)[0]
    ids = []
    for start_at in range(0, n, 500):
        with job_session() as session:
            for _ in range(start_at, min(n, start_at + 500)):
                intent = intents.create_intent(
                    session, who, amount=PRICE, currency="VND", purpose="merchant_payment",
                    merchant_id=merchant_id, provider="wallet", wallet_id=wallet_id, confirm=True,
                )  # fmt: skip
                ids.append(intent.id)
    return ids


def compare(
    label: str,
    runs: list[tuple[str, HttpServer, Callable[[], Path]]],
    args: argparse.Namespace,
    *,
    once: bool = False,
) -> None:
    """Alternate HanoiPay and its ceiling, `args.rounds` runs each, and print the medians and the ratio.

    With `once` each prepared request is sent at most once a run (see `run_wrk`).
    """
    results: dict[str, list[WrkResult]] = {name: [] for name, _, _ in runs}
    for round_number in range(args.rounds):
        for position, (name, server, requests) in enumerate(runs):
            result = run_wrk(
                server,
                requests(),
                seconds=args.seconds,
                connections=args.connections,
                run=f"{label[:3]}{round_number}-{position}",
                once=once,
            )
            assert result.non_2xx == 0, f"{name}: {result}\n{server.log_tail()}"
            results[name].append(result)
    print(f"\n{label}\n{'':<34}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms each':>13}")
    best = {name: sorted(r, key=lambda x: x.rate)[len(r) // 2] for name, r in results.items()}
    for name, r in best.items():
        print(f"{name:<34}{r.rate:>8.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.cpu_ms_per_request:>13.2f}")
    ours, ceiling = (best[name].rate for name, _, _ in runs)
    print(f"ratio to the ceiling: {ours / ceiling:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--per-run", type=int, default=6_000, help="waiting VietQR intents made for each run")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--pngs", type=int, default=300)
    args = parser.parse_args()
    servers = start()
    secret = secrets.token_urlsafe(32)
    get_settings().bank_webhook_secrets = {KID: secret}
    env = api_jwt_env() | {"HANOIPAY_BANK_WEBHOOK_SECRETS": json.dumps({KID: secret})}
    workdir = Path(tempfile.mkdtemp(prefix="hanoipay-bench-providers-"))
    try:
        refundable = paid_intents(args.per_run)  # also opens the fee and clearing accounts the ceiling reads
        bank_says_once(secret)
        hanoipay = hanoipay_api(servers, env, 18_741, args.api_workers)
        ceiling = uvicorn_app(servers, "bench.ceiling:app", env, 18_742, args.api_workers)
        try:

            def webhooks(path: str) -> Callable[[], Path]:
                def make() -> Path:
                    file = workdir / f"bank{path.replace('/', '-')}.tsv"
                    return write_requests(file, bank_requests(path, waiting_intents(args.per_run), secret))

                return make

            with job_session() as session:
                finance = session.get(User, make_payers(1, funds=1)[0][0].id)
                assert finance is not None
                finance.roles = ["finance"]
            with job_session() as session:
                user = session.get(User, finance.id)
                assert user is not None
                token = issue_token(user, lifetime=timedelta(hours=2))[0]

            def refunds(path: str) -> Callable[[], Path]:
                file = write_requests(
                    workdir / f"refund{path.replace('/', '-')}.tsv", refund_requests(path, refundable, token)
                )
                return lambda: file

            print(
                f"HTTP, wrk (1 thread, {args.connections} connections, {args.seconds:.0f} s a run),"
                f" {args.api_workers} uvicorn workers each; median of {args.rounds} alternating runs"
            )
            compare(
                "Signed bank webhooks paying a waiting VietQR intent",
                [("HanoiPay", hanoipay, webhooks("/v1/webhooks/bank")),
                 ("ceiling, statement by statement", ceiling, webhooks("/ceiling/bank_webhook"))],
                args,
                once=True,  # a notification sent twice is a duplicate, far cheaper than the first
            )  # fmt: skip
            compare(
                "Partial wallet refunds, an Idempotency-Key on each",
                [("HanoiPay", hanoipay, refunds("/v1/refunds")),
                 ("ceiling, statement by statement", ceiling, refunds("/ceiling/refund"))],
                args,
            )  # fmt: skip
        finally:
            hanoipay.stop()
            ceiling.stop()
        with job_session() as session:
            assert balances.verify(session).ok, "ledger verification failed after the benchmark"
        print("\nhanoipay ledger verify after every run: OK")
        ours, bare = png_rates(args.pngs)
        print(
            f"\nVietQR PNGs: {ours:.0f}/s with caption; baseline, bare qrcode PNG: {bare:.0f}/s"
            f" (ratio {ours / bare:.2f})"
        )
    finally:
        servers.stop()


def bank_says_once(secret: str) -> None:
    """One notification through the service, so the receipts account exists before the ceiling reads it."""
    reference, amount = waiting_intents(1)[0]
    body = json.dumps(
        {"transaction_id": "FT-FIRST", "account": get_settings().vietqr_account, "amount": amount,
         "description": reference, "occurred_at": datetime.now(UTC).isoformat()}
    ).encode()  # fmt: skip
    with job_session() as session:
        apply_notification(session, parse_notification(body))


if __name__ == "__main__":
    main()
