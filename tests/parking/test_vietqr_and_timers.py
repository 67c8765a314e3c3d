"""VietQR sessions (paid up front, started by the bank's webhook, unused part refunded); reminders and
expiry through real RQ jobs; an extension racing the expiry job."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, SimpleWorker
from sqlalchemy import select, update

from hanoipay.db import job_session
from hanoipay.jobs import relay_all, run_job
from hanoipay.notifications import Notification
from parking.models import ParkingSession
from payments.jobs import expire_vietqr_intents
from payments.models import PaymentIntent
from tests.factories import auth, make_user
from tests.parking.conftest import Driver
from tests.parking.test_sessions import end_at, ledger_ok
from tests.payments.test_bank import bank_secret, transfer  # noqa: F401  (bank_secret is an autouse fixture)


def drain(redis_url: str) -> None:
    relay_all()
    connection = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)


def start_by_qr(driver: Driver, zone: str = "Z-MAIN", minutes: int = 120, plate: str = "30A-123.45"):
    quote = driver.quote(zone, minutes).json()["id"]
    answer = driver.post("/v1/parking/sessions", {"quote_id": quote, "plate": plate, "provider": "vietqr"})
    assert answer.status_code == 201, answer.text
    return answer.json()


class TestVietQr:
    def test_paid_up_front_started_by_the_bank_and_visible_to_attendants_at_once(
        self, api, operator, attendant
    ):
        driver = Driver(api)
        pending = start_by_qr(driver)
        assert pending["status"] == "pending_payment"
        assert pending["started_at"] is None
        action = pending["payments"][0]["next_action"]
        assert (action["type"], action["amount"]) == ("vietqr_transfer", 20_000)
        look = lambda: api.get("/v1/parking/enforcement/plates/30A12345", headers=auth(attendant)).json()  # noqa: E731
        assert look()["status"] == "payment_pending"
        assert transfer(api, 20_000, f"CK {action['reference']}").json()["status"] == "applied"
        seen = look()  # right after the webhook's answer, with no job run in between
        assert (seen["status"], seen["session_id"]) == ("paid", pending["id"])
        assert driver.get(f"/v1/parking/sessions/{pending['id']}").json()["status"] == "active"

    def test_ending_early_refunds_the_unused_part_through_the_core(self, api, operator):
        driver = Driver(api)
        pending = start_by_qr(driver, minutes=180)
        transfer(api, 30_000, pending["payments"][0]["next_action"]["reference"])
        ended = end_at(driver, pending["id"], 45)
        assert (ended.charged_amount, ended.unpaid_amount) == (10_000, 0)
        receipt = driver.get(f"/v1/parking/sessions/{pending['id']}/receipt").json()
        assert (receipt["payments"][0]["amount_received"], receipt["payments"][0]["amount_refunded"]) == (
            30_000,
            20_000,
        )
        assert receipt["paid_amount"] == 10_000
        finance = make_user(["finance"])
        payouts = api.get("/v1/payouts", headers=auth(finance)).json()
        assert [(p["amount"], p["bank_bin"]) for p in payouts] == [(20_000, "970415")]
        assert ledger_ok()

    def test_an_overstay_by_qr_is_owed_until_the_bank_reports_it(self, api, operator, attendant):
        driver = Driver(api)
        pending = start_by_qr(driver, minutes=60)
        transfer(api, 10_000, pending["payments"][0]["next_action"]["reference"])
        ended = end_at(driver, pending["id"], 100)
        assert (ended.charged_amount, ended.unpaid_amount) == (20_000, 10_000)
        owed = driver.get(f"/v1/parking/sessions/{pending['id']}").json()["payments"][-1]
        assert (owed["kind"], owed["status"]) == ("overstay", "requires_action")
        transfer(api, 10_000, owed["next_action"]["reference"])
        assert driver.get(f"/v1/parking/sessions/{pending['id']}").json()["unpaid_amount"] == 0
        assert api.get("/v1/parking/enforcement/plates/30A-123.45", headers=auth(attendant)).json()[
            "status"
        ] == ("no_session")

    def test_a_qr_never_paid_cancels_the_session_and_frees_the_spot(self, api, operator):
        driver = Driver(api)
        pending = start_by_qr(driver, zone="Z-ONE", minutes=60)
        with job_session() as session:
            session.execute(
                update(PaymentIntent)
                .where(PaymentIntent.purpose_ref == pending["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert expire_vietqr_intents() == 1
        assert driver.get(f"/v1/parking/sessions/{pending['id']}").json()["status"] == "canceled"
        assert Driver(api).park("Z-ONE")["status"] == "active"


class TestTimers:
    def test_the_reminder_is_scheduled_in_rq_and_recorded_once_as_a_notification(
        self, api, operator, redis_url
    ):
        driver = Driver(api)
        started = driver.park(minutes=5)  # the zone reminds 10 minutes before: due at once
        drain(redis_url)
        with job_session() as session:
            sent = session.scalars(
                select(Notification).where(Notification.recipient_id == driver.user.id)
            ).all()
            assert [(n.kind, n.delivered_at is not None) for n in sent] == [("parking.expiring", True)]
            assert "30A-123.45" in sent[0].text
        assert run_job("parking.send_reminder", session_id=started["id"]) is False  # once per paid-until time
        later = driver.park(minutes=60, plate="30A-777.77")
        drain(redis_url)
        connection = redis.Redis.from_url(redis_url)
        scheduled = Queue("default", connection=connection).scheduled_job_registry.get_job_ids()
        stamp = int(datetime.fromisoformat(later["covered_until"]).timestamp())
        assert {f"parking-expire-{later['id']}-{stamp}", f"parking-remind-{later['id']}-{stamp}"} <= set(
            scheduled
        )

    def test_expiry_turns_a_session_expired_and_attendants_see_since_when(self, api, operator, attendant):
        driver = Driver(api)
        started = driver.park(minutes=30)
        covered = datetime.fromisoformat(started["covered_until"])
        assert (
            run_job(
                "parking.expire_session",
                session_id=started["id"],
                now=(covered - timedelta(seconds=1)).isoformat(),
            )
            is False
        )
        assert run_job("parking.expire_session", session_id=started["id"], now=covered.isoformat()) is True
        assert driver.get(f"/v1/parking/sessions/{started['id']}").json()["status"] == "expired"
        refused = driver.post(f"/v1/parking/sessions/{started['id']}/extend", {"minutes": 30})
        assert (refused.status_code, refused.json()["code"]) == (409, "session_not_extendable")
        overstays = api.get("/v1/parking/enforcement/overstays", headers=auth(attendant)).json()
        assert [o["session_id"] for o in overstays] == [started["id"]]

    def test_an_extension_racing_the_expiry_job_is_applied_or_refused_never_both(self, api, operator):
        outcomes = set()
        for i in range(6):
            driver = Driver(api)
            started = driver.park(minutes=30, plate=f"30A-{i:03d}.11")
            with job_session() as session:  # move the session so its paid time ends a moment from now
                psn = session.get(ParkingSession, started["id"])
                psn.started_at = datetime.now(UTC) - timedelta(minutes=30) + timedelta(milliseconds=300)
                psn.covered_until = psn.started_at + timedelta(minutes=30)
                deadline = psn.covered_until
            with ThreadPoolExecutor(2) as pool:
                extend = pool.submit(
                    driver.post, f"/v1/parking/sessions/{started['id']}/extend", {"minutes": 60}
                )
                expire = pool.submit(
                    run_job, "parking.expire_session", session_id=started["id"], now=deadline.isoformat()
                )
                extended, expired = extend.result(), expire.result()
            with job_session() as session:
                psn = session.get(ParkingSession, started["id"])
                status, minutes, amount = psn.status, psn.prepaid_minutes, psn.prepaid_amount
            if extended.status_code == 200:
                assert not expired
                assert (status, minutes, amount) == ("active", 90, 20_000)
                assert driver.wallet_balance()["held"] == 20_000
            else:
                assert expired
                assert extended.json()["code"] == "session_not_extendable"
                assert (status, minutes, amount) == ("expired", 30, 10_000)
                assert driver.wallet_balance()["held"] == 10_000
            outcomes.add(extended.status_code)
            end_at(driver, started["id"], 31)
        assert outcomes <= {200, 409}
        assert ledger_ok()
