"""Payment intents over HTTP: create, confirm, capture, cancel, list, and their refusals."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from hanoipay.db import job_session
from payments import balances
from payments.jobs import void_expired_authorizations
from payments.models import Hold, JournalEntry, PaymentIntent
from tests.factories import auth, make_merchant, make_user, make_wallet, pay


def wallet_available(wallet) -> int:
    with job_session() as session:
        return balances.balance(session, wallet.account_id).available


def merchant_posted(merchant) -> int:
    with job_session() as session:
        return balances.balance(session, merchant.account_id).posted


def entry_count() -> int:
    with job_session() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


class TestWalletPayment:
    def test_pays_merchant_less_fee_and_debits_wallet(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=150)
        wallet = make_wallet(user, balance=100_000)
        r = pay(api, user, merchant, wallet, 8_000)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "succeeded"
        assert body["amount_received"] == 8_000
        assert body["fee_amount"] == 120  # 8 000 × 1.5 %
        assert wallet_available(wallet) == 92_000
        assert merchant_posted(merchant) == 7_880

    def test_insufficient_funds_is_refused_moves_no_money_and_is_kept_on_the_intent(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=5_000)
        before = entry_count()
        r = pay(api, user, merchant, wallet, 8_000)
        assert r.status_code == 402
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "insufficient_funds"
        assert wallet_available(wallet) == 5_000
        assert entry_count() == before
        intent = api.get(f"/v1/payment_intents/{r.json()['payment_intent']}", headers=auth(user)).json()
        assert intent["status"] == "requires_payment_method"
        assert intent["amount_received"] == 0
        assert intent["last_payment_error"] == {
            "type": "wallet_error",
            "code": "insufficient_funds",
            "decline_code": None,
            "message": r.json()["detail"],
        }
        make_wallet_topup = api.post(
            f"/v1/wallets/{wallet.id}/manual_topups",
            json={"amount": 10_000, "reason": "more money"},
            headers=auth(make_user(["finance"])),
        )
        assert make_wallet_topup.status_code == 201
        paid = api.post(
            f"/v1/payment_intents/{intent['id']}/confirm",
            json={"provider": "wallet", "wallet_id": wallet.id},
            headers=auth(user),
        ).json()
        assert (paid["status"], paid["last_payment_error"]) == ("succeeded", None)

    def test_create_then_confirm_in_two_steps(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=20_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(
            "/v1/payment_intents",
            json={
                "amount": 15_000,
                "currency": "VND",
                "merchant_id": merchant.id,
                "purpose": "merchant_payment",
            },
            headers=auth(vendor),
        )
        assert r.status_code == 201, r.text
        intent = r.json()
        assert intent["status"] == "requires_payment_method"
        assert intent["payer_id"] is None
        seen = api.get(f"/v1/payment_intents/{intent['id']}", headers=auth(user))
        assert seen.status_code == 200  # an open intent can be looked up by the person about to pay it
        confirmed = api.post(
            f"/v1/payment_intents/{intent['id']}/confirm",
            json={"provider": "wallet", "wallet_id": wallet.id},
            headers=auth(user),
        )
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "succeeded"
        assert confirmed.json()["payer_id"] == user.id
        assert wallet_available(wallet) == 5_000

    def test_cannot_pay_from_someone_elses_wallet(self, api):
        owner, thief, merchant = make_user(), make_user(), make_merchant()
        wallet = make_wallet(owner, balance=20_000)
        r = pay(api, thief, merchant, wallet, 1_000)
        assert r.status_code == 404
        assert r.json()["code"] == "wallet_not_found"
        assert wallet_available(wallet) == 20_000

    def test_a_merchant_or_wallet_that_does_not_exist_is_named_and_nothing_is_written(self, api):
        # The merchant and the wallet are read in one statement; whichever is missing is still refused.
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=20_000)
        before = entry_count()
        cases = (
            ({"merchant_id": "mer_missing"}, "merchant_not_found"),
            ({"wallet_id": "wal_missing"}, "wallet_not_found"),
            ({"merchant_id": "mer_missing", "wallet_id": "wal_missing"}, "merchant_not_found"),
        )
        for extra, code in cases:
            r = pay(api, user, merchant, wallet, 1_000, **extra)
            assert r.status_code == 404, r.text
            assert r.json()["code"] == code
        assert wallet_available(wallet) == 20_000
        assert entry_count() == before
        with job_session() as session:
            paid = (
                select(func.count())
                .select_from(PaymentIntent)
                .where(PaymentIntent.purpose == "merchant_payment")
            )
            assert session.scalar(paid.where(PaymentIntent.payer_id == user.id)) == 0

    def test_confirm_without_payment_method(self, api):
        user, merchant = make_user(), make_merchant()
        r = api.post(
            "/v1/payment_intents",
            json={
                "amount": 1_000,
                "currency": "VND",
                "merchant_id": merchant.id,
                "purpose": "merchant_payment",
                "provider": "wallet",
                "confirm": True,
            },
            headers=auth(user),
        )
        assert r.status_code == 422
        assert r.json()["code"] == "payment_method_required"

    def test_confirming_a_canceled_intent_is_refused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=20_000)
        r = api.post(
            "/v1/payment_intents",
            json={
                "amount": 1_000,
                "currency": "VND",
                "merchant_id": merchant.id,
                "purpose": "merchant_payment",
            },
            headers=auth(user),
        )
        intent_id = r.json()["id"]
        assert (
            api.post(f"/v1/payment_intents/{intent_id}/cancel", headers=auth(user)).json()["status"]
            == "canceled"
        )
        again = api.post(
            f"/v1/payment_intents/{intent_id}/confirm",
            json={"provider": "wallet", "wallet_id": wallet.id},
            headers=auth(user),
        )
        assert again.status_code == 409
        assert again.json()["code"] == "intent_not_confirmable"
        assert wallet_available(wallet) == 20_000

    def test_wallet_topup_purpose_cannot_be_paid_from_a_wallet(self, api):
        user = make_user()
        wallet = make_wallet(user, balance=1_000)
        r = api.post(
            "/v1/payment_intents",
            json={
                "amount": 1_000,
                "currency": "VND",
                "purpose": "wallet_topup",
                "purpose_ref": wallet.id,
                "provider": "wallet",
                "wallet_id": wallet.id,
                "confirm": True,
            },
            headers=auth(user),
        )
        assert r.status_code == 422
        assert r.json()["code"] == "unknown_provider"

    def test_foreign_merchant_for_a_vendor(self, api):
        mine, theirs = make_merchant(), make_merchant(name="Other stall")
        vendor = make_user(["vendor"], merchant_id=mine.id)
        r = api.post(
            "/v1/payment_intents",
            json={
                "amount": 1_000,
                "currency": "VND",
                "merchant_id": theirs.id,
                "purpose": "merchant_payment",
            },
            headers=auth(vendor),
        )
        assert r.status_code == 404
        assert r.json()["code"] == "merchant_not_found"


def authorize(api, user, merchant, wallet, amount):
    r = pay(api, user, merchant, wallet, amount, capture_method="manual")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_capture"
    return r.json()


class TestManualCapture:
    def test_authorization_holds_funds_then_partial_capture_releases_the_rest(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        operator = make_user(["operator"], merchant_id=merchant.id)
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 30_000)
        assert intent["amount_capturable"] == 30_000
        assert intent["capture_before"] is not None
        assert wallet_available(wallet) == 20_000
        r = api.post(
            f"/v1/payment_intents/{intent['id']}/capture",
            json={"amount_to_capture": 12_000},
            headers=auth(operator),
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
        assert r.json()["amount_received"] == 12_000
        assert wallet_available(wallet) == 38_000
        assert merchant_posted(merchant) == 12_000

    def test_hold_is_written_with_its_intent_in_one_go(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 10_000)
        with job_session() as session:
            hold = session.scalars(select(Hold).where(Hold.intent_id == intent["id"])).one()
            stored = session.get(PaymentIntent, intent["id"])
            assert stored is not None
            assert (stored.status, stored.amount_capturable) == ("requires_capture", 10_000)
            assert (hold.amount, hold.released_at, hold.expires_at) == (10_000, None, stored.capture_before)

    def test_hold_the_wallet_cannot_cover_is_refused_and_reserves_nothing(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=5_000)
        r = pay(api, user, merchant, wallet, 8_000, capture_method="manual")
        assert r.status_code == 402
        assert r.json()["code"] == "insufficient_funds"
        assert wallet_available(wallet) == 5_000
        with job_session() as session:
            assert (
                session.scalar(
                    select(func.count()).select_from(Hold).where(Hold.intent_id == r.json()["payment_intent"])
                )
                == 0
            )
            stored = session.get(PaymentIntent, r.json()["payment_intent"])
            assert stored is not None
            assert (stored.status, stored.last_payment_error["code"]) == (
                "requires_payment_method",
                "insufficient_funds",
            )
            assert balances.balance(session, wallet.account_id).held == 0

    def test_capturing_more_than_authorized_is_refused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 10_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(
            f"/v1/payment_intents/{intent['id']}/capture",
            json={"amount_to_capture": 10_001},
            headers=auth(vendor),
        )
        assert r.status_code == 422
        assert r.json()["code"] == "amount_exceeds_capturable"
        assert r.json()["amount_capturable"] == 10_000
        assert wallet_available(wallet) == 40_000

    def test_payer_cannot_capture_and_capture_twice_is_refused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 10_000)
        assert api.post(f"/v1/payment_intents/{intent['id']}/capture", headers=auth(user)).status_code == 404
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        assert (
            api.post(f"/v1/payment_intents/{intent['id']}/capture", headers=auth(vendor)).status_code == 200
        )
        again = api.post(f"/v1/payment_intents/{intent['id']}/capture", headers=auth(vendor))
        assert again.status_code == 409
        assert again.json()["code"] == "intent_not_capturable"

    def test_cancel_voids_the_hold(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 10_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(
            f"/v1/payment_intents/{intent['id']}/cancel",
            json={"cancellation_reason": "abandoned"},
            headers=auth(vendor),
        )
        assert r.json()["status"] == "canceled"
        assert r.json()["cancellation_reason"] == "abandoned"
        assert wallet_available(wallet) == 50_000
        assert api.post(f"/v1/payment_intents/{intent['id']}/cancel", headers=auth(vendor)).json()[
            "code"
        ] == ("intent_not_cancelable")

    def test_uncaptured_authorization_is_voided_after_the_window(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        old = authorize(api, user, merchant, wallet, 10_000)
        fresh = authorize(api, user, merchant, wallet, 5_000)
        with job_session() as session:
            session.execute(
                update(PaymentIntent)
                .where(PaymentIntent.id == old["id"])
                .values(capture_before=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert void_expired_authorizations() == 1
        got = api.get(f"/v1/payment_intents/{old['id']}", headers=auth(user)).json()
        assert got["status"] == "canceled"
        assert got["cancellation_reason"] == "expired"
        assert api.get(f"/v1/payment_intents/{fresh['id']}", headers=auth(user)).json()["status"] == (
            "requires_capture"
        )
        assert wallet_available(wallet) == 45_000


class TestListing:
    def test_cursor_pagination_and_filters(self, api):
        user, merchant, other = make_user(), make_merchant(), make_merchant(name="Bãi đỗ xe Hoàn Kiếm")
        wallet = make_wallet(user, balance=1_000_000)
        ids = [pay(api, user, merchant, wallet, 1_000 + i).json()["id"] for i in range(5)]
        other_id = pay(api, user, other, wallet, 2_000).json()["id"]
        page1 = api.get(
            "/v1/payment_intents", params={"limit": 2, "merchant_id": merchant.id}, headers=auth(user)
        )
        body = page1.json()
        assert [i["id"] for i in body["data"]] == ids[::-1][:2]
        assert body["has_more"] is True
        page2 = api.get(
            "/v1/payment_intents",
            params={"limit": 2, "merchant_id": merchant.id, "starting_after": body["next_cursor"]},
            headers=auth(user),
        ).json()
        assert [i["id"] for i in page2["data"]] == ids[::-1][2:4]
        everything = api.get("/v1/payment_intents", params={"limit": 100}, headers=auth(user)).json()
        assert {i["id"] for i in everything["data"]} >= {*ids, other_id}
        assert everything["has_more"] is False
        succeeded = api.get(
            "/v1/payment_intents",
            params={"status": "succeeded", "purpose": "merchant_payment"},
            headers=auth(user),
        ).json()
        assert len(succeeded["data"]) == 6
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        none = api.get("/v1/payment_intents", params={"created_gte": future}, headers=auth(user)).json()
        assert none["data"] == []
        earlier = api.get(
            "/v1/payment_intents", params={"created_lt": future, "limit": 100}, headers=auth(user)
        )
        assert len(earlier.json()["data"]) == 7  # six payments and the funding top-up

    def test_bad_list_parameters(self, api):
        user = make_user()
        assert api.get("/v1/payment_intents", params={"limit": 0}, headers=auth(user)).status_code == 422
        assert api.get("/v1/payment_intents", params={"limit": 101}, headers=auth(user)).status_code == 422
        r = api.get("/v1/payment_intents", params={"created_gte": "yesterday"}, headers=auth(user))
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"


class TestCaptureRaces:
    def test_concurrent_captures_capture_once(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 20_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        with ThreadPoolExecutor(6) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(f"/v1/payment_intents/{intent['id']}/capture", headers=auth(vendor)),
                    range(6),
                )
            )
        assert sorted(r.status_code for r in results) == [200] + [409] * 5
        assert {r.json()["code"] for r in results if r.status_code == 409} == {"intent_not_capturable"}
        assert wallet_available(wallet) == 30_000
        assert merchant_posted(merchant) == 20_000

    def test_capture_racing_a_cancel_does_one_or_the_other(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        wallet = make_wallet(user, balance=50_000)
        intent = authorize(api, user, merchant, wallet, 20_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        with ThreadPoolExecutor(2) as pool:
            capture, cancel = pool.map(
                lambda action: api.post(f"/v1/payment_intents/{intent['id']}/{action}", headers=auth(vendor)),
                ["capture", "cancel"],
            )
        assert sorted([capture.status_code, cancel.status_code]) == [200, 409]
        final = api.get(f"/v1/payment_intents/{intent['id']}", headers=auth(vendor)).json()["status"]
        assert wallet_available(wallet) == (30_000 if final == "succeeded" else 50_000)
        assert merchant_posted(merchant) == (20_000 if final == "succeeded" else 0)
