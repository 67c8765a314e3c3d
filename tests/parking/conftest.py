"""Parking test data: an operator with small zones on a flat tariff, so amounts do not depend on the clock."""

from datetime import datetime
from typing import Any

import httpx
import pytest

from hanoipay.auth.models import User
from hanoipay.db import job_session
from hanoipay.localtime import HANOI
from parking import loader
from parking.service import catalog
from payments.models import Merchant, Wallet
from tests.factories import ADMIN, auth, make_merchant, make_user, make_wallet

# Each tariff's one band runs round the clock from an hour twelve hours away from now (Hanoi time). A
# band's occurrence is priced on its own, so a stay crossing the band's boundary costs one more block or
# turn: with the band from midnight, the amounts below would depend on the hour the tests run.
BOUNDARY = f"{(datetime.now(HANOI).hour + 12) % 24:02d}:00"
FLAT = """
format: 1
tariffs:
  - code: T-CAR
    name: Test cars, 10 000 per started hour
    vehicle_type: car
    versions:
      - decision: "TEST-1"
        effective_from: 2020-01-01
        bands:
          - {name: all day, start: "{boundary}", end: "{boundary}", blocks: [{minutes: 60, price: 10000}]}
  - code: T-MOTO
    name: Test motorbikes, per turn
    vehicle_type: motorbike
    versions:
      - decision: "TEST-1"
        effective_from: 2020-01-01
        bands:
          - {name: all day, start: "{boundary}", end: "{boundary}", turn: 5000}
zones:
  - code: Z-ONE
    name: One spot
    street: Phố Một Chỗ
    district: Hoàn Kiếm
    address: 1 Phố Một Chỗ
    position: [21.0240, 105.8500]
    geometry: {type: LineString, coordinates: [[21.0240, 105.8500], [21.0241, 105.8502]]}
    tariffs: {car: T-CAR}
    spots: {car: 1}
  - code: Z-MAIN
    name: Main street
    street: Lý Thường Kiệt
    district: Hoàn Kiếm
    address: Lý Thường Kiệt, Hoàn Kiếm
    position: [21.0238, 105.8510]
    geometry: {type: LineString, coordinates: [[21.0237, 105.8490], [21.0240, 105.8530]]}
    max_duration_minutes: 240
    grace_minutes: 5
    reminder_minutes: 10
    tariffs: {car: T-CAR, motorbike: T-MOTO}
    spots: {car: 5, motorbike: 3}
  - code: Z-KEEP
    name: Keeps prepaid time
    street: Tràng Tiền
    district: Hoàn Kiếm
    address: Tràng Tiền, Hoàn Kiếm
    position: [21.0248, 105.8552]
    geometry: {type: LineString, coordinates: [[21.0250, 105.8528], [21.0246, 105.8576]]}
    unused_time_rule: keep
    tariffs: {car: T-CAR}
    spots: {car: 3}
""".replace("{boundary}", BOUNDARY)


def load(merchant: Merchant, text: str = FLAT) -> catalog.LoadSummary:
    with job_session() as session:
        return catalog.load_data(session, ADMIN, loader.check(text), merchant.id)


@pytest.fixture
def operator() -> Merchant:
    """A parking operator (fee 150 bps) with the flat test zones loaded."""
    merchant = make_merchant(kind="parking_operator", name="Hanoi Parking JSC", fee_bps=150)
    load(merchant)
    return merchant


@pytest.fixture
def attendant(operator: Merchant) -> User:
    return make_user(["operator"], merchant_id=operator.id)


class Driver:
    """A driver with a wallet, talking to the API."""

    def __init__(self, api: httpx.Client, balance: int = 500_000) -> None:
        self.api = api
        self.user = make_user()
        self.wallet: Wallet = make_wallet(self.user, balance=balance)
        self.headers = auth(self.user)

    def quote(self, zone: str = "Z-MAIN", minutes: int | None = 60, **extra: Any) -> httpx.Response:
        body = {"zone_code": zone, "vehicle_type": "car", **extra}
        if minutes is not None:
            body["duration_minutes"] = minutes
        return self.api.post("/v1/parking/quotes", json=body, headers=self.headers)

    def start(
        self, quote_id: str, plate: str = "30A-123.45", key: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {
            "quote_id": quote_id,
            "plate": plate,
            "provider": "wallet",
            "wallet_id": self.wallet.id,
            **extra,
        }
        headers = self.headers | ({"Idempotency-Key": key} if key else {})
        return self.api.post("/v1/parking/sessions", json=body, headers=headers)

    def park(
        self, zone: str = "Z-MAIN", minutes: int | None = 60, plate: str = "30A-123.45"
    ) -> dict[str, Any]:
        quote = self.quote(zone, minutes)
        assert quote.status_code == 201, quote.text
        started = self.start(quote.json()["id"], plate)
        assert started.status_code == 201, started.text
        return dict(started.json())

    def wallet_balance(self) -> dict[str, int]:
        return dict(self.api.get(f"/v1/wallets/{self.wallet.id}", headers=self.headers).json())

    def post(self, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
        headers = self.headers | ({"Idempotency-Key": key} if key else {})
        return self.api.post(path, json=body, headers=headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.api.get(path, params=params, headers=self.headers)
