"""From taps to money: upload, pricing at once, one charge per card per day, adjustments, debts, passes."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from hanoipay.db import job_session
from payments import balances
from payments.models import PaymentIntent
from tests.factories import FINANCE, PASSWORD, auth
from tests.tickets.conftest import Rider, at, drain, make_gate, make_rider, tap, today, upload
from tickets.credentials import b64url
from tickets.models import FareCharge, TransitTap
from tickets.service.charging import charge_closed_days

TODAY = today()


def charge(now: datetime | None = None) -> None:
    with job_session() as session:
        charge_closed_days(session, now=now)


def wallet(api: httpx.Client, rider: Rider) -> int:
    return int(api.get(f"/v1/wallets/{rider.wallet.id}", headers=rider.headers).json()["available"])


def days(api: httpx.Client, rider: Rider) -> dict[str, dict]:
    answer = api.get(f"/v1/transit/cards/{rider.card_id}/days", headers=rider.headers).json()
    return {d["service_day"]: d for d in answer}


def ledger_ok() -> bool:
    with job_session() as session:
        return balances.verify(session).ok


class TestUploadAndPricing:
    def test_taps_are_priced_at_once_and_charged_once_after_the_day(self, api, operator, redis_url):
        day = TODAY - timedelta(days=2)
        rider = make_rider(api, issued_at=at(day, "06:00"))
        gate = make_gate(api)
        taps = [
            tap(rider, "09", at(day, "08:00"), "b09_boho"),
            tap(rider, "2A", at(day, "08:30"), "m2a_01"),
            tap(rider, "2A", at(day, "08:50"), "m2a_05", "out"),
        ]
        answer = upload(api, gate, taps)
        assert answer.json() == {"applied": 3, "duplicates": 0, "errors": []}
        drain(redis_url)
        trips = api.get(f"/v1/transit/cards/{rider.card_id}/trips", headers=rider.headers).json()["data"]
        trips.sort(key=lambda t: t["started_at"])
        assert [(t["route_id"], t["amount"]) for t in trips] == [("09", 8_000), ("2A", 8_000)]
        metro = trips[1]
        assert (metro["from_stop_id"], metro["to_stop_id"], metro["base_amount"]) == (
            "m2a_01",
            "m2a_05",
            11_000,
        )
        assert [r["kind"] for r in metro["reasons"]] == ["fare", "transfer"]
        assert days(api, rider)[day.isoformat()]["pending"] == 16_000  # priced, not charged yet
        assert days(api, rider)[day.isoformat()]["total_amount"] == 16_000
        signed_in = api.post("/signin", data={"email": rider.user.email, "password": PASSWORD})
        cookie = {"Cookie": f"hanoipay_session={signed_in.cookies['hanoipay_session']}"}
        page = api.get("/transit?lang=en", headers=cookie)
        assert page.status_code == 200, page.text
        assert page.text.count("Single fare: bus_8000") == 1  # the bus ride, and the metro ride's own
        assert "Transfer discount" in page.text
        charge()
        assert wallet(api, rider) == 500_000 - 16_000
        assert days(api, rider)[day.isoformat()]["charged_amount"] == 16_000
        charge()  # processing again charges nothing
        upload(api, gate, taps)
        drain(redis_url)
        charge()
        assert wallet(api, rider) == 484_000
        with job_session() as session:
            intents = session.scalars(
                select(PaymentIntent).where(PaymentIntent.purpose == "transit_fare")
            ).all()
            assert [(i.amount, i.status, i.payer_id) for i in intents] == [
                (16_000, "succeeded", rider.user.id)
            ]
        assert ledger_ok()

    def test_today_is_pending_until_the_day_closes(self, api, operator, redis_url):
        rider = make_rider(api)
        gate = make_gate(api)
        upload(api, gate, [tap(rider, "107", datetime.now(UTC))])
        drain(redis_url)
        today = max(days(api, rider).values(), key=lambda d: d["service_day"])
        assert (today["total_amount"], today["pending"], today["charged_amount"]) == (20_000, 20_000, 0)
        charge()
        assert wallet(api, rider) == 500_000
        charge(now=datetime.now(UTC) + timedelta(days=1))
        assert wallet(api, rider) == 480_000

    def test_a_malformed_tap_is_reported_by_index_and_the_rest_applied(self, api, operator, redis_url):
        day = TODAY - timedelta(days=1)
        rider = make_rider(api, issued_at=at(day, "05:00"))
        gate = make_gate(api)
        good = [tap(rider, "09", at(day, "08:00")), tap(rider, "34", at(day, "12:00"))]
        forged = tap(rider, "09", at(day, "13:00"))
        forged["payload"] = forged["payload"][:-4] + "AAAA"
        batch = [
            good[0],
            {"id": "x", "route_id": "09"},
            "not a tap",
            {**tap(rider, "09", at(day, "09:00")), "route_id": "999"},
            {**tap(rider, "09", at(day, "09:00")), "stop_id": "nowhere"},
            {**tap(rider, "09", at(day, "09:00")), "tapped_at": "2020-01-01T00:00:00Z"},
            {**tap(rider, "09", at(day, "09:00")), "tapped_at": "2026-11-20T08:00:00"},
            {**tap(rider, "09", at(day, "09:00")), "extra": 1},
            good[0],
            forged,
            good[1],
        ]
        answer = upload(api, gate, batch).json()
        assert answer["applied"] == 3
        assert [(e["index"], e["code"]) for e in answer["errors"]] == [
            (1, "invalid_tap"),
            (2, "invalid_tap"),
            (3, "unknown_route"),
            (4, "unknown_stop"),
            (5, "tap_time_out_of_range"),
            (6, "invalid_tap"),
            (7, "invalid_tap"),
            (8, "duplicate_in_batch"),
        ]
        with job_session() as session:
            stored = dict(session.execute(select(TransitTap.id, TransitTap.result)).all())
        assert stored[forged["id"]] == "bad_signature"  # kept, never priced
        drain(redis_url)
        assert days(api, rider)[day.isoformat()]["total_amount"] == 18_000

    def test_bad_batches_are_refused_whole(self, api, operator):
        gate = make_gate(api)
        assert upload(api, gate, []).status_code == 422
        assert upload(api, gate, [{}] * 1_001).status_code == 422
        no_auth = api.post("/v1/transit/taps/batch", json={"taps": [{}]})
        assert no_auth.json()["code"] == "invalid_validator_credentials"

    def test_the_same_batch_from_two_connections_is_applied_once(self, api, live_server, operator, redis_url):
        day = TODAY - timedelta(days=1)
        riders = [make_rider(api, issued_at=at(day, "05:00")) for _ in range(3)]
        gate = make_gate(api)
        batch = [
            tap(r, "09", at(day, f"{8 + i}:{j:02d}")) for i, r in enumerate(riders) for j in range(0, 60, 20)
        ]

        def send(_: int) -> dict:
            with httpx.Client(base_url=live_server.url, timeout=30) as own:
                return upload(own, gate, batch).json()

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, range(2)))
        assert sorted(a["applied"] for a in answers) == [0, 9] or sum(a["applied"] for a in answers) == 9
        assert sum(a["duplicates"] for a in answers) == 9
        drain(redis_url)
        charge()
        assert [wallet(api, r) for r in riders] == [476_000] * 3
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(TransitTap)) == 9


class TestLateTaps:
    def test_a_late_tap_reprices_the_day_and_a_charged_day_gets_an_adjustment(self, api, operator, redis_url):
        day = TODAY - timedelta(days=3)
        rider = make_rider(api, issued_at=at(day, "05:00"))
        bus, offline = make_gate(api, "bus-1"), make_gate(api, "bus-2")
        upload(api, bus, [tap(rider, "09", at(day, "08:00"))])
        drain(redis_url)
        charge()
        assert wallet(api, rider) == 492_000
        # A validator offline all day uploads an earlier ride: metro at 07:30, so the bus becomes a transfer.
        upload(
            api,
            offline,
            [tap(rider, "3", at(day, "07:30"), "m3_01"), tap(rider, "3", at(day, "07:50"), "m3_03", "out")],
        )
        drain(redis_url)
        assert days(api, rider)[day.isoformat()]["total_amount"] == 8_000 + 5_000
        charge()
        assert wallet(api, rider) == 500_000 - 13_000
        with job_session() as session:
            kinds = session.execute(select(FareCharge.kind, FareCharge.amount).order_by(FareCharge.id)).all()
        assert kinds == [("charge", 8_000), ("adjustment", 5_000)]
        assert ledger_ok()

    def test_a_late_tap_that_earns_the_pass_earlier_refunds_a_later_day(self, api, operator, redis_url):
        first, second = TODAY - timedelta(days=3), TODAY - timedelta(days=2)
        if first.month != second.month:
            first, second = TODAY - timedelta(days=4), TODAY - timedelta(days=3)
        if first.month != TODAY.month and second.month != first.month:
            return
        rider = make_rider(api, issued_at=at(first, "05:00"), balance=1_000_000)
        gate = make_gate(api)
        rides = [tap(rider, "09", at(first, "05:00") + timedelta(minutes=30 * i)) for i in range(16)]
        rides += [tap(rider, "09", at(second, "08:00")), tap(rider, "09", at(second, "18:00"))]
        upload(api, gate, rides)
        drain(redis_url)
        # 16 × 8 000 = 128 000 on the first day; the second day earns the pass: 8 000, then 4 000.
        assert [days(api, rider)[d.isoformat()]["total_amount"] for d in (first, second)] == [128_000, 12_000]
        charge()
        late = tap(rider, "09", at(first, "23:00"))
        upload(api, gate, [late])
        drain(redis_url)
        assert [days(api, rider)[d.isoformat()]["total_amount"] for d in (first, second)] == [136_000, 4_000]
        charge()
        assert wallet(api, rider) == 1_000_000 - 140_000
        with job_session() as session:
            kinds = [k for (k,) in session.execute(select(FareCharge.kind).order_by(FareCharge.id))]
        assert sorted(kinds) == ["adjustment", "charge", "charge", "refund"]
        progress = api.get(
            f"/v1/transit/cards/{rider.card_id}/caps",
            params={"service_day": second.isoformat()},
            headers=rider.headers,
        ).json()
        month = {p["product_id"]: p for p in progress if p["period"] == "month"}
        assert month["bus_month_09"]["reached"] is True
        assert month["bus_month_all"]["remaining"] == 140_000
        assert ledger_ok()


class TestAcrossMidnightAndMonthEnd:
    def test_a_ride_after_midnight_counts_towards_the_day_before_in_hanoi(self, api, operator, redis_url):
        day = TODAY.replace(day=1) - timedelta(days=1)  # the last day of last month
        rider = make_rider(api, issued_at=at(day, "05:00"))
        gate = make_gate(api)
        upload(
            api,
            gate,
            [
                tap(rider, "2A", at(day, "22:00"), "m2a_01"),
                tap(rider, "2A", at(day, "22:30"), "m2a_12", "out"),
                tap(rider, "2A", at(day, "23:40"), "m2a_12"),
                tap(rider, "2A", at(day, "24:10"), "m2a_01", "out"),
                tap(rider, "2A", at(day, "25:00"), "m2a_01"),  # 01:00 on the 1st: still the same service day
                tap(rider, "2A", at(day, "25:20"), "m2a_12", "out"),
                tap(rider, "2A", at(day, "28:30"), "m2a_01"),  # 04:30 on the 1st: a new day in a new month
                tap(rider, "2A", at(day, "28:50"), "m2a_12", "out"),
            ],
        )
        drain(redis_url)
        seen = days(api, rider)
        assert seen[day.isoformat()]["total_amount"] == 30_000
        assert seen[day.isoformat()]["trips"] == 3
        assert seen[(day + timedelta(days=1)).isoformat()]["total_amount"] == 15_000
        caps = api.get(
            f"/v1/transit/cards/{rider.card_id}/caps",
            params={"service_day": day.isoformat()},
            headers=rider.headers,
        ).json()
        assert [(c["product_id"], c["period"], c["reached"]) for c in caps] == [("m2a_day", "day", True)]


class TestDebt:
    def test_a_short_wallet_leaves_a_debt_and_past_the_limit_the_card_is_denied(
        self, api, operator, redis_url
    ):
        day1, day2 = TODAY - timedelta(days=3), TODAY - timedelta(days=2)
        rider = make_rider(api, issued_at=at(day1, "05:00"), balance=5_000)
        gate = make_gate(api)
        upload(api, gate, [tap(rider, "107", at(day1, "08:00"))])
        drain(redis_url)
        charge()
        assert wallet(api, rider) == 0
        assert api.get(f"/v1/transit/cards/{rider.card_id}", headers=rider.headers).json()["debt"] == 15_000
        assert days(api, rider)[day1.isoformat()]["owed"] == 15_000
        assert api.get("/v1/transit/deny_list", headers=gate.headers).json()["cards_in_debt"] == []
        upload(api, gate, [tap(rider, "90", at(day2, "08:00"))])
        drain(redis_url)
        charge()
        assert api.get("/v1/transit/deny_list", headers=gate.headers).json()["cards_in_debt"] == [
            rider.card_id
        ]
        refused = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(rider.device.code()), "route_id": "09"},
            headers=gate.headers,
        )
        assert refused.json()["reason"] == "card_in_debt"
        short = api.post(f"/v1/transit/cards/{rider.card_id}/pay_debt", headers=rider.headers)
        assert (short.status_code, short.json()["code"]) == (402, "insufficient_funds")
        with job_session() as session:
            from payments.topups import record_manual_topup

            record_manual_topup(
                session, FINANCE, rider.wallet.id, amount=50_000, reason="cash at the counter"
            )
        paid = api.post(
            f"/v1/transit/cards/{rider.card_id}/pay_debt",
            headers=rider.headers | {"Idempotency-Key": "debt-1"},
        )
        assert paid.json() == {"days": 2, "charged": 27_000, "refunded": 0}
        again = api.post(
            f"/v1/transit/cards/{rider.card_id}/pay_debt",
            headers=rider.headers | {"Idempotency-Key": "debt-1"},
        )
        assert again.headers["Idempotent-Replayed"] == "true"
        assert (
            api.post(f"/v1/transit/cards/{rider.card_id}/pay_debt", headers=rider.headers).json()["code"]
            == "no_debt"
        )
        assert wallet(api, rider) == 50_000 - 27_000
        assert api.get("/v1/transit/deny_list", headers=gate.headers).json()["cards_in_debt"] == []
        accepted = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(rider.device.code()), "route_id": "09"},
            headers=gate.headers,
        )
        assert accepted.json()["accepted"] is True
        assert ledger_ok()


class TestRaces:
    def test_two_charge_runs_at_once_charge_each_day_once(self, api, operator, redis_url):
        day = TODAY - timedelta(days=1)
        riders = [make_rider(api, issued_at=at(day, "05:00")) for _ in range(4)]
        gate = make_gate(api)
        upload(api, gate, [tap(r, "90", at(day, f"0{6 + i}:00")) for i, r in enumerate(riders)])
        drain(redis_url)

        def run(_: int) -> int:
            with job_session() as session:
                return charge_closed_days(session).charged

        with ThreadPoolExecutor(2) as pool:
            assert sum(pool.map(run, range(2))) == 4 * 12_000
        charge()
        assert [wallet(api, r) for r in riders] == [488_000] * 4
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(FareCharge)) == 4
        assert ledger_ok()

    def test_two_debt_payments_at_once_pay_once(self, api, live_server, operator, redis_url):
        day = TODAY - timedelta(days=1)
        rider = make_rider(api, issued_at=at(day, "05:00"), balance=0)
        upload(api, make_gate(api), [tap(rider, "107", at(day, "08:00"))])
        drain(redis_url)
        charge()
        with job_session() as session:
            from payments.topups import record_manual_topup

            record_manual_topup(session, FINANCE, rider.wallet.id, amount=100_000, reason="cash")

        def pay(_: int) -> httpx.Response:
            with httpx.Client(base_url=live_server.url, timeout=30) as own:
                return own.post(f"/v1/transit/cards/{rider.card_id}/pay_debt", headers=rider.headers)

        with ThreadPoolExecutor(2) as pool:
            answers = sorted(a.status_code for a in pool.map(pay, range(2)))
        assert answers == [200, 409]
        assert wallet(api, rider) == 80_000
        assert ledger_ok()


class TestPasses:
    def test_a_monthly_pass_bought_through_the_core_makes_its_route_free(self, api, operator, redis_url):
        rider = make_rider(api)
        gate = make_gate(api)
        body = {"product_id": "bus_month_09"}
        headers = rider.headers | {"Idempotency-Key": "pass-09"}
        bought = api.post(f"/v1/transit/cards/{rider.card_id}/passes", json=body, headers=headers)
        assert bought.status_code == 201, bought.text
        assert (bought.json()["status"], bought.json()["amount"]) == ("active", 140_000)
        again = api.post(f"/v1/transit/cards/{rider.card_id}/passes", json=body, headers=headers)
        assert again.json()["id"] == bought.json()["id"]
        assert wallet(api, rider) == 360_000
        upload(
            api,
            gate,
            [tap(rider, "09", datetime.now(UTC)), tap(rider, "34", datetime.now(UTC) + timedelta(minutes=1))],
        )
        drain(redis_url)
        trips = api.get(f"/v1/transit/cards/{rider.card_id}/trips", headers=rider.headers).json()["data"]
        assert sorted((t["route_id"], t["amount"]) for t in trips) == [("09", 0), ("34", 10_000)]
        pass_trip = next(t for t in trips if t["route_id"] == "09")
        assert pass_trip["reasons"][-1] == {"kind": "pass", "product": "bus_month_09"}
        intent = api.get(f"/v1/payment_intents/{bought.json()['intent_id']}", headers=rider.headers).json()
        assert (intent["purpose"], intent["status"], intent["merchant_id"]) == (
            "transit_pass",
            "succeeded",
            operator.id,
        )

    def test_pass_refusals_change_nothing(self, api, operator):
        rider = make_rider(api, balance=10_000)
        url = f"/v1/transit/cards/{rider.card_id}/passes"
        poor = api.post(url, json={"product_id": "bus_month_all"}, headers=rider.headers)
        assert (poor.status_code, poor.json()["code"]) == (402, "insufficient_funds")
        assert (
            api.post(url, json={"product_id": "bus_8000"}, headers=rider.headers).json()["code"]
            == "not_a_pass"
        )
        assert (
            api.post(url, json={"product_id": "nope"}, headers=rider.headers).json()["code"]
            == "product_not_found"
        )
        past = api.post(url, json={"product_id": "m2a_day", "starts_on": "2020-01-01"}, headers=rider.headers)
        assert past.status_code == 422
        other = make_rider(api)
        assert (
            api.post(url, json={"product_id": "m2a_day"}, headers=other.headers).json()["code"]
            == "card_not_found"
        )
        assert api.get(url, headers=rider.headers).json() == []
        assert wallet(api, rider) == 10_000
        direct = api.post(
            "/v1/payment_intents",
            json={
                "amount": 8_000,
                "currency": "VND",
                "purpose": "transit_fare",
                "merchant_id": operator.id,
                "provider": "wallet",
                "wallet_id": rider.wallet.id,
                "confirm": True,
            },
            headers=rider.headers,
        )
        assert direct.json()["code"] == "invalid_request"
        pass_by_hand = api.post(
            "/v1/payment_intents",
            json={
                "amount": 30_000,
                "currency": "VND",
                "purpose": "transit_pass",
                "purpose_ref": "pass_01M8AAAAAAAAAAAAAAAAAAAAAA",
                "merchant_id": operator.id,
                "provider": "wallet",
                "wallet_id": rider.wallet.id,
                "confirm": True,
            },
            headers=rider.headers,
        )
        assert pass_by_hand.json()["code"] == "invalid_request"

    def test_two_concurrent_purchases_with_one_key_buy_one_pass(self, api, live_server, operator):
        rider = make_rider(api, balance=300_000)
        headers = rider.headers | {"Idempotency-Key": "race-1"}

        def buy(_: int) -> httpx.Response:
            with httpx.Client(base_url=live_server.url, timeout=30) as own:
                return own.post(
                    f"/v1/transit/cards/{rider.card_id}/passes",
                    json={"product_id": "bus_month_all"},
                    headers=headers,
                )

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(buy, range(2)))
        assert {a.json()["id"] for a in answers if a.status_code == 201} == {answers[0].json()["id"]}
        assert wallet(api, rider) == 20_000


def test_cards_belong_to_their_rider(api, operator):
    rider, other = make_rider(api), make_rider(api)
    for path in ("", "/devices", "/trips", "/days", "/caps", "/passes"):
        answer = api.get(f"/v1/transit/cards/{rider.card_id}{path}", headers=other.headers)
        assert (answer.status_code, answer.json()["code"]) == (404, "card_not_found"), path
    assert api.post(f"/v1/transit/devices/{rider.device_id}/revoke", headers=other.headers).status_code == 404
    foreign_wallet = api.post("/v1/transit/cards", json={"wallet_id": rider.wallet.id}, headers=other.headers)
    assert (foreign_wallet.status_code, foreign_wallet.json()["code"]) == (404, "wallet_not_found")
    for key in (b64url(b"\x01" * 31), "*" * 43):
        bad_key = api.post(
            f"/v1/transit/cards/{rider.card_id}/devices", json={"public_key": key}, headers=rider.headers
        )
        assert bad_key.json()["code"] == "invalid_device_key"
    taken = api.post(
        f"/v1/transit/cards/{rider.card_id}/devices",
        json={"public_key": b64url(rider.device.public_key)},
        headers=rider.headers,
    )
    assert taken.json()["code"] == "device_key_taken"
    nul = api.post(
        "/v1/transit/cards", json={"wallet_id": rider.wallet.id, "name": "a\u0000b"}, headers=auth(rider.user)
    )
    assert nul.status_code == 422
