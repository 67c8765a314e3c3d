"""The payment core's day: merchants and staff, people with wallets, payments, holds, refunds, VietQR."""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from sqlalchemy import func, select

from city.demo.city import PASSWORD, City, console
from hanoipay.auth.service import create_user
from hanoipay.db import job_session
from hanoipay.settings import get_settings
from payments.models import PaymentIntent

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


class PaymentsScenario:
    """Wallet payments from many clients at once, a hold captured in part, a refund, a VietQR stall."""

    name = "payments"

    def __init__(self, *, people: int = 120, payments: int = 1_500) -> None:
        self.people = people
        self.payments = payments
        self.seconds = 0.0

    def play(self, city: City) -> None:
        """Register the city, then play its payments."""
        _set_up(city)
        console.print(f"{len(city.merchants)} merchants and their staff registered")
        _onboard(city, self.people)
        console.print(f"{self.people} people signed up, opened wallets and topped up at a counter")
        self.seconds = _day(city, self.payments)
        _special_cases(city)
        _market_by_vietqr(city)
        _cards(city)
        console.print("a market stall sold 20 meals by VietQR; the demo played the bank's signed webhooks")

    def summarize(self, city: City) -> list[RenderableType]:
        """Payments by purpose and status, and the wallet payment rate."""
        with job_session() as session:
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
        statuses = Table("purpose", "status", "intents", "received (VND)", title="Payments by status")
        for purpose, status, count, received in by_status:
            statuses.add_row(purpose, status, str(count), f"{int(received or 0):,}")
        rate = self.payments / self.seconds if self.seconds else 0.0
        return [
            statuses,
            f"{self.payments} wallet payments over HTTP in {self.seconds:.1f}s ({rate:.0f}/s, 8 clients)",
        ]


def _set_up(city: City) -> None:
    with job_session() as session:
        create_user(session, email="admin@hanoipay.vn", password=PASSWORD, full_name="Admin", roles=["admin"])
    city.admin = city.login("admin@hanoipay.vn")
    finance = {"email": "finance@hanoipay.vn", "password": PASSWORD, "full_name": "Trần Thu Hà"}
    city.post("/v1/users", finance | {"roles": ["finance"]}, city.admin).raise_for_status()
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
        staff = {"email": email, "password": PASSWORD, "full_name": f"Staff {i}"}
        city.post(
            "/v1/users", staff | {"roles": [role], "merchant_id": merchant["id"]}, city.admin
        ).raise_for_status()
        city.staff[merchant["id"]] = city.login(email)


def _onboard(city: City, n: int) -> None:
    amounts = [city.rng.choice([200_000, 300_000, 500_000, 1_000_000]) for _ in range(n)]

    def one(i: int) -> tuple[dict[str, str], str]:
        email = f"person{i}@example.vn"
        city.post(
            "/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": f"Người dân {i}"}, {}
        )
        who = city.login(email)
        wallet = city.post("/v1/wallets", {"currency": "VND"}, who).json()
        city.post(
            f"/v1/wallets/{wallet['id']}/manual_topups",
            {"amount": amounts[i], "reason": "cash at a counter"},
            city.finance,
            key=f"topup-{i}",
        ).raise_for_status()
        return who, wallet["id"]

    with ThreadPoolExecutor(8) as pool:
        city.people = list(pool.map(one, range(n)))


def _day(city: City, n: int) -> float:
    plan = []
    for _ in range(n):
        (who, wallet_id), merchant = city.rng.choice(city.people), city.rng.choice(city.merchants[:4])
        low, high = PRICES[merchant["kind"]]
        plan.append((who, wallet_id, merchant, city.rng.randrange(low, high, 1_000)))

    def one(item: tuple[dict[str, str], str, dict[str, Any], int]) -> str:
        who, wallet_id, merchant, amount = item
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
        return "paid" if r.status_code == 201 else str(r.json()["code"])

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        city.outcomes.update(pool.map(one, plan))
    return time.perf_counter() - started


def _special_cases(city: City) -> None:
    (driver, wallet_id) = city.people[0]
    parking, school = city.merchants[0], city.merchants[4]
    operator = city.staff[parking["id"]]
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
        "description": "pre-authorisation at a parking lot's gate",
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
        city.staff[school["id"]],
    )
    city.outcomes["partial refund"] += refund.status_code == 201


def _market_by_vietqr(city: City) -> None:
    """A vendor sells through dynamic VietQR codes; the demo plays the bank and signs its webhooks."""
    stall = city.merchants[2]
    vendor = city.staff[stall["id"]]
    first: tuple[int, str, str] | None = None
    for i in range(20):
        who, _ = city.people[i]
        sale = {
            "amount": city.rng.randrange(30_000, 150_000, 1_000),
            "currency": "VND",
            "merchant_id": stall["id"],
            "purpose": "merchant_payment",
            "description": f"bún chả, order {i}",
        }
        intent = city.post("/v1/payment_intents", sale, vendor).json()
        shown = city.post(f"/v1/payment_intents/{intent['id']}/confirm", {"provider": "vietqr"}, who).json()
        ref, amount = shown["next_action"]["reference"], shown["amount"]
        if i == 3:  # the customer types too little, then sends the rest
            city.outcomes[
                f"vietqr {city.bank_says(amount - 10_000, ref.lower(), f'FT26{i:04d}A')['status']}"
            ] += 1
            rest = city.bank_says(10_000, f"MBVCB {ref} con thieu", f"FT26{i:04d}B")
            city.outcomes[f"vietqr {rest['status']}"] += 1
            continue
        description = f"MBVCB.{city.rng.randrange(10**6)}.{ref}.CT tu NGUYEN VAN A"
        first = first or (amount, description, f"FT26{i:04d}")
        city.outcomes[f"vietqr {city.bank_says(amount, description, f'FT26{i:04d}')['status']}"] += 1
    assert first is not None
    replay = city.bank_says(*first)
    city.outcomes["bank webhook replayed, applied once"] += bool(replay["duplicate"])
    city.outcomes[f"vietqr {city.bank_says(45_000, 'chuyen tien', 'FT26UNMATCHED')['status']}"] += 1


def _cards(city: City) -> None:
    """A visitor pays by card through Stripe, when a Stripe test key is set."""
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
