"""Shared pieces of the reconciliation tests: finance staff, a real RQ worker, the Stripe fake, the bank."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker

from hanoipay.auth.models import User
from hanoipay.db import job_session
from hanoipay.jobs import relay_all
from hanoipay.localtime import HANOI
from hanoipay.settings import get_settings
from payments import intents
from payments.models import Merchant, PaymentIntent
from payments.providers.base import register_provider
from payments.providers.stripe import StripeProvider
from payments.providers.vietqr import reference_for
from payments.providers.vietqr.webhook import BankNotification, apply_notification
from tests.factories import ADMIN, auth, make_merchant, make_user
from tests.stripe_fake import StripeFake


def today() -> date:
    """Today's business day in Hanoi."""
    return datetime.now(HANOI).date()


def at_noon(day: date) -> datetime:
    """Noon of a business day in Hanoi."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=HANOI)


def drain(redis_url: str) -> None:
    """Relay the outbox and run every queued job with a real RQ worker until nothing is left."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(get_settings().queue_name, connection=connection)
    while relay_all() or queue.count:
        SimpleWorker([queue], connection=connection).work(burst=True)


@pytest.fixture
def finance() -> User:
    return make_user(["finance"])


@pytest.fixture
def finance_headers(finance: User) -> dict[str, str]:
    return auth(finance)


