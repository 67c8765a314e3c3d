"""Factory functions that make the data a test needs, visibly, in the test's own words."""

from typing import Any

import httpx
import redis
from rq import Queue, SimpleWorker

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, create_user, issue_token
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.jobs import relay_all
from payments.merchants import create_merchant
from payments.models import Merchant, Wallet
from payments.topups import record_manual_topup
from payments.wallets import open_wallet

ADMIN = Principal(id="usr_test_admin", kind="user", roles=frozenset({"admin"}))
FINANCE = Principal(id="usr_test_finance", kind="user", roles=frozenset({"finance"}))
PASSWORD = "correct horse battery"


def make_user(
    roles: list[str] | None = None, *, merchant_id: str | None = None, email: str | None = None
) -> User:
    with job_session() as session:
        return create_user(
            session,
            email=email or f"{new_id('u').lower()}@example.vn",
            password=PASSWORD,
            full_name="Nguyễn Văn Test",
            roles=roles or ["customer"],
            merchant_id=merchant_id,
        )


def principal(user: User) -> Principal:
    return Principal(id=user.id, kind="user", roles=frozenset(user.roles), merchant_id=user.merchant_id)


def auth(user: User) -> dict[str, str]:
    token, _ = issue_token(user)
    return {"Authorization": f"Bearer {token}"}


def make_merchant(
    *, fee_bps: int = 100, name: str = "Chợ Đồng Xuân stall 12", kind: str = "market_vendor"
) -> Merchant:
    with job_session() as session:
        return create_merchant(
            session,
            ADMIN,
            name=name,
            kind=kind,
            fee_bps=fee_bps,
            currency="VND",
            payout_bank_bin="970436",
            payout_account="0011002233445",
            payout_account_name="NGUYEN THI LAN",
        )


def make_wallet(user: User, *, balance: int = 0) -> Wallet:
    with job_session() as session:
        wallet = open_wallet(session, principal(user))
        if balance:
            record_manual_topup(session, FINANCE, wallet.id, amount=balance, reason="test funding")
        return wallet


def pay(
    api: httpx.Client, user: User, merchant: Merchant, wallet: Wallet, amount: int, **extra: Any
) -> httpx.Response:
    body = {
        "amount": amount,
        "currency": "VND",
        "merchant_id": merchant.id,
        "purpose": "merchant_payment",
        "provider": "wallet",
        "wallet_id": wallet.id,
        "confirm": True,
        **extra,
    }
    headers = auth(user)
    if "idempotency_key" in extra:
        headers["Idempotency-Key"] = body.pop("idempotency_key")
    return api.post("/v1/payment_intents", json=body, headers=headers)


def run_jobs(redis_url: str) -> None:
    """Do what a worker does: relay the committed outbox to the queue, then run every job (burst)."""
    relay_all()
    connection = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)
