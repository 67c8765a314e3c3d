"""Market stalls: signs decoded back to their VietQR code, dynamic codes per sale, transfers to a stall's
static code held for the vendor, and the daily summary."""

import io
from concurrent.futures import ThreadPoolExecutor

import pypdfium2
import zxingcpp
from PIL import Image
from sqlalchemy import select

from hanoipay.db import job_session
from payments import balances
from payments.models import BankTransaction, Payout
from payments.providers.vietqr.codec import parse_payload
from payments.providers.vietqr.webhook import collects_on
from tests.factories import auth, make_merchant, make_staff, make_user
from tests.merchants.conftest import transfer
from tests.merchants.helpers import make_stall


def decoded(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def payable(merchant) -> int:
    with job_session() as session:
        return balances.balance(session, merchant.account_id).posted


class TestStalls:
    def test_finance_opens_a_stall_for_a_market_vendor_only(self, api):
        finance, vendor = make_user(["finance"]), make_merchant()
        school = make_merchant(kind="school", name="THPT Hoài Đức A")
        market = api.post(
            "/v1/markets", json={"name": "Chợ Sấu", "address": "Hoài Đức"}, headers=auth(finance)
        )
        assert market.status_code == 201, market.text
        body = {
            "market_id": market.json()["id"],
            "code": "a12",
            "name": "Rau sạch cô Lan",
            "merchant_id": vendor.id,
        }
        stall = api.post("/v1/stalls", json=body, headers=auth(finance))
        assert stall.status_code == 201, stall.text
        assert (stall.json()["code"], stall.json()["account_name"]) == ("A12", "NGUYEN THI LAN")
        assert parse_payload(stall.json()["static_payload"]).account == stall.json()["collection_account"]
        taken = api.post("/v1/stalls", json=body, headers=auth(finance))
        assert (taken.status_code, taken.json()["code"]) == (409, "stall_code_taken")
        wrong = api.post(
            "/v1/stalls", json=body | {"code": "B1", "merchant_id": school.id}, headers=auth(finance)
        )
        assert (wrong.status_code, wrong.json()["code"]) == (422, "wrong_merchant_kind")
        owner = make_staff(vendor)
        refused = api.post("/v1/stalls", json=body | {"code": "C1"}, headers=auth(owner))
        assert refused.status_code == 403
        with job_session() as session:
            assert collects_on(session, stall.json()["collection_account"])
            assert not collects_on(session, "12345678")

    def test_the_png_sign_decodes_to_the_stalls_static_code(self, api):
        vendor = make_merchant()
        stall, owner = make_stall(vendor), make_staff(vendor)
        r = api.get(f"/v1/stalls/{stall.id}/sign.png", headers=auth(owner))
        assert (r.status_code, r.headers["content-type"]) == (200, "image/png")
        image = Image.open(io.BytesIO(r.content))
        assert image.size == (1240, 1748)
        [payload] = decoded(image)
        qr = parse_payload(payload)
        assert (qr.account, qr.amount, qr.reference, qr.point_of_initiation) == (
            stall.collection_account,
            None,
            None,
            "static",
        )

    def test_the_pdf_sign_decodes_to_the_same_code_and_prints_vietnamese_and_the_holder(self, api):
        vendor = make_merchant()
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        r = api.get(f"/v1/stalls/{stall.id}/sign.pdf", headers=auth(cashier))
        assert (r.status_code, r.headers["content-type"]) == (200, "application/pdf")
        pdf = pypdfium2.PdfDocument(r.content)
        assert len(pdf) == 1
        page = pdf[0]
        text = page.get_textpage().get_text_range()
        for expected in (
            "Quét mã để thanh toán",
            "Rau sạch cô Lan",
            "Mã sạp: A12",
            "Chợ Sấu",
            "NGUYEN THI LAN",
        ):
            assert expected in text
        image = page.render(scale=4).to_pil()
        assert decoded(image) == [
            api.get(f"/v1/stalls/{stall.id}", headers=auth(cashier)).json()["static_payload"]
        ]

    def test_a_sign_for_another_vendors_stall_is_not_found(self, api):
        mine, theirs = make_merchant(), make_merchant(name="Gà Đông Tảo")
        stall = make_stall(theirs)
        owner = make_staff(mine)
        for path in ("", "/sign.png", "/sign.pdf", "/summary"):
            r = api.get(f"/v1/stalls/{stall.id}{path}", headers=auth(owner))
            assert (r.status_code, r.json()["code"]) == (404, "stall_not_found"), path


class TestSales:
    def test_a_dynamic_code_per_sale_is_paid_by_the_bank_and_counted_in_the_summary(self, api):
        vendor = make_merchant(fee_bps=50)
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        headers = auth(cashier) | {"Idempotency-Key": "sale-1"}
        sale = api.post(f"/v1/stalls/{stall.id}/sales", json={"amount": 45_000}, headers=headers)
        assert sale.status_code == 201, sale.text
        again = api.post(f"/v1/stalls/{stall.id}/sales", json={"amount": 45_000}, headers=headers)
        assert again.json()["payment_intent"] == sale.json()["payment_intent"]
        qr = parse_payload(sale.json()["payload"])
        assert (qr.amount, qr.reference) == (45_000, sale.json()["reference"])
        assert transfer(api, 45_000, f"MBVCB.123 {sale.json()['reference']} CK").json()["status"] == "applied"
        intent = api.get(f"/v1/payment_intents/{sale.json()['payment_intent']}", headers=auth(cashier)).json()
        assert intent["status"] == "succeeded"
        summary = api.get(f"/v1/stalls/{stall.id}/summary", headers=auth(cashier)).json()
        assert (summary["sales"], summary["gross_amount"], summary["fee_amount"], summary["net_amount"]) == (
            1,
            45_000,
            225,
            44_775,
        )
        assert payable(vendor) == 44_775

    def test_bad_sales_are_refused(self, api):
        vendor = make_merchant()
        stall, accountant = make_stall(vendor), make_staff(vendor, "accountant")
        cashier = make_staff(vendor, "cashier")
        r = api.post(f"/v1/stalls/{stall.id}/sales", json={"amount": 45_000}, headers=auth(accountant))
        assert (r.status_code, r.json()["code"]) == (403, "staff_role_required")
        for body in ({"amount": 0}, {"amount": -5}, {"amount": "45000"}, {"amount": 1, "tip": 2}):
            r = api.post(f"/v1/stalls/{stall.id}/sales", json=body, headers=auth(cashier))
            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), body