def reconcile(
    api: Any, headers: dict[str, str], redis_url: str, provider: str, day: date, **extra: Any
) -> dict[str, Any]:
    """Queue a run over HTTP, let a real worker do it, and return the finished run."""
    r = api.post(
        "/v1/reconciliation/runs",
        json={"provider": provider, "business_day": day.isoformat(), **extra},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    drain(redis_url)
    run = api.get(f"/v1/reconciliation/runs/{r.json()['id']}", headers=headers).json()
    assert run["status"] == "completed", run
    return run


def results(api: Any, headers: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    """Every result line of a run, through the paged API."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": cursor} if cursor else {})}
        page = api.get(f"/v1/reconciliation/runs/{run_id}/results", params=params, headers=headers).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        cursor = page["next_cursor"]


# The bank -------------------------------------------------------------------------------------------


def vietqr_intent(merchant: Merchant, amount: int) -> PaymentIntent:
    """A VietQR payment waiting for its transfer."""
    with job_session() as session:
        return intents.create_intent(
            session,
            ADMIN,
            amount=amount,
            currency="VND",
            purpose="merchant_payment",
            merchant_id=merchant.id,
            provider="vietqr",
            confirm=True,
        )


def bank_says(txn_id: str, amount: int, description: str, *, at: datetime | None = None) -> dict[str, Any]:
    """The bank's webhook for a transfer, applied through the core as the endpoint applies it."""
    note = BankNotification(
        transaction_id=txn_id,
        account=get_settings().vietqr_account,
        amount=amount,
        description=description,
        occurred_at=at or datetime.now(UTC),
        counter_bank_bin="970415",
        counter_account="101010101010",
    )
    with job_session() as session:
        return apply_notification(session, note)


def statement_csv(rows: list[tuple[str, datetime, str, str, int, str]]) -> bytes:
    """A bank statement in the documented CSV columns: (id, booked_at, amount, currency, fee, description)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["transaction_id", "booked_at", "amount", "currency", "fee", "description"])
    for txn_id, booked_at, amount, currency, fee, description in rows:
        writer.writerow([txn_id, booked_at.isoformat(), amount, currency, fee, description])
    return out.getvalue().encode()


def upload(api: Any, headers: dict[str, str], data: bytes, format: str, name: str = "statement.csv") -> Any:
    """Upload a statement file as finance would."""
    return api.post(
        "/v1/reconciliation/statements",
        files={"file": (name, data)},
        data={"format": format},
        headers=headers,
    )


@pytest.fixture
def merchant() -> Merchant:
    return make_merchant(fee_bps=100)


# Stripe ---------------------------------------------------------------------------------------------


@pytest.fixture
def stripe_fake() -> Iterator[StripeFake]:
    """The Stripe fake, with the settings and the card provider pointed at it."""
    with StripeFake() as fake:
        settings = get_settings()
        saved = (settings.stripe_api_key, settings.stripe_api_base)
        settings.stripe_api_key, settings.stripe_api_base = fake.api_key, fake.url
        register_provider(StripeProvider(timeout=2.0, max_network_retries=0))
        yield fake
        settings.stripe_api_key, settings.stripe_api_base = saved
        register_provider(StripeProvider())


def card_payment(merchant: Merchant, amount: int) -> PaymentIntent:
    """A card payment through the core and the real SDK, succeeded at the fake."""
    with job_session() as session:
        intent = intents.create_intent(
            session,
            ADMIN,
            amount=amount,
            currency="VND",
            purpose="merchant_payment",
            merchant_id=merchant.id,
            provider="stripe",
            payment_method="pm_card_visa",
            confirm=True,
        )
        assert intent.status == "succeeded"
        return intent


def stripe_fee(amount: int) -> int:
    """The fee the default Stripe rule expects (and the fake charges): 3.4 % half up + 2 000."""
    return (amount * 340 + 5_000) // 10_000 + 2_000


def bank_day(api: Any, headers: dict[str, str], merchant: Merchant) -> dict[str, PaymentIntent]:
    """A day at the bank with one break of each kind; returns the VietQR intents by letter.

    A matched; A listed twice by the bank; B's webhook lost; C's notification re-sent under a new id (C2);
    D charged a new fee (3 300 for 1 100); E settled the next day; F a transfer naming no payment; G
    5 000 more at the bank; H in USD at the bank; I not on the statement; K 5 less (within 10 ₫).
    """
    day = today()
    now = datetime.now(UTC)
    paid = {
        k: vietqr_intent(merchant, amount)
        for k, amount in {
            "A": 100_000,
            "B": 50_000,
            "C": 70_000,
            "D": 30_000,
            "E": 40_000,
            "G": 60_000,
            "H": 20_000,
            "I": 15_000,
            "K": 80_000,
        }.items()
    }
    text = {k: f"MBVCB.3301.{reference_for(i.id)}.CT tu 101010" for k, i in paid.items()}
    for key in "ACDEGHIK":
        bank_says(f"FT-{key}", paid[key].amount, text[key])
    bank_says("FT-C2", 70_000, text["C"])  # the same notification re-sent under a new id
    bank_says("FT-F", 25_000, "chuyen tien an trua")  # a transfer naming no payment
    tomorrow_noon = at_noon(day + timedelta(days=1))
    rows = [
        ("FT-A", now, "100000", "VND", 1_100, text["A"]),
        ("FT-A", now, "100000", "VND", 1_100, text["A"]),  # the bank lists it twice
        ("FT-B", now, "50000", "VND", 1_100, text["B"]),  # its webhook was lost
        ("FT-C", now, "70000", "VND", 1_100, text["C"]),
        ("FT-D", now, "30000", "VND", 3_300, text["D"]),  # the bank charged a new fee
        ("FT-E", tomorrow_noon, "40000", "VND", 1_100, text["E"]),  # settled the next day
        ("FT-F", now, "25000", "VND", 1_100, "chuyen tien an trua"),
        ("FT-G", now, "65000", "VND", 1_100, text["G"]),  # 5 000 more than the ledger booked
        ("FT-H", now, "200.00", "USD", 0, text["H"]),
        ("FT-K", now, "79995", "VND", 1_100, text["K"]),  # 5 less: within the 10 ₫ tolerance
    ]
    r = upload(api, headers, statement_csv(rows), "bank_csv")
    assert r.status_code == 201, r.text
    return paid


def days(n: int) -> timedelta:
    return timedelta(days=n)


# The bank day's K line is 5 ₫ short: the runs accept 10 ₫ of drift by exact reference.
BANK_RULES = {"exact": {"amount_abs": 10}}
