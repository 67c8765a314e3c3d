"""Money paths raced and retried: a sale, a confirmation, invoice generation; and bad input to the money
endpoints and the bank's payout report."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from hanoipay.db import job_session
from merchants.models import Invoice
from payments.models import PaymentIntent, Payout
from tests.factories import auth, make_merchant, make_staff, make_user, make_wallet
from tests.merchants.conftest import signed, transfer
from tests.merchants.helpers import make_stall
from tests.merchants.tuition_helpers import invoice_of, make_school


def count(model, *where) -> int:
    with job_session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class TestRaces:
    def test_the_same_sale_sent_four_times_at_once_makes_one_code(self, api):
        vendor = make_merchant()
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        headers = auth(cashier) | {"Idempotency-Key": "sale-race"}
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(
                        f"/v1/stalls/{stall.id}/sales", json={"amount": 20_000}, headers=headers
                    ),
                    range(4),
                )
            )
        assert {r.status_code for r in results} == {201}
        assert len({r.json()["payment_intent"] for r in results}) == 1
        assert count(PaymentIntent, PaymentIntent.purpose == "market_sale") == 1

    def test_a_confirmation_retried_with_its_key_replays_the_first_answer(self, api):
        vendor = make_merchant()
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        transfer(api, 8_000, "", account=stall.collection_account)
        [waiting] = api.get(f"/v1/merchants/{vendor.id}/stall_transfers", headers=auth(cashier)).json()
        headers = auth(cashier) | {"Idempotency-Key": "confirm-1"}
        first = api.post(f"/v1/stall_transfers/{waiting['id']}/confirm", headers=headers)
        again = api.post(f"/v1/stall_transfers/{waiting['id']}/confirm", headers=headers)
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json()["intent_id"] == first.json()["intent_id"]

    def test_two_invoice_runs_at_once_bill_each_student_once(self, api):
        school = make_school(api, students=6)
        path = f"/v1/schools/{school.merchant.id}/fee_schedules/{school.schedule_id}/invoices"
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda _: api.post(path, json={}, headers=auth(school.accountant)), range(2))
            )
        assert {r.status_code for r in results} == {200}
        assert sum(r.json()["created"] for r in results) == 6
        assert count(Invoice) == 6


class TestBadInput:
    def test_invoice_payments_refuse_malformed_bodies(self, api):
        school = make_school(api, students=1)
        api.post(
            f"/v1/schools/{school.merchant.id}/fee_schedules/{school.schedule_id}/invoices",
            json={},
            headers=auth(school.accountant),
        )
        parent = make_user()
        api.post(
            f"/v1/schools/{school.merchant.id}/guardian_links",
            json={"student_code": "HS0000", "date_of_birth": "2014-03-01"},
            headers=auth(parent),
        )
        wallet = make_wallet(parent, balance=1_000)
        invoice = invoice_of(api, school, "HS0000")
        path = f"/v1/invoices/{invoice['id']}/payments"
        for body in (
            {"provider": "cash"},
            {"provider": "wallet", "amount": 0},
            {"provider": "wallet", "amount": "all"},
            {"provider": "wallet", "wallet_id": wallet.id, "tip": 1},
        ):
            r = api.post(path, json=body, headers=auth(parent))
            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), body
        nul = api.post(path, json={"provider": "wallet", "wallet_id": "w\u0000"}, headers=auth(parent))
        assert (nul.status_code, nul.json()["code"]) == (422, "invalid_characters")
        poor = api.post(path, json={"provider": "wallet", "wallet_id": wallet.id}, headers=auth(parent))
        assert (poor.status_code, poor.json()["code"]) == (402, "insufficient_funds")
        # The declined attempt stays on its intent (as Stripe keeps it); no money moved to the school.
        assert count(PaymentIntent, PaymentIntent.purpose == "tuition_invoice") == 1
        assert (
            count(
                PaymentIntent, PaymentIntent.status == "succeeded", PaymentIntent.purpose == "tuition_invoice"
            )
            == 0
        )
        assert invoice_of(api, school, "HS0000")["paid_amount"] == 0

    def test_the_payout_report_must_be_signed_and_well_formed(self, api):
        unsigned = api.post(
            "/v1/webhooks/bank/payouts",
            content=b'{"results": [{"payout_id": "po_x", "status": "paid"}]}',
            headers={"content-type": "application/json"},
        )
        assert (unsigned.status_code, unsigned.json()["code"]) == (400, "invalid_signature")
        for body in ({"results": []}, {"results": [{"payout_id": "po_x", "status": "maybe"}]}, {"other": 1}):
            r = signed(api, "/v1/webhooks/bank/payouts", body)
            assert (r.status_code, r.json()["code"]) == (400, "malformed_webhook"), body
        r = signed(
            api, "/v1/webhooks/bank/payouts", {"results": [{"payout_id": "po_unknown", "status": "paid"}]}
        )
        assert r.json()["payouts"] == {"po_unknown": "unknown"}
        assert count(Payout) == 0

    def test_settlement_and_bank_file_are_for_finance_only(self, api):
        merchant = make_merchant(verified=True)
        owner = make_staff(merchant)
        assert api.get("/v1/payouts/bank_file.csv", headers=auth(owner)).status_code == 403
        r = api.post(
            "/v1/payouts/po_x/mark_failed", json={"reason": "x"}, headers=auth(make_user(["finance"]))
        )
        assert (r.status_code, r.json()["code"]) == (404, "payout_not_found")
        r = api.post("/v1/payouts/po_x/mark_failed", json={}, headers=auth(make_user(["finance"])))
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