class TestStaticCode:
    def test_a_transfer_to_the_stalls_account_waits_for_the_vendor_then_pays_them_once(self, api):
        vendor = make_merchant(fee_bps=0)
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        r = transfer(api, 30_000, "chuyen tien rau", account=stall.collection_account)
        assert r.json()["status"] == "held"
        assert payable(vendor) == 0
        [waiting] = api.get(
            f"/v1/merchants/{vendor.id}/stall_transfers",
            params={"status": "awaiting_confirmation"},
            headers=auth(cashier),
        ).json()
        assert (waiting["amount"], waiting["stall_id"]) == (30_000, stall.id)
        summary = api.get(f"/v1/stalls/{stall.id}/summary", headers=auth(cashier)).json()
        assert (summary["awaiting_count"], summary["awaiting_amount"], summary["sales"]) == (1, 30_000, 0)
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(f"/v1/stall_transfers/{waiting['id']}/confirm", headers=auth(cashier)),
                    range(4),
                )
            )
        assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
        assert payable(vendor) == 30_000
        summary = api.get(f"/v1/stalls/{stall.id}/summary", headers=auth(cashier)).json()
        assert (summary["static_sales"], summary["gross_amount"], summary["awaiting_count"]) == (1, 30_000, 0)
        with job_session() as session:
            txn = session.scalars(select(BankTransaction)).one()
            assert txn.status == "applied"

    def test_a_transfer_the_vendor_does_not_recognise_goes_back_as_a_payout(self, api):
        vendor = make_merchant()
        stall, owner = make_stall(vendor), make_staff(vendor)
        transfer(api, 12_000, "nham", account=stall.collection_account)
        [waiting] = api.get(f"/v1/merchants/{vendor.id}/stall_transfers", headers=auth(owner)).json()
        r = api.post(
            f"/v1/stall_transfers/{waiting['id']}/return",
            json={"reason": "không phải khách của tôi"},
            headers=auth(owner),
        )
        assert r.json()["status"] == "returned"
        again = api.post(f"/v1/stall_transfers/{waiting['id']}/confirm", headers=auth(owner))
        assert (again.status_code, again.json()["code"]) == (409, "stall_transfer_decided")
        assert payable(vendor) == 0
        with job_session() as session:
            payout = session.scalars(select(Payout)).one()
            assert (payout.amount, payout.account, payout.status) == (12_000, "101010101010", "pending")

    def test_another_vendor_cannot_confirm_or_list_the_transfers(self, api):
        vendor, other = make_merchant(), make_merchant(name="Cá Hồ Tây")
        stall, stranger = make_stall(vendor), make_staff(other)
        transfer(api, 5_000, "", account=stall.collection_account)
        owner = make_staff(vendor)
        [waiting] = api.get(f"/v1/merchants/{vendor.id}/stall_transfers", headers=auth(owner)).json()
        r = api.post(f"/v1/stall_transfers/{waiting['id']}/confirm", headers=auth(stranger))
        assert (r.status_code, r.json()["code"]) == (404, "stall_transfer_not_found")
        r = api.get(f"/v1/merchants/{vendor.id}/stall_transfers", headers=auth(stranger))
        assert (r.status_code, r.json()["code"]) == (404, "merchant_not_found")
