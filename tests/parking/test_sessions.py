"""Wallet sessions: holds, captures, extensions, early ends, overstays; races; idempotency; bad input.

The flat test tariff charges 10 000 ₫ per started hour; the operator's fee is 150 bps.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from hanoipay.db import job_session
from parking.exceptions import QuoteExpired
from parking.models import ParkingSession, Quote, TariffVersion, Zone
from parking.service import sessions
from payments import balances
from payments.models import PaymentIntent
from tests.factories import auth as auth_of
from tests.factories import principal
from tests.parking.conftest import Driver


def end_at(driver: Driver, session_id: str, minutes_after_start: float) -> ParkingSession:
    """End the session as the driver, that many minutes after it started."""
    with job_session() as session:
        psn = session.get(ParkingSession, session_id)
        assert psn is not None
        assert psn.started_at is not None
        when = psn.started_at + timedelta(minutes=minutes_after_start)
        return sessions.end_session(session, principal(driver.user), session_id, now=when)


def ledger_ok() -> bool:
    with job_session() as session:
        return balances.verify(session).ok


def intents_of(session_id: str) -> list[tuple[str, int, int]]:
    with job_session() as session:
        rows = session.execute(
            select(PaymentIntent.status, PaymentIntent.amount, PaymentIntent.amount_received)
            .where(PaymentIntent.purpose_ref == session_id)
            .order_by(PaymentIntent.id)
        ).all()
    return [tuple(r) for r in rows]


class TestPrepaidWallet:
    def test_the_longest_time_is_held_and_the_time_used_captured(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=120)
        assert started["status"] == "active"
        assert started["prepaid_amount"] == 20_000
        assert [(p["kind"], p["status"], p["amount"]) for p in started["payments"]] == [
            ("prepaid", "requires_capture", 20_000)
        ]
        assert driver.wallet_balance()["held"] == 20_000
        ended = end_at(driver, started["id"], 50)
        assert (ended.status, ended.charged_amount, ended.unpaid_amount) == ("ended", 10_000, 0)
        assert intents_of(started["id"]) == [("succeeded", 20_000, 10_000)]
        balance = driver.wallet_balance()
        assert (balance["posted"], balance["held"], balance["available"]) == (490_000, 0, 490_000)
        receipt = driver.get(f"/v1/parking/sessions/{started['id']}/receipt").json()
        assert (receipt["charged_amount"], receipt["paid_amount"], receipt["minutes_parked"]) == (
            10_000,
            10_000,
            50,
        )
        assert receipt["tariff"]["decision"] == "TEST-1"
        assert ledger_ok()

    def test_a_session_carries_its_quotes_operator_zone_and_tariff_version(self, api, operator):
        """No foreign key checks these three on the session (migration 0060): the start copies them from
        the quote it presents, whose own keys hold them."""
        started = Driver(api).park(zone="Z-MAIN", minutes=60)
        with job_session() as session:
            psn = session.get(ParkingSession, started["id"])
            assert psn is not None
            quote = session.get(Quote, psn.quote_id)
            assert quote is not None
            assert (psn.merchant_id, psn.zone_id, psn.tariff_version_id) == (
                quote.merchant_id,
                quote.zone_id,
                quote.tariff_version_id,
            )
            zone = session.get(Zone, psn.zone_id)
            version = session.get(TariffVersion, psn.tariff_version_id)
            assert zone is not None
            assert (zone.code, zone.merchant_id) == ("Z-MAIN", operator.id)
            assert version is not None
            assert version.decision_ref == "TEST-1"

    def test_a_zone_that_keeps_prepaid_time_charges_it_all(self, api, operator):
        driver = Driver(api)
        started = driver.park("Z-KEEP", minutes=120)
        assert end_at(driver, started["id"], 30).charged_amount == 20_000

    def test_extension_adds_a_hold_for_the_difference_and_the_end_captures_across_holds(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=60)
        extended = driver.post(f"/v1/parking/sessions/{started['id']}/extend", {"minutes": 60}, key="ext-1")
        assert extended.status_code == 200, extended.text
        body = extended.json()
        assert body["prepaid_minutes"] == 120
        assert body["prepaid_amount"] == 20_000
        assert datetime.fromisoformat(body["covered_until"]) - datetime.fromisoformat(
            started["covered_until"]
        ) == (timedelta(minutes=60))
        replay = driver.post(f"/v1/parking/sessions/{started['id']}/extend", {"minutes": 60}, key="ext-1")
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["prepaid_minutes"] == 120
        assert driver.wallet_balance()["held"] == 20_000
        end_at(driver, started["id"], 100)
        assert intents_of(started["id"]) == [("succeeded", 10_000, 10_000), ("succeeded", 10_000, 10_000)]
        assert ledger_ok()

    def test_ending_early_releases_the_unused_extension_hold(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=60)
        driver.post(f"/v1/parking/sessions/{started['id']}/extend", {"minutes": 120})
        end_at(driver, started["id"], 30)
        assert intents_of(started["id"]) == [("succeeded", 10_000, 10_000), ("canceled", 20_000, 0)]
        assert driver.wallet_balance()["held"] == 0

    def test_an_overstay_is_charged_at_the_end_after_the_grace_minutes(self, api, operator):
        driver = Driver(api)
        within_grace = driver.park(minutes=60, plate="30A-111.11")
        assert end_at(driver, within_grace["id"], 64).charged_amount == 10_000
        late = driver.park(minutes=60, plate="30A-222.22")
        ended = end_at(driver, late["id"], 95)
        assert (ended.charged_amount, ended.overstay_minutes, ended.unpaid_amount) == (20_000, 35, 0)
        assert intents_of(late["id"]) == [("succeeded", 10_000, 10_000), ("succeeded", 10_000, 10_000)]
        assert driver.wallet_balance()["posted"] == 500_000 - 10_000 - 20_000
        assert ledger_ok()

    def test_an_overstay_the_wallet_cannot_pay_stays_owed(self, api, operator, attendant):
        driver = Driver(api, balance=10_000)
        started = driver.park(minutes=60)
        ended = end_at(driver, started["id"], 130)
        assert (ended.charged_amount, ended.unpaid_amount) == (30_000, 20_000)
        assert intents_of(started["id"]) == [("succeeded", 10_000, 10_000)]
        look = api.get("/v1/parking/enforcement/plates/30A-123.45", headers=auth_of(attendant)).json()
        assert (look["status"], look["unpaid_amount"]) == ("unpaid_overstay", 20_000)
        assert ledger_ok()

    def test_an_open_ended_session_holds_the_zones_longest_stay(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=None)
        assert started["open_ended"]
        assert started["prepaid_amount"] == 40_000
        assert end_at(driver, started["id"], 70).charged_amount == 20_000
        assert intents_of(started["id"]) == [("succeeded", 40_000, 20_000)]

    def test_every_session_has_a_receipt_and_the_spot_is_freed(self, api, operator):
        driver = Driver(api)
        started = driver.park("Z-ONE")
        end_at(driver, started["id"], 10)
        assert Driver(api).park("Z-ONE")["spot_code"] == "C001"
        assert driver.get(f"/v1/parking/sessions/{started['id']}/receipt").status_code == 200


class TestRaces:
    def test_two_drivers_racing_for_the_last_spot_one_wins(self, api, operator):
        drivers = [Driver(api), Driver(api)]
        quotes = [d.quote("Z-ONE").json()["id"] for d in drivers]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda i: drivers[i].start(quotes[i], plate=f"30A-{i}00.00"), range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json()["code"] == "spot_taken"
        assert sum(d.wallet_balance()["held"] for d in drivers) == 10_000
        assert ledger_ok()

    def test_two_drivers_racing_for_one_named_spot_one_wins(self, api, operator):
        spot = api.get("/v1/parking/zones/Z-MAIN/spots", headers=Driver(api).headers).json()[0]["id"]
        drivers = [Driver(api), Driver(api)]
        quotes = [d.quote("Z-MAIN", spot_id=spot).json()["id"] for d in drivers]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda i: drivers[i].start(quotes[i], plate=f"30A-{i}00.00"), range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409]
        assert {a.json().get("code") for a in answers} == {None, "spot_taken"}

    def test_one_plate_never_holds_two_open_sessions(self, api, operator):
        drivers = [Driver(api), Driver(api)]
        quotes = [d.quote("Z-MAIN").json()["id"] for d in drivers]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda i: drivers[i].start(quotes[i], plate="29B1-123.45"), range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409]
        assert next(a for a in answers if a.status_code == 409).json()["code"] == "plate_has_open_session"
        winner = next(a for a in answers if a.status_code == 201).json()
        again = drivers[0].start(drivers[0].quote("Z-KEEP").json()["id"], plate="29b1 12345")
        assert again.status_code == 409
        with job_session() as session:
            assert session.get(ParkingSession, winner["id"]).status == "active"  # never silently ended
        assert sum(d.wallet_balance()["held"] for d in drivers) == 10_000

    def test_the_same_start_sent_twice_at_once_creates_one_session(self, api, operator):
        driver = Driver(api)
        quote = driver.quote().json()["id"]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: driver.start(quote, key="start-1"), range(2)))
        assert [a.status_code for a in answers] == [201, 201]
        assert answers[0].json()["id"] == answers[1].json()["id"]
        assert driver.wallet_balance()["held"] == 10_000


class TestIdempotency:
    def test_a_retry_replays_the_first_answer_and_a_different_body_is_refused(self, api, operator):
        driver = Driver(api)
        quote = driver.quote().json()["id"]
        first = driver.start(quote, key="k-1")
        retry = driver.start(quote, key="k-1")
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["id"] == first.json()["id"]
        other = driver.start(quote, key="k-1", plate="30A-999.99")
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert driver.wallet_balance()["held"] == 10_000

    def test_a_refusal_is_replayed_too(self, api, operator):
        driver = Driver(api, balance=5_000)
        quote = driver.quote().json()["id"]
        first = driver.start(quote, key="poor-1")
        assert (first.status_code, first.json()["code"]) == (402, "insufficient_funds")
        assert driver.start(quote, key="poor-1").headers["idempotent-replayed"] == "true"


class TestRefusals:
    def test_bad_input_gets_a_clear_4xx_and_changes_nothing(self, api, operator):
        driver = Driver(api)
        for minutes, code in (
            (0, "validation_error"),
            (-5, "validation_error"),
            (241, "duration_out_of_range"),
        ):
            answer = driver.quote(minutes=minutes)
            assert (answer.status_code, answer.json()["code"]) == (422, code)
        assert driver.quote(zone="NOPE").json()["code"] == "zone_not_found"
        quote = driver.quote().json()["id"]
        for plate, code in (
            ("ABC-123", "invalid_plate"),
            ("30A-123.456", "invalid_plate"),
            ("30A\u0000", "invalid_characters"),
        ):
            answer = driver.start(quote, plate=plate)
            assert (answer.status_code, answer.json()["code"]) == (422, code)
        unknown = driver.post(
            "/v1/parking/sessions", {"quote_id": quote, "plate": "30A-123.45", "provider": "wallet", "x": 1}
        )
        assert unknown.json()["code"] == "validation_error"
        assert driver.wallet_balance()["held"] == 0
        assert driver.start(quote).status_code == 201  # the quote was never used by the refusals
        used = driver.start(quote, plate="30A-555.55")
        assert (used.status_code, used.json()["code"]) == (409, "quote_used")

    def test_not_enough_money_leaves_no_session_and_the_spot_free(self, api, operator):
        driver = Driver(api, balance=5_000)
        answer = driver.start(driver.quote("Z-ONE").json()["id"])
        assert (answer.status_code, answer.json()["code"]) == (402, "insufficient_funds")
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(ParkingSession)) == 0
        assert Driver(api).park("Z-ONE")["status"] == "active"

    def test_an_expired_quote_is_refused(self, api, operator):
        driver = Driver(api)
        quote = driver.quote().json()
        later = datetime.fromisoformat(quote["expires_at"]) + timedelta(seconds=1)
        with job_session() as session, pytest.raises(QuoteExpired):
            sessions.start_session(
                session,
                principal(driver.user),
                quote_id=quote["id"],
                plate="30A-123.45",
                provider="wallet",
                wallet_id=driver.wallet.id,
                now=later,
            )

    def test_a_parking_payment_made_outside_the_parking_service_is_refused_and_writes_nothing(
        self, api, operator
    ):
        """Even naming the driver's own open session, through the payments API: only the parking service
        makes a session's intents, for the session it is paying for."""
        driver = Driver(api)
        started = driver.park()
        before = driver.wallet_balance()
        with job_session() as session:
            intents_before = session.scalar(select(func.count()).select_from(PaymentIntent))
        body = {
            "amount": 10_000,
            "currency": "VND",
            "merchant_id": operator.id,
            "purpose": "parking_session",
            "provider": "wallet",
            "wallet_id": driver.wallet.id,
            "confirm": True,
        }
        for ref in ({"purpose_ref": started["id"]}, {"purpose_ref": "psn_nope"}, {}):
            answer = api.post("/v1/payment_intents", json=body | ref, headers=driver.headers)
            assert (answer.status_code, answer.json()["code"]) == (404, "parking_session_not_found")
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(PaymentIntent)) == intents_before
        assert driver.wallet_balance() == before

    def test_extending_an_ended_session_and_another_drivers_session(self, api, operator):
        driver, stranger = Driver(api), Driver(api)
        started = driver.park()
        path = f"/v1/parking/sessions/{started['id']}"
        for answer in (
            stranger.get(path),
            stranger.post(f"{path}/extend", {"minutes": 30}),
            stranger.post(f"{path}/end"),
            stranger.get(f"{path}/receipt"),
        ):
            assert (answer.status_code, answer.json()["code"]) == (404, "parking_session_not_found")
        over = driver.post(f"{path}/extend", {"minutes": 200})
        assert (over.status_code, over.json()["code"]) == (422, "duration_out_of_range")
        assert driver.post(f"{path}/end").status_code == 200
        for answer in (driver.post(f"{path}/extend", {"minutes": 30}), driver.post(f"{path}/end")):
            assert answer.status_code == 409
        assert driver.post(f"{path}/extend", {"minutes": 30}).json()["code"] == "session_not_extendable"

    def test_a_spot_out_of_service_cannot_be_taken(self, api, operator, attendant):
        driver = Driver(api)
        spot = api.get("/v1/parking/zones/Z-ONE/spots", headers=driver.headers).json()[0]["id"]
        quote = driver.quote("Z-ONE", spot_id=spot).json()["id"]
        changed = api.post(
            f"/v1/parking/spots/{spot}/state",
            json={"state": "out_of_service", "source": "attendant"},
            headers=auth_of(attendant),
        )
        assert changed.json()["state"] == "out_of_service"
        answer = driver.start(quote)
        assert (answer.status_code, answer.json()["code"]) == (409, "spot_out_of_service")
        assert driver.quote("Z-ONE", spot_id=spot).json()["code"] == "spot_out_of_service"
        assert driver.wallet_balance()["held"] == 0


