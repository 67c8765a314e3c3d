"""Factory functions that make the data a test needs, visibly, in the test's own words."""

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, create_user, issue_token
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.jobs import relay_all
from merchants.models import MerchantMember
from merchants.service.onboarding import add_member, register_merchant
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
    *,
    fee_bps: int = 100,
    name: str = "Chợ Đồng Xuân stall 12",
    kind: str = "market_vendor",
    verified: bool = False,
    overpayment_policy: str = "refund",
) -> Merchant:
    with job_session() as session:
        view = register_merchant(
            session,
            ADMIN,
            name=name,
            kind=kind,
            fee_bps=fee_bps,
            currency="VND",
            payout_bank_bin="970436",
            payout_account="0011002233445",
            payout_account_name="Nguyễn Thị Lan",
            overpayment_policy=overpayment_policy,
        )
        if verified:
            view.profile.verification = "verified"
        return view.payee


def make_staff(merchant: Merchant, role: str = "owner", *, email: str | None = None) -> User:
    """A user on the merchant's staff in `role` (owner, cashier, accountant)."""
    user = make_user(email=email)
    with job_session() as session:
        row = session.get(User, user.id)
        assert row is not None
        add_member(session, row, merchant.id, role, added_by=ADMIN.id)
        session.flush()
        session.refresh(row)
        session.expunge(row)
        return row


def member_id(user: User) -> str:
    """The id of the user's current staff membership."""
    with job_session() as session:
        found = session.scalars(
            select(MerchantMember.id).where(
                MerchantMember.user_id == user.id, MerchantMember.removed_at.is_(None)
            )
        ).first()
        assert found is not None
        return found


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


def start_worker(database_url: str, redis_url: str) -> subprocess.Popen[bytes]:
    """A real `hanoipay worker` process, in its own process group (RQ forks its scheduler into it)."""
    env = {**os.environ, "HANOIPAY_DATABASE_URL": database_url, "HANOIPAY_REDIS_URL": redis_url}
    return subprocess.Popen(
        [sys.executable, "-m", "city.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Stop a worker started by `start_worker`, and everything it forked."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
    try:
        process.wait(20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
