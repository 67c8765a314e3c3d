"""Refunds: partial or whole, never more than received, the fee returned pro rata."""

from concurrent.futures import ThreadPoolExecutor

from hanoipay.db import job_session
from payments.balances import balance
from tests.factories import FINANCE, auth, make_merchant, make_user, make_wallet, pay


def balances(wallet, merchant):
    with job_session() as session:
        return balance(session, wallet.account_id).posted, balance(session, merchant.account_id).posted


def setup_payment(api, amount=10_000, fee_bps=300):
    user, merchant = make_user(), make_merchant(fee_bps=fee_bps)
    wallet = make_wallet(user, balance=100_000)
    intent = pay(api, user, merchant, wallet, amount).json()
    vendor = make_user(["vendor"], merchant_id=merchant.id)
    return user, merchant, wallet, intent, vendor


def refund(api, who, intent_id, amount=None, key=None):
    headers = auth(who)
    if key:
        headers["Idempotency-Key"] = key
    body = {"payment_intent": intent_id} | ({"amount": amount} if amount is not None else {})
    return api.post("/v1/refunds", json=body, headers=headers)


class TestRefunds:
    def test_partial_then_rest_returns_money_and_whole_fee(self, api):
        _, merchant, wallet, intent, vendor = setup_payment(api, amount=10_000, fee_bps=300)
        assert balances(wallet, merchant) == (90_000, 9_700)
        first = refund(api, vendor, intent["id"], 3_333)
        assert first.status_code == 201, first.text
        assert first.json()["status"] == "succeeded"
        assert first.json()["fee_refunded"] == 99  # floor(300 × 3 333 / 10 000)
        assert balances(wallet, merchant) == (93_333, 9_700 - 3_234)
        rest = refund(api, vendor, intent["id"])
        assert rest.json()["amount"] == 6_667
        assert rest.json()["fee_refunded"] == 201  # the fee returned in total is exactly the fee taken
        assert balances(wallet, merchant) == (100_000, 0)
        got = api.get(f"/v1/payment_intents/{intent['id']}", headers=auth(vendor)).json()
        assert got["amount_refunded"] == 10_000
        listed = api.get(f"/v1/payment_intents/{intent['id']}/refunds", headers=auth(vendor)).json()
        assert [r["amount"] for r in listed] == [3_333, 6_667]

    def test_more_than_received_is_refused(self, api):
        _, _merchant, _wallet, intent, vendor = setup_payment(api)
        r = refund(api, vendor, intent["id"], 10_001)
        assert r.status_code == 422
        assert r.json()["code"] == "amount_exceeds_refundable"
        assert refund(api, vendor, intent["id"], 4_000).status_code == 201
        over = refund(api, vendor, intent["id"], 6_001)
        assert over.json()["code"] == "amount_exceeds_refundable"
        assert over.json()["amount_refundable"] == 6_000
        assert refund(api, vendor, intent["id"]).status_code == 201
        done = refund(api, vendor, intent["id"], 1)
        assert done.status_code == 409
        assert done.json()["code"] == "intent_not_refundable"

    def test_refund_of_unsucceeded_intent_and_by_the_payer(self, api):
        user, merchant, wallet, intent, vendor = setup_payment(api)
        assert refund(api, user, intent["id"]).json()["code"] == "payment_intent_not_found"
        held = pay(api, user, merchant, wallet, 1_000, capture_method="manual").json()
        r = refund(api, vendor, held["id"])
        assert r.status_code == 409
        assert r.json()["code"] == "intent_not_refundable"

    def test_bad_refund_amounts(self, api):
        _, _, _, intent, vendor = setup_payment(api)
        for amount in (0, -5, 1.5, "100", 10**12 + 1):
            r = refund(api, vendor, intent["id"], amount)
            assert r.status_code == 422, amount
            assert r.json()["code"] == "validation_error"

    def test_retry_with_same_key_refunds_once(self, api):
        _, merchant, wallet, intent, vendor = setup_payment(api)
        first = refund(api, vendor, intent["id"], 2_000, key="refund-1")
        again = refund(api, vendor, intent["id"], 2_000, key="refund-1")
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert balances(wallet, merchant)[0] == 92_000

    def test_concurrent_refunds_never_exceed_received(self, api):
        _, merchant, wallet, intent, vendor = setup_payment(api, amount=10_000)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: refund(api, vendor, intent["id"], 3_000), range(8)))
        assert sorted(r.status_code for r in results).count(201) == 3
        assert {r.json()["code"] for r in results if r.status_code != 201} == {"amount_exceeds_refundable"}
        assert balances(wallet, merchant)[0] == 99_000

    def test_finance_can_refund_any_merchant(self, api):
        _, _, _, intent, _ = setup_payment(api)
        finance = make_user(["finance"])
        assert refund(api, finance, intent["id"], 100).status_code == 201
        assert FINANCE.is_staff
