"""Signed bank webhooks applied per second, and VietQR PNGs rendered per second, each beside a baseline.

    .venv/bin/python bench/providers.py [--intents 3000] [--seconds 10] [--clients 32] [--pngs 300]

Webhooks: each request is a bank notification signed with HMAC-SHA256, verified, matched to a waiting
VietQR intent by its reference, the intent succeeds and the ledger is posted, through `hanoipay api`.
The baseline is confirmed wallet payments over the same HTTP server in the same run.
PNGs: `payments.providers.vietqr.image.render_png` (code + caption) beside a bare `qrcode` PNG of the
same payload.
"""

import argparse
import io
import itertools
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import qrcode
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ApiServer, LoadResult, Request, run_load, start
from bench.payments import PRICE, make_merchants, make_payers
from hanoipay.auth.models import User
from hanoipay.auth.service import issue_token
from hanoipay.db import job_session
from hanoipay.settings import get_settings
from payments import intents, ledger
from payments.models import PaymentIntent
from payments.providers.vietqr import payload_for
from payments.providers.vietqr.image import render_png
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=int, default=3_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pngs", type=int, default=300)
    args = parser.parse_args()
    servers = start()
    secret = secrets.token_urlsafe(32)
    jwt_keys = {"bench": secrets.token_urlsafe(32)}
    get_settings().jwt_keys = jwt_keys
    try:
        waiting = iter(waiting_intents(args.intents))
        counter = itertools.count()

        def next_webhook() -> Request | None:
            item = next(waiting, None)
            if item is None:
                return None
            reference, amount = item
            body = json.dumps(
                {
                    "transaction_id": f"FT{next(counter):012d}",
                    "account": "1900100200300",
                    "amount": amount,
                    "description": f"MBVCB.{reference}.CT",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
            ).encode()
            headers = {
                SIGNATURE_HEADER: sign(body, kid=KID, secret=secret),
                "content-type": "application/json",
            }
            return "/v1/webhooks/bank", headers, body

        payer, wallet_id, _ = make_payers(1, funds=10**11)[0]
        merchant_id = make_merchants(1)[0][0]
        with job_session() as session:
            user = session.get(User, payer.id)
            assert user is not None
            token = issue_token(user)[0]
        payment = json.dumps(
            {
                "amount": PRICE,
                "currency": "VND",
                "merchant_id": merchant_id,
                "purpose": "merchant_payment",
                "provider": "wallet",
                "wallet_id": wallet_id,
                "confirm": True,
            }
        ).encode()

        def next_payment() -> Request:
            return (
                "/v1/payment_intents",
                {"Authorization": f"Bearer {token}", "content-type": "application/json"},
                payment,
            )

        env = {
            "HANOIPAY_JWT_KEYS": json.dumps(jwt_keys),
            "HANOIPAY_BANK_WEBHOOK_SECRETS": json.dumps({KID: secret}),
        }
        server = ApiServer(servers, env)
        try:
            webhooks: LoadResult = run_load(server.port, next_webhook, 200, args.seconds, args.clients)
            wallet: LoadResult = run_load(server.port, next_payment, 201, args.seconds, args.clients)
        finally:
            server.stop()
        with job_session() as session:
            succeeded = session.scalar(
                select(func.count())
                .select_from(PaymentIntent)
                .where(PaymentIntent.provider == "vietqr", PaymentIntent.status == "succeeded")
            )
            assert ledger.verify(session).ok, "ledger verification failed after the benchmark"
        ours, bare = png_rates(args.pngs)
        print(f"\nHTTP, {args.clients} clients, 2 uvicorn workers, {args.seconds:.0f} s each")
        print(
            f"  signed bank webhooks applied: {webhooks.rate:6.0f}/s  p50 {webhooks.p50_ms:.0f} ms  "
            f"p99 {webhooks.p99_ms:.0f} ms  ({succeeded} VietQR intents succeeded)"
        )
        print(
            f"  baseline, wallet payments:    {wallet.rate:6.0f}/s  p50 {wallet.p50_ms:.0f} ms  "
            f"p99 {wallet.p99_ms:.0f} ms"
        )
        print(
            f"\nVietQR PNGs: {ours:.0f}/s with caption; baseline, bare qrcode PNG: {bare:.0f}/s"
            f" (ratio {ours / bare:.2f})"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
