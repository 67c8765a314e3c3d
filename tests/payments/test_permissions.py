"""Who may move money: nobody mints it, only a wallet's owner spends from it, staff do what staff do."""

from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from sqlalchemy import func, select, update

from hanoipay.db import job_session
from payments import balances
from payments.jobs import redeliver_overdue_events
from payments.models import Event, Merchant, PaymentIntent
from tests.factories import auth, make_merchant, make_user, make_wallet, pay


def succeeded_topups() -> int:
    with job_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(PaymentIntent)
                .where(PaymentIntent.purpose == "wallet_topup", PaymentIntent.status == "succeeded")
            )
            or 0
        )


def topup_body(wallet_id: str, provider: str = "manual") -> dict[str, object]:
    return {
        "amount": 1_000_000,
        "currency": "VND",
        "purpose": "wallet_topup",
        "purpose_ref": wallet_id,
        "provider": provider,
        "confirm": True,
    }


class TestNobodyMintsMoney:
    def test_a_customer_cannot_top_up_with_the_manual_provider(self, api):
        user = make_user()
        wallet = make_wallet(user)
        r = api.post("/v1/payment_intents", json=topup_body(wallet.id), headers=auth(user))
        assert r.status_code == 403
        assert r.json()["code"] == "role_not_allowed"
        assert succeeded_topups() == 0

    def test_a_customer_cannot_confirm_a_manual_intent_later_either(self, api):
        user = make_user()
        wallet = make_wallet(user)
        created = api.post(
            "/v1/payment_intents", json=topup_body(wallet.id) | {"confirm": False}, headers=auth(user)
        ).json()
        r = api.post(f"/v1/payment_intents/{created['id']}/confirm", json={}, headers=auth(user))
        assert r.status_code == 403
        with job_session() as session:
            assert balances.balance(session, wallet.account_id).posted == 0

    def test_a_vendor_cannot_credit_its_own_merchant_manually(self, api):
        merchant = make_merchant()
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        body = {
            "amount": 500_000,
            "currency": "VND",
            "merchant_id": merchant.id,
            "purpose": "merchant_payment",
            "provider": "manual",
            "confirm": True,
        }
        r = api.post("/v1/payment_intents", json=body, headers=auth(vendor))
        assert r.status_code == 403
        with job_session() as session:
            assert balances.balance(session, merchant.account_id).posted == 0

    def test_a_top_up_must_name_a_wallet_of_the_caller(self, api):
        owner, stranger = make_user(), make_user()
        wallet = make_wallet(owner)
        r = api.post("/v1/payment_intents", json=topup_body(wallet.id, "vietqr"), headers=auth(stranger))
        assert r.status_code in (404, 422)
        missing = api.post(
            "/v1/payment_intents", json=topup_body("wal_nope"), headers=auth(make_user(["finance"]))
        )
        assert missing.status_code == 404
        assert missing.json()["code"] == "wallet_not_found"

    def test_finance_records_a_top_up_through_the_intent_api(self, api):
        user, finance = make_user(), make_user(["finance"])
        wallet = make_wallet(user)
        r = api.post("/v1/payment_intents", json=topup_body(wallet.id), headers=auth(finance))
        assert r.status_code == 201, r.text
        assert r.json()["payer_id"] == user.id
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(user)).json()["available"] == 1_000_000


class TestOnlyTheOwnerSpends:
    def test_finance_cannot_pay_from_a_customers_wallet(self, api):
        user, finance, merchant = make_user(), make_user(["finance"]), make_merchant()
        wallet = make_wallet(user, balance=10_000)
        r = pay(api, finance, merchant, wallet, 5_000)
        assert r.status_code == 404
        assert r.json()["code"] == "wallet_not_found"
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(user)).json()["available"] == 10_000

    def test_an_unconfirmed_intent_with_someone_elses_wallet_is_refused(self, api):
        owner, other, merchant = make_user(), make_user(), make_merchant()
        wallet = make_wallet(owner, balance=10_000)
        r = pay(api, other, merchant, wallet, 5_000, confirm=False)
        assert r.status_code == 404
        assert r.json()["code"] == "wallet_not_found"

    def test_a_stranger_cannot_cancel_a_merchants_open_intent(self, api):
        merchant = make_merchant()
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        body = {
            "amount": 30_000,
            "currency": "VND",
            "merchant_id": merchant.id,
            "purpose": "merchant_payment",
        }
        intent = api.post("/v1/payment_intents", json=body, headers=auth(vendor)).json()
        r = api.post(f"/v1/payment_intents/{intent['id']}/cancel", json={}, headers=auth(make_user()))
        assert r.status_code == 404
        assert api.get(f"/v1/payment_intents/{intent['id']}", headers=auth(vendor)).json()["status"] == (
            "requires_payment_method"
        )

    def test_confirm_without_any_payment_method(self, api):
        user, merchant = make_user(), make_merchant()
        body = {"amount": 1_000, "currency": "VND", "merchant_id": merchant.id, "purpose": "merchant_payment"}
        intent = api.post("/v1/payment_intents", json=body, headers=auth(user)).json()
        r = api.post(f"/v1/payment_intents/{intent['id']}/confirm", json={}, headers=auth(user))
        assert r.status_code == 422
        assert r.json()["code"] == "payment_method_required"


class TestMerchantsAndWallets:
    def test_merchant_needs_a_known_bank_and_a_retry_does_not_duplicate_it(self, api):
        admin = make_user(["admin"])
        body = {
            "name": "Bún chả Hàng Mành",
            "kind": "market_vendor",
            "fee_bps": 50,
            "payout_bank_bin": "123456",
            "payout_account": "0011223344",
            "payout_account_name": "LAN",
        }
        bad = api.post("/v1/merchants", json=body, headers=auth(admin))
        assert bad.status_code == 422
        assert bad.json()["code"] == "unknown_bank"
        body["payout_bank_bin"] = "970436"
        headers = auth(admin) | {"Idempotency-Key": "onboard-hang-manh"}
        first = api.post("/v1/merchants", json=body, headers=headers)
        again = api.post("/v1/merchants", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(Merchant)) == 1

    def test_staff_opening_a_wallet_for_an_unknown_user(self, api):
        admin = make_user(["admin"])
        r = api.post("/v1/wallets", json={"owner_id": "usr_nobody"}, headers=auth(admin))
        assert r.status_code == 404
        assert r.json()["code"] == "user_not_found"

    def test_events_are_a_paginated_list(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10_000)
        for _ in range(3):
            pay(api, user, merchant, wallet, 1_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        page = api.get("/v1/events", params={"limit": 2}, headers=auth(vendor)).json()
        assert len(page["data"]) == 2
        assert page["has_more"] is True
        rest = api.get(
            "/v1/events", params={"limit": 2, "starting_after": page["next_cursor"]}, headers=auth(vendor)
        ).json()
        assert len(rest["data"]) == 1
        assert rest["has_more"] is False


def test_overdue_events_are_queued_again(api, redis_url):
    user, merchant = make_user(), make_merchant()
    wallet = make_wallet(user, balance=10_000)
    pay(api, user, merchant, wallet, 1_000)
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()  # as if Redis had lost its data
    assert redeliver_overdue_events() == 0  # not overdue yet
    with job_session() as session:
        session.execute(update(Event).values(created_at=datetime.now(UTC) - timedelta(minutes=10)))
    assert redeliver_overdue_events() == 2  # the top-up's and the payment's
    assert Queue("default", connection=connection).count == 2
