"""Sessions paid by card through the real Stripe SDK against the local fake: a hold captured at the end,
an overstay charged to the same card, a declined card, and a card that asks for 3-D Secure."""

from sqlalchemy import func, select

from hanoipay.db import job_session
from parking.models import ParkingSession
from tests.parking.conftest import Driver
from tests.parking.test_sessions import end_at, intents_of, ledger_ok
from tests.payments.test_stripe import fake, stripe_enabled  # noqa: F401  (fixtures; stripe_enabled is autouse)


def start_by_card(driver: Driver, card: str, minutes: int = 120, zone: str = "Z-MAIN"):
    quote = driver.quote(zone, minutes).json()["id"]
    body = {"quote_id": quote, "plate": "30A-123.45", "provider": "stripe", "payment_method": card}
    return driver.post("/v1/parking/sessions", body)


def test_a_card_hold_is_captured_at_the_real_amount_and_an_overstay_charged_to_the_card(api, operator):
    driver = Driver(api)
    started = start_by_card(driver, "pm_card_visa")
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "active"
    assert started.json()["payments"][0]["status"] == "requires_capture"
    ended = end_at(driver, started.json()["id"], 50)
    assert (ended.charged_amount, ended.unpaid_amount) == (10_000, 0)
    assert intents_of(ended.id) == [("succeeded", 20_000, 10_000)]
    late = start_by_card(driver, "pm_card_visa", minutes=60).json()
    assert end_at(driver, late["id"], 130).unpaid_amount == 0
    assert intents_of(late["id"]) == [("succeeded", 10_000, 10_000), ("succeeded", 20_000, 20_000)]
    assert ledger_ok()


def test_a_declined_card_or_one_asking_for_3d_secure_starts_nothing(api, operator):
    driver = Driver(api)
    declined = start_by_card(driver, "pm_card_chargeDeclined", zone="Z-ONE")
    assert (declined.status_code, declined.json()["code"]) == (402, "card_declined")
    secure = start_by_card(driver, "pm_card_authenticationRequired", zone="Z-ONE")
    assert (secure.status_code, secure.json()["code"]) == (402, "payment_not_authorized")
    with job_session() as session:
        assert session.scalar(select(func.count()).select_from(ParkingSession)) == 0
    assert Driver(api).park("Z-ONE")["status"] == "active"  # the spot is still free
