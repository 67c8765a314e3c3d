"""Tuition: schedules billed to students with exemptions, parents finding and paying invoices by wallet
and by bank transfer with the invoice code, partial payments, receipts, collection by class, reminders,
late fees."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pypdfium2
from sqlalchemy import func, select

from hanoipay.db import job_session
from hanoipay.notifications import Notification
from merchants.service.tuition import reminders
from payments.providers.vietqr.codec import parse_payload
from tests.factories import auth, make_merchant, make_staff, make_user, make_wallet
from tests.merchants.conftest import transfer
from tests.merchants.tuition_helpers import generate, invoice_of, make_school


def link(api, school, parent, code: str, born: str):
    return api.post(
        f"/v1/schools/{school.merchant.id}/guardian_links",
        json={"student_code": code, "date_of_birth": born},
        headers=auth(parent),
    )


class TestBilling:
    def test_a_schedule_bills_every_student_once_with_a_policy_students_exemption(self, api):
        school = make_school(api)
        policy = school.students["HS0001"]
        for body in (
            {"item_code": "tuition", "kind": "exemption", "percent_bps": 10_000, "reason": "Con thương binh"},
            {"item_code": "meals", "kind": "discount", "amount": 300_000, "reason": "Hộ cận nghèo"},
        ):
            r = api.post(
                f"/v1/schools/{school.merchant.id}/students/{policy}/adjustments",
                json=body | {"schedule_id": school.schedule_id},
                headers=auth(school.accountant),
            )
            assert r.status_code == 201, r.text
        assert generate(api, school) == 3
        assert generate(api, school) == 0
        regular = invoice_of(api, school, "HS0000")
        assert (regular["total_amount"], regular["status"]) == (2_250_000, "unpaid")
        assert [p["amount"] for p in regular["installments"]] == [1_350_000, 900_000]
        exempt = invoice_of(api, school, "HS0001")
        # 1 500 000 − 1 500 000 + 600 000 − 300 000 + 150 000 = 450 000; 60% = 270 000, the rest 180 000.
        assert exempt["total_amount"] == 450_000
        assert [p["amount"] for p in exempt["installments"]] == [270_000, 180_000]
        assert [(line["kind"], line["amount"], line["reason"]) for line in exempt["lines"]] == [
            ("item", 1_500_000, None),
            ("exemption", -1_500_000, "Con thương binh"),
            ("item", 600_000, None),
            ("discount", -300_000, "Hộ cận nghèo"),
            ("item", 150_000, None),
        ]

    def test_bad_schedules_and_adjustments_are_refused(self, api):
        school = make_school(api, students=1)
        url = f"/v1/schools/{school.merchant.id}"
        negative = {
            "term": "HK2",
            "name": "x",
            "items": [{"code": "t", "name": "t", "amount": -1}],
            "installments": [{"due_on": "2027-01-01", "share_bps": 10_000}],
        }
        r = api.post(f"{url}/fee_schedules", json=negative, headers=auth(school.accountant))
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
        shares = negative | {
            "items": [{"code": "t", "name": "t", "amount": 1}],
            "installments": [{"due_on": "2027-01-01", "share_bps": 9_000}],
        }
        r = api.post(f"{url}/fee_schedules", json=shares, headers=auth(school.accountant))
        assert (r.status_code, r.json()["code"]) == (422, "fee_schedule_invalid")
        student = school.students["HS0000"]
        too_big = {
            "schedule_id": school.schedule_id,
            "item_code": "meals",
            "kind": "discount",
            "amount": 600_001,
            "reason": "r",
        }
        r = api.post(f"{url}/students/{student}/adjustments", json=too_big, headers=auth(school.accountant))
        assert (r.status_code, r.json()["code"]) == (422, "discount_exceeds_item")
        r = api.post(
            f"{url}/students/stu_UNKNOWN/adjustments",
            json=too_big | {"amount": 1},
            headers=auth(school.accountant),
        )
        assert (r.status_code, r.json()["code"]) == (404, "student_not_found")
        cashier = make_staff(school.merchant, "cashier")
        r = api.post(f"{url}/fee_schedules/{school.schedule_id}/invoices", json={}, headers=auth(cashier))
        assert (r.status_code, r.json()["code"]) == (403, "staff_role_required")


class TestParents:
    def test_a_parent_links_by_code_and_birth_date_and_pays_the_whole_invoice_by_wallet(self, api):
        school = make_school(api, students=1)
        generate(api, school)
        parent, stranger = make_user(), make_user()
        r = link(api, school, parent, "HS0000", "2014-03-02")
        assert (r.status_code, r.json()["code"]) == (404, "student_not_found")
        assert link(api, school, parent, "HS0000", "2014-03-01").status_code == 200
        [child] = api.get("/v1/children", headers=auth(parent)).json()
        [invoice] = api.get(f"/v1/students/{child['id']}/invoices", headers=auth(parent)).json()
        assert api.get(f"/v1/invoices/{invoice['id']}", headers=auth(stranger)).status_code == 404
        wallet = make_wallet(parent, balance=3_000_000)
        pay = f"/v1/invoices/{invoice['id']}/payments"
        part = api.post(
            pay,
            json={"amount": 1_000_000, "provider": "wallet", "wallet_id": wallet.id},
            headers=auth(parent),
        )
        assert (part.status_code, part.json()["code"]) == (422, "partial_payment_not_allowed")
        more = api.post(
            pay,
            json={"amount": 2_250_001, "provider": "wallet", "wallet_id": wallet.id},
            headers=auth(parent),
        )
        assert (more.status_code, more.json()["code"]) == (422, "amount_exceeds_balance")
        headers = auth(parent) | {"Idempotency-Key": "hk1"}
        paid = api.post(pay, json={"provider": "wallet", "wallet_id": wallet.id}, headers=headers)
        assert (paid.status_code, paid.json()["status"], paid.json()["amount"]) == (
            201,
            "succeeded",
            2_250_000,
        )
        again = api.post(pay, json={"provider": "wallet", "wallet_id": wallet.id}, headers=headers)
        assert again.json()["id"] == paid.json()["id"]
        detail = api.get(f"/v1/invoices/{invoice['id']}", headers=auth(parent)).json()
        assert (detail["status"], detail["paid_amount"], detail["remaining_amount"]) == ("paid", 2_250_000, 0)
        r = api.post(pay, json={"provider": "wallet", "wallet_id": wallet.id}, headers=auth(parent))
        assert (r.status_code, r.json()["code"]) == (409, "invoice_paid")
        receipt = api.get(f"/v1/invoices/{invoice['id']}/receipt.pdf", headers=auth(parent))
        text = pypdfium2.PdfDocument(receipt.content)[0].get_textpage().get_text_range()
        for expected in (
            "Biên lai học phí",
            "Trường THCS Hoài Đức",
            "Nguyễn Văn An",
            "Tiền ăn bán trú",
            "2.250.000 ₫",
            "Còn lại / Remaining: 0 ₫",
        ):
            assert expected in text

    def test_two_payments_of_the_whole_balance_at_once_take_it_once(self, api):
        school = make_school(api, students=1)
        generate(api, school)
        parent = make_user()
        link(api, school, parent, "HS0000", "2014-03-01")
        wallet = make_wallet(parent, balance=5_000_000)
        invoice = invoice_of(api, school, "HS0000")
        with ThreadPoolExecutor(3) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(
                        f"/v1/invoices/{invoice['id']}/payments",
                        json={"provider": "wallet", "wallet_id": wallet.id},
                        headers=auth(parent),
                    ),
                    range(3),
                )
            )
        assert sorted(r.status_code for r in results) == [201, 409, 409]
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(parent)).json()["available"] == 2_750_000

    def test_bank_transfers_naming_the_invoice_code_pay_it_in_parts_and_the_excess_is_refunded(self, api):
        school = make_school(api, students=1, allow_partial=True)
        generate(api, school)
        invoice = invoice_of(api, school, "HS0000")
        qr = api.get(f"/v1/invoices/{invoice['id']}/vietqr", headers=auth(school.accountant)).json()
        decoded = parse_payload(qr["payload"])
        assert (decoded.reference, decoded.amount) == (invoice["code"], 2_250_000)
        first = transfer(api, 1_000_000, f"PH HS0000 nop hoc phi {invoice['code'].lower()}")
        assert first.json()["status"] == "applied"
        detail = api.get(f"/v1/invoices/{invoice['id']}", headers=auth(school.accountant)).json()
        assert (detail["status"], detail["paid_amount"]) == ("partly_paid", 1_000_000)
        second = transfer(api, 1_300_000, f"{invoice['code']} dot 2")
        assert second.json()["status"] == "excess"
        detail = api.get(f"/v1/invoices/{invoice['id']}", headers=auth(school.accountant)).json()
        assert (detail["status"], detail["paid_amount"], [p["provider"] for p in detail["payments"]]) == (
            "paid",
            2_250_000,
            ["vietqr", "vietqr"],
        )
        finance = make_user(["finance"])
        payouts = api.get("/v1/payouts", headers=auth(finance)).json()
        assert [(p["amount"], p["account"]) for p in payouts] == [(50_000, "101010101010")]
        late = transfer(api, 10_000, invoice["code"])
        assert late.json()["status"] == "unapplied"


class TestSchoolReports:
    def test_collection_by_class_and_its_csv(self, api):
        school = make_school(api, students=4, allow_partial=True)
        generate(api, school)
        parent = make_user()
        link(api, school, parent, "HS0000", "2014-03-01")
        wallet = make_wallet(parent, balance=5_000_000)
        invoice = invoice_of(api, school, "HS0000")
        api.post(
            f"/v1/invoices/{invoice['id']}/payments",
            json={"provider": "wallet", "wallet_id": wallet.id},
            headers=auth(parent),
        )
        other = invoice_of(api, school, "HS0002")
        transfer(api, 500_000, other["code"])
        term = "2026-2027 HK1"
        rows = api.get(
            f"/v1/schools/{school.merchant.id}/collection",
            params={"term": term},
            headers=auth(school.accountant),
        ).json()
        assert [
            (r["class_name"], r["paid"], r["partly_paid"], r["unpaid"], r["collected_amount"]) for r in rows
        ] == [
            ("6A1", 1, 1, 0, 2_750_000),
            ("6A2", 0, 0, 2, 0),
        ]
        csv_text = api.get(
            f"/v1/schools/{school.merchant.id}/collection.csv",
            params={"term": term},
            headers=auth(school.accountant),
        ).text
        assert csv_text.splitlines() == [
            "class,students,paid,partly_paid,unpaid,billed_amount,collected_amount,outstanding_amount",
            "6A1,2,1,1,0,4500000,2750000,1750000",
            "6A2,2,0,0,2,4500000,0,4500000",
            "TOTAL,4,1,1,2,9000000,2750000,6250000",
        ]
        stranger = make_staff(make_merchant(kind="school", name="Another school"), "owner")
        r = api.get(
            f"/v1/schools/{school.merchant.id}/collection", params={"term": term}, headers=auth(stranger)
        )
        assert r.status_code == 404

    def test_reminders_before_the_due_date_once_and_late_fees_after_the_grace_once(self, api):
        school = make_school(api, students=2)
        generate(api, school)
        parent = make_user()
        link(api, school, parent, "HS0000", "2014-03-01")
        with job_session() as session:
            sent = reminders.send_reminders(session, today=date(2026, 9, 13), days_ahead=3)
        with job_session() as session:
            assert reminders.send_reminders(session, today=date(2026, 9, 14), days_ahead=3) == 0
            texts = session.scalars(
                select(Notification.text).where(Notification.recipient_id == parent.id)
            ).all()
        assert sent == 3  # two imported guardians and the linked parent
        assert texts == [texts[0]]
        assert "còn 1.350.000 đồng" in texts[0]
        assert "15/09/2026" in texts[0]
        with job_session() as session:
            assert reminders.apply_late_fees(session, today=date(2026, 9, 20)) == 0
            assert reminders.apply_late_fees(session, today=date(2026, 9, 21)) == 2
            assert reminders.apply_late_fees(session, today=date(2026, 9, 22)) == 0
        invoice = invoice_of(api, school, "HS0000")
        # 2% of the 1 350 000 overdue = 27 000, added to the first installment and the total.
        assert invoice["total_amount"] == 2_277_000
        assert [p["amount"] for p in invoice["installments"]] == [1_377_000, 900_000]
        assert invoice["lines"][-1]["kind"] == "late_fee"
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(Notification)) == 3
