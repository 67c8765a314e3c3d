"""Wallets: opening, manual top-ups by finance, and concurrent spending that never goes below zero."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from hanoipay.db import job_session
from payments import balances
from payments.models import JournalEntry
from tests.factories import auth, make_merchant, make_user, make_wallet, pay


class TestWallets:
    def test_open_and_read(self, api):
        user = make_user()
        r = api.post("/v1/wallets", json={"currency": "VND"}, headers=auth(user))
        assert r.status_code == 201, r.text
        assert r.json()["available"] == 0
        again = api.post("/v1/wallets", json={}, headers=auth(user))
        assert again.status_code == 409
        assert again.json()["code"] == "wallet_exists"
        listed = api.get("/v1/wallets", headers=auth(user)).json()
        assert [w["id"] for w in listed] == [r.json()["id"]]
        assert api.post("/v1/wallets", json={"currency": "XYZ"}, headers=auth(make_user())).json()[
            "code"
        ] == ("unsupported_currency")

    def test_manual_topup_by_finance_with_reason(self, api):
        user, finance = make_user(), make_user(["finance"])
        wallet = make_wallet(user)
        r = api.post(
            f"/v1/wallets/{wallet.id}/manual_topups",
            json={"amount": 200_000, "reason": "cash at Long Biên counter, receipt 8812"},
            headers=auth(finance) | {"Idempotency-Key": "counter-8812"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["purpose"] == "wallet_topup"
        assert r.json()["provider"] == "manual"
        assert r.json()["payer_id"] == user.id
        assert r.json()["metadata"]["reason"].startswith("cash at")
        replay = api.post(
            f"/v1/wallets/{wallet.id}/manual_topups",
            json={"amount": 200_000, "reason": "cash at Long Biên counter, receipt 8812"},
            headers=auth(finance) | {"Idempotency-Key": "counter-8812"},
        )
        assert replay.json()["id"] == r.json()["id"]
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(user)).json()["available"] == 200_000
        assert api.get("/v1/payment_intents", headers=auth(user)).json()["data"][0]["id"] == r.json()["id"]

    def test_manual_topup_refusals(self, api):
        user = make_user()
        wallet = make_wallet(user)
        customer = api.post(
            f"/v1/wallets/{wallet.id}/manual_topups",
            json={"amount": 1_000, "reason": "gift"},
            headers=auth(user),
        )
        assert customer.status_code == 403
        assert customer.json()["code"] == "role_not_allowed"
        finance = make_user(["finance"])
        missing = api.post(
            "/v1/wallets/wal_nope/manual_topups",
            json={"amount": 1_000, "reason": "gift"},
            headers=auth(finance),
        )
        assert missing.json()["code"] == "wallet_not_found"
        no_reason = api.post(
            f"/v1/wallets/{wallet.id}/manual_topups", json={"amount": 1_000}, headers=auth(finance)
        )
        assert no_reason.status_code == 422
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(user)).json()["available"] == 0

    def test_fifty_concurrent_payments_against_a_balance_for_ten(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10 * 7_000)
        with ThreadPoolExecutor(25) as pool:
            results = list(pool.map(lambda _: pay(api, user, merchant, wallet, 7_000), range(50)))
        codes = [r.status_code for r in results]
        assert codes.count(201) == 10
        assert codes.count(402) == 40
        with job_session() as session:
            assert balances.balance(session, wallet.account_id).posted == 0
            payments = session.scalar(
                select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "payment")
            )
            assert payments == 11  # ten payments and the funding top-up
            assert balances.verify(session).ok

    def test_concurrent_holds_and_payments_share_one_balance(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)

        def attempt(i: int):
            return pay(api, user, merchant, wallet, 5_000, capture_method="manual" if i % 2 else "automatic")

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(attempt, range(30)))
        assert [r.status_code for r in results].count(201) == 10
        with job_session() as session:
            balance = balances.balance(session, wallet.account_id)
            assert balance.available == 0
            assert balance.posted - balance.held == 0
            assert balances.verify(session).ok
