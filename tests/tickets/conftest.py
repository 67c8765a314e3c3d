"""What the transit tests share: issuer keys, the sample network, riders with cards and phones, validators."""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rq import Queue, SimpleWorker

from hanoipay.auth.models import User
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.jobs import relay_all
from hanoipay.localtime import HANOI
from hanoipay.settings import get_settings
from payments.models import Merchant, Wallet
from tests.factories import ADMIN, auth, make_merchant, make_user, make_wallet, principal
from tickets.credentials import b64url
from tickets.rider import RiderDevice
from tickets.service.cards import register_device
from tickets.service.days import current_service_day
from tickets.service.network import import_feed, sample_feed_files


def new_seed() -> str:
    return b64url(Ed25519PrivateKey.generate().private_bytes_raw())


@pytest.fixture(autouse=True)
def issuer_keys() -> Iterator[dict[str, str]]:
    """One configured issuer key, `k1`, active."""
    settings = get_settings()
    saved = (settings.transit_issuer_keys, settings.transit_issuer_active_kid)
    settings.transit_issuer_keys = {"k1": new_seed()}
    settings.transit_issuer_active_kid = "k1"
    yield settings.transit_issuer_keys
    settings.transit_issuer_keys, settings.transit_issuer_active_kid = saved


@pytest.fixture
def operator(database_url: str) -> Merchant:
    """The transit network's merchant, with the sample Hanoi feed imported and active."""
    merchant = make_merchant(fee_bps=0, name="Hanoi transit fare collector", kind="transit_operator")
    with job_session() as session:
        import_feed(session, ADMIN, sample_feed_files(), name="Hà Nội sample", merchant_id=merchant.id)
    return merchant


@dataclass
class Rider:
    user: User
    wallet: Wallet
    card_id: str
    device: RiderDevice
    device_id: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.user)


def make_rider(
    api: httpx.Client,
    *,
    balance: int = 500_000,
    category: str | None = None,
    issued_at: datetime | None = None,
) -> Rider:
    """A customer with a funded wallet, a card and a registered phone holding its credential.

    `issued_at` back-dates the credential, for taps made days ago and uploaded now.
    """
    user = make_user()
    wallet = make_wallet(user, balance=balance)
    card = api.post("/v1/transit/cards", json={"wallet_id": wallet.id}, headers=auth(user))
    assert card.status_code == 201, card.text
    card_id = card.json()["id"]
    if category:
        admin = make_user(["admin"])
        r = api.post(
            f"/v1/transit/cards/{card_id}/category", json={"category_id": category}, headers=auth(admin)
        )
        assert r.status_code == 200, r.text
    device = RiderDevice()
    if issued_at is not None:
        with job_session() as session:
            registered = register_device(
                session, principal(user), card_id, public_key=device.public_key, name="Pixel", now=issued_at
            )
            device.credential, device_id = registered.credential, registered.id
        return Rider(user, wallet, card_id, device, device_id)
    answer = api.post(
        f"/v1/transit/cards/{card_id}/devices",
        json={"public_key": b64url(device.public_key), "name": "Pixel"},
        headers=auth(user),
    )
    assert answer.status_code == 201, answer.text
    device.credential = base64.urlsafe_b64decode(answer.json()["credential"] + "==")
    return Rider(user, wallet, card_id, device, answer.json()["id"])


@dataclass
class Gate:
    id: str
    secret: str
    vehicle_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def make_gate(api: httpx.Client, vehicle_id: str = "bus-29B-10001") -> Gate:
    """A validator device registered by an admin."""
    admin = make_user(["admin"])
    r = api.post(
        "/v1/transit/validators",
        json={"name": f"validator {vehicle_id}", "vehicle_id": vehicle_id},
        headers=auth(admin),
    )
    assert r.status_code == 201, r.text
    return Gate(r.json()["id"], r.json()["secret"], vehicle_id)


def drain(redis_url: str) -> None:
    """Relay the outbox and run every queued job with a real RQ worker (burst), until nothing is left."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    while relay_all() or queue.count:
        SimpleWorker([queue], connection=connection).work(burst=True)


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """The service day running now (04:00 to 03:59 Hanoi time); the day before it is the last one closed.
    Between midnight and 04:00 it is the calendar's yesterday, so "yesterday" is two calendar days back."""
    return current_service_day(now())


def at(day: date, clock: str) -> datetime:
    """A moment on a calendar day in Hanoi ("24:30" is half past midnight the next morning)."""
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime(day.year, day.month, day.day, tzinfo=HANOI) + timedelta(hours=hours, minutes=minutes)


def tap(rider: Rider, route: str, moment: datetime, stop: str | None = None, direction: str = "in") -> dict:
    code = rider.device.code(moment.timestamp())
    return {
        "id": new_id("tap"),
        "route_id": route,
        "stop_id": stop,
        "direction": direction,
        "tapped_at": moment.astimezone(UTC).isoformat(),
        "payload": b64url(code),
        "result": "accepted",
    }


def upload(api: httpx.Client, gate: Gate, taps: list[dict]) -> httpx.Response:
    return api.post("/v1/transit/taps/batch", json={"taps": taps}, headers=gate.headers)
