"""`make demo`: a simulated day of the city through the real API, ending with a reconciled ledger."""

import json
import random
import secrets
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
import uvicorn
from rich.console import Console
from rich.table import Table
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from city.app import create_app
from city.cli import print_verify_report
from hanoipay.auth.service import create_user
from hanoipay.db import job_session
from hanoipay.runtime import Runtime, start_runtime
from hanoipay.settings import get_settings
from payments import ledger
from payments.bank import SIGNATURE_HEADER, sign
from payments.jobs import roll_up_balances
from payments.models import Event, PaymentIntent

console = Console()
PASSWORD = "demo-password-123"
MERCHANTS = [
    ("Hanoi Parking JSC (Hoàn Kiếm zones)", "parking_operator", 150),
    ("Hanoi Metro Line 2A", "transit_operator", 100),
    ("Chợ Đồng Xuân stall 12: bún chả", "market_vendor", 50),
    ("Chợ Hôm stall 3: fruit", "market_vendor", 50),
    ("Trường Tiểu học Ba Đình", "school", 0),
]
PRICES = {
    "parking_operator": (15_000, 45_000),
    "transit_operator": (7_000, 15_000),
    "market_vendor": (20_000, 80_000),
}


@dataclass
class City:
    """The demo's people and merchants, as the API knows them."""

    api: httpx.Client
    admin: dict[str, str] = field(default_factory=dict)
    finance: dict[str, str] = field(default_factory=dict)
    merchants: list[dict[str, Any]] = field(default_factory=list)
    vendors: dict[str, dict[str, str]] = field(default_factory=dict)
    people: list[tuple[dict[str, str], str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def login(self, email: str) -> dict[str, str]:
        r = self.api.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def post(
        self, path: str, body: dict[str, Any], who: dict[str, str], key: str | None = None
    ) -> httpx.Response:
        headers = who | ({"Idempotency-Key": key} if key else {})
        return self.api.post(path, json=body, headers=headers)


def _serve(runtime: Runtime) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _set_up(city: City) -> None:
    with job_session() as session:
        create_user(session, email="admin@hanoipay.vn", password=PASSWORD, full_name="Admin", roles=["admin"])
    city.admin = city.login("admin@hanoipay.vn")
    city.post(
        "/v1/users",
        {
            "email": "finance@hanoipay.vn",
            "password": PASSWORD,
            "full_name": "Trần Thu Hà",
            "roles": ["finance"],
        },
        city.admin,
    ).raise_for_status()
    city.finance = city.login("finance@hanoipay.vn")
    for i, (name, kind, fee) in enumerate(MERCHANTS):
        body = {
            "name": name,
            "kind": kind,
            "fee_bps": fee,
            "payout_bank_bin": "970436",
            "payout_account": f"00110022{i:05d}",
            "payout_account_name": name[:40],
        }
        merchant = city.post("/v1/merchants", body, city.admin).json()
        city.merchants.append(merchant)
        email = f"staff{i}@merchant.vn"
        role = "operator" if kind in ("parking_operator", "transit_operator") else "vendor"
        city.post(
            "/v1/users",
            {
                "email": email,
                "password": PASSWORD,
                "full_name": f"Staff {i}",
                "roles": [role],
                "merchant_id": merchant["id"],
            },
            city.admin,
        ).raise_for_status()
        city.vendors[merchant["id"]] = city.login(email)


def _onboard(city: City, n: int, rng: random.Random) -> None:
    def one(i: int) -> tuple[dict[str, str], str]:
        email = f"person{i}@example.vn"
        city.post(
            "/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": f"Người dân {i}"}, {}
        )
        who = city.login(email)
        wallet = city.post("/v1/wallets", {"currency": "VND"}, who).json()
        amount = rng.choice([200_000, 300_000, 500_000, 1_000_000])
        city.post(
            f"/v1/wallets/{wallet['id']}/manual_topups",
            {"amount": amount, "reason": "cash at a counter"},
            city.finance,
            key=f"topup-{i}",
        ).raise_for_status()
        return who, wallet["id"]

    with ThreadPoolExecutor(8) as pool:
        city.people = list(pool.map(one, range(n)))


def _day(city: City, n: int, rng: random.Random) -> float:
    plan = [(rng.choice(city.people), rng.choice(city.merchants[:4])) for _ in range(n)]

    def one(item: tuple[tuple[dict[str, str], str], dict[str, Any]]) -> str:
        (who, wallet_id), merchant = item
        low, high = PRICES[merchant["kind"]]
        amount = rng.randrange(low, high, 1_000)
        body = {
            "amount": amount,
            "currency": "VND",
            "merchant_id": merchant["id"],
            "purpose": "merchant_payment",
            "provider": "wallet",
            "wallet_id": wallet_id,
            "confirm": True,
        }
        r = city.post("/v1/payment_intents", body, who)
        return "paid" if r.status_code == 201 else r.json()["code"]

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        city.outcomes.update(pool.map(one, plan))
    return time.perf_counter() - started


def _special_cases(city: City) -> None:
    (driver, wallet_id) = city.people[0]
    parking, school = city.merchants[0], city.merchants[4]
    operator = city.vendors[parking["id"]]
    topup = {"amount": 300_000, "reason": "driver tops up at a kiosk"}
    city.post(f"/v1/wallets/{wallet_id}/manual_topups", topup, city.finance, key="kiosk-1").raise_for_status()
    hold = {
        "amount": 60_000,
        "currency": "VND",
        "merchant_id": parking["id"],
        "purpose": "merchant_payment",
        "provider": "wallet",
        "wallet_id": wallet_id,
        "confirm": True,
        "capture_method": "manual",
        "description": "parking pre-authorisation, plate 30A-123.45",
    }
    authorized = city.post("/v1/payment_intents", hold, driver, key="parking-hold-1").json()
    captured = city.post(
        f"/v1/payment_intents/{authorized['id']}/capture", {"amount_to_capture": 35_000}, operator
    )
    city.outcomes["captured 35 000 of a 60 000 hold"] += captured.status_code == 200
    retry = city.post("/v1/payment_intents", hold, driver, key="parking-hold-1")
    city.outcomes["idempotent retry replayed"] += retry.headers.get("idempotent-replayed") == "true"
    voided = city.post("/v1/payment_intents", hold, driver).json()
    city.post(f"/v1/payment_intents/{voided['id']}/cancel", {"cancellation_reason": "abandoned"}, operator)
    city.outcomes["authorisation voided"] += 1
    fee = {
        "amount": 150_000,
        "currency": "VND",
        "merchant_id": school["id"],
        "purpose": "merchant_payment",
        "provider": "wallet",
        "wallet_id": wallet_id,
        "confirm": True,
        "description": "field trip fee",
    }
    paid = city.post("/v1/payment_intents", fee, driver).json()
    refund = city.post(
        "/v1/refunds",
        {"payment_intent": paid["id"], "amount": 50_000, "reason": "trip cheaper"},
        city.vendors[school["id"]],
    )
    city.outcomes["partial refund"] += refund.status_code == 201


def _market_by_vietqr(city: City, rng: random.Random) -> None:
    """A vendor sells through dynamic VietQR codes; the demo plays the bank and signs its webhooks."""
    stall = city.merchants[2]
    vendor = city.vendors[stall["id"]]
    kid, secret = next(iter(get_settings().bank_webhook_secrets.items()))
    sent: list[bytes] = []

    def bank_says(amount: int, description: str, txn: str) -> dict[str, Any]:
        body = json.dumps(
            {
                "transaction_id": txn,
                "account": get_settings().vietqr_account,
                "amount": amount,
                "description": description,
                "occurred_at": datetime.now(UTC).isoformat(),
                "counter_bank_bin": "970415",
                "counter_account": f"10{rng.randrange(10**10):010d}",
            }
        ).encode()
        sent.append(body)
        headers = {SIGNATURE_HEADER: sign(body, kid=kid, secret=secret), "content-type": "application/json"}
        result: dict[str, Any] = city.api.post("/v1/webhooks/bank", content=body, headers=headers).json()
        return result

    for i in range(20):
        who, _ = city.people[i]
        sale = {
            "amount": rng.randrange(30_000, 150_000, 1_000),
            "currency": "VND",
            "merchant_id": stall["id"],
            "purpose": "merchant_payment",
            "description": f"bún chả, order {i}",
        }
        intent = city.post("/v1/payment_intents", sale, vendor).json()
        shown = city.post(f"/v1/payment_intents/{intent['id']}/confirm", {"provider": "vietqr"}, who).json()
        ref, amount = shown["next_action"]["reference"], shown["amount"]
        if i == 3:  # the customer types too little, then sends the rest
            city.outcomes[f"vietqr {bank_says(amount - 10_000, ref.lower(), f'FT26{i:04d}A')['status']}"] += 1
            city.outcomes[
                f"vietqr {bank_says(10_000, f'MBVCB {ref} con thieu', f'FT26{i:04d}B')['status']}"
            ] += 1
            continue
        outcome = bank_says(amount, f"MBVCB.{rng.randrange(10**6)}.{ref}.CT tu NGUYEN VAN A", f"FT26{i:04d}")
        city.outcomes[f"vietqr {outcome['status']}"] += 1
    first = json.loads(sent[0])
    replay = bank_says(first["amount"], first["description"], first["transaction_id"])
    city.outcomes["bank webhook replayed, applied once"] += bool(replay["duplicate"])
    city.outcomes[f"vietqr {bank_says(45_000, 'chuyen tien', 'FT26UNMATCHED')['status']}"] += 1


def _cards(city: City) -> None:
    """A visitor pays for parking by card through Stripe, when a Stripe test key is set."""
    if get_settings().stripe_api_key is None:
        console.print(
            "cards: set HANOIPAY_STRIPE_API_KEY=sk_test_... (and internet) to add Stripe card payments"
        )
        return
    visitor, _ = city.people[1]
    for card in ("pm_card_visa", "pm_card_chargeDeclined"):
        body = {
            "amount": 45_000,
            "currency": "VND",
            "merchant_id": city.merchants[0]["id"],
            "purpose": "merchant_payment",
            "provider": "stripe",
            "payment_method": card,
            "confirm": True,
        }
        answer = city.post("/v1/payment_intents", body, visitor, key=f"card-{card}").json()
        city.outcomes[f"card {card}: {answer.get('code') or answer.get('status')}"] += 1


def _drain(runtime: Runtime) -> int:
    connection = redis.Redis.from_url(runtime.redis_url)
    queue = Queue(get_settings().queue_name, connection=connection)
    jobs = queue.count
    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    roll_up_balances()
    return jobs


def _summary(city: City, seconds: float, payments: int, jobs: int) -> bool:
    with job_session() as session:
        report = ledger.verify(session)
        accounts = ledger.list_accounts(session)
        by_status = session.execute(
            select(
                PaymentIntent.purpose,
                PaymentIntent.status,
                func.count(),
                func.sum(PaymentIntent.amount_received),
            )
            .group_by(PaymentIntent.purpose, PaymentIntent.status)
            .order_by(PaymentIntent.purpose, PaymentIntent.status)
        ).all()
        delivered = session.scalar(
            select(func.count()).select_from(Event).where(Event.delivered_at.is_not(None))
        )
    names = {m["account_id"]: m["name"] for m in city.merchants}
    balances = Table("account", "type", "posted (VND)", "held", "available", title="Ledger balances")
    wallets = [b for a, b in accounts if a.code.startswith("wallet:")]
    for account, balance in accounts:
        if not account.code.startswith("wallet:"):
            label = names.get(account.id, account.code)
            balances.add_row(
                label, account.type, f"{balance.posted:,}", f"{balance.held:,}", f"{balance.available:,}"
            )
    balances.add_row(
        f"{len(wallets)} wallets",
        "liability",
        f"{sum(b.posted for b in wallets):,}",
        f"{sum(b.held for b in wallets):,}",
        f"{sum(b.available for b in wallets):,}",
    )
    statuses = Table("purpose", "status", "intents", "received (VND)", title="Payments by status")
    for purpose, status, count, received in by_status:
        statuses.add_row(purpose, status, str(count), f"{int(received or 0):,}")
    outcomes = Table("outcome", "count", title="The day's outcomes")
    for outcome, count in sorted(city.outcomes.items()):
        outcomes.add_row(outcome, str(count))
    console.print(balances, statuses, outcomes)
    console.print(
        f"{payments} wallet payments over HTTP in {seconds:.1f}s ({payments / seconds:.0f}/s, 8 clients); "
        f"{jobs} jobs drained by an RQ worker; {delivered} events delivered"
    )
    print_verify_report(report)
    return report.ok


def run_demo(*, fresh: bool = True, people: int = 120, payments: int = 1_500, seed: int = 2026) -> None:
    """Run the demo on embedded servers (under .hanoipay/demo) unless servers are configured."""
    settings = get_settings()
    settings.data_dir = settings.data_dir / "demo"
    if not settings.bank_webhook_secrets:
        settings.bank_webhook_secrets = {"demo-bank": secrets.token_urlsafe(32)}
    if fresh and settings.embedded and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    rng = random.Random(seed)
    console.rule("HanoiPay: a day of the city")
    runtime = start_runtime(migrate=True, api=True)
    server, url = _serve(runtime)
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            city = City(api)
            _set_up(city)
            console.print(f"{len(city.merchants)} merchants and their staff registered")
            _onboard(city, people, rng)
            console.print(f"{people} people signed up, opened wallets and topped up at a counter")
            seconds = _day(city, payments, rng)
            _special_cases(city)
            _market_by_vietqr(city, rng)
            _cards(city)
            console.print(
                "a market stall sold 20 meals by VietQR; the demo played the bank's signed webhooks"
            )
        jobs = _drain(runtime)
        ok = _summary(city, seconds, payments, jobs)
    finally:
        server.should_exit = True
        runtime.stop()
    if not ok:
        raise SystemExit(1)