class TestEndAndExtendRaces:
    def test_two_ends_at_once_charge_once_and_a_retry_replays(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=120)
        path = f"/v1/parking/sessions/{started['id']}/end"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda key: driver.post(path, key=key), ["end-a", "end-b"]))
        assert sorted(a.status_code for a in answers) == [200, 409]
        assert next(a for a in answers if a.status_code == 409).json()["code"] == "session_not_endable"
        retry = driver.post(
            path,
            key=next(k for k, a in zip(["end-a", "end-b"], answers, strict=True) if a.status_code == 200),
        )
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["status"] == "ended"
        assert intents_of(started["id"]) == [("succeeded", 20_000, 10_000)]
        assert driver.wallet_balance()["posted"] == 490_000
        assert ledger_ok()

    def test_two_extensions_at_once_are_applied_one_after_the_other_within_the_maximum(self, api, operator):
        driver = Driver(api)
        started = driver.park(minutes=60)
        path = f"/v1/parking/sessions/{started['id']}/extend"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda key: driver.post(path, {"minutes": 100}, key=key), ["x-1", "x-2"]))
        assert sorted(a.status_code for a in answers) == [200, 422]  # 60 + 100 + 100 > 240
        assert next(a for a in answers if a.status_code == 422).json()["code"] == "duration_out_of_range"
        session = driver.get(f"/v1/parking/sessions/{started['id']}").json()
        assert (session["prepaid_minutes"], session["prepaid_amount"]) == (160, 30_000)
        assert driver.wallet_balance()["held"] == 30_000
