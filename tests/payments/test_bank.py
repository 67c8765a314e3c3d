"""VietQR payments confirmed by the bank's signed webhook: matching, partial, excess, late, replays."""

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select, update

from hanoipay.db import job_session
from hanoipay.settings import get_settings
from payments import balances, ledger
from payments.jobs import expire_vietqr_intents
from payments.models import BankTransaction, CollectionAccount, JournalEntry, Merchant, PaymentIntent
from payments.payouts import payout_clearing_account
from payments.providers.vietqr.codec import build_payload, crc16_ccitt_false, parse_payload
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign
from tests.factories import auth, make_merchant, make_user, make_wallet

KID, SECRET = "bank-test", "a shared secret the bank and the platform hold"


@pytest.fixture(autouse=True)
def bank_secret():
    settings = get_settings()
    saved = settings.bank_webhook_secrets
    settings.bank_webhook_secrets = {KID: SECRET}
    yield
    settings.bank_webhook_secrets = saved


def qr_intent(api, user, merchant, amount: int) -> dict[str, Any]:
    body = {
        "amount": amount,
        "currency": "VND",
        "merchant_id": merchant.id,
        "purpose": "merchant_payment",
        "provider": "vietqr",
        "confirm": True,
    }
    r = api.post("/v1/payment_intents", json=body, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


_counter = iter(range(10**9))


def transfer(api, amount: int, description: str, *, txn: str | None = None, **extra: Any):
    note = {
        "transaction_id": txn or f"FT{next(_counter):010d}",
        "account": get_settings().vietqr_account,
        "amount": amount,
        "description": description,
        "occurred_at": datetime.now(UTC).isoformat(),
        "counter_bank_bin": "970415",
        "counter_account": "101010101010",
        **extra,
    }
    body = json.dumps(note).encode()
    headers = {SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET), "content-type": "application/json"}
    return api.post("/v1/webhooks/bank", content=body, headers=headers)


def posted(account_id: str) -> int:
    with job_session() as session:
        return balances.balance(session, account_id).posted


def receipts() -> int:
    with job_session() as session:
        return balances.balance(session, ledger.receipts_account(session, "vietqr", "VND").id).posted


def in_transit() -> int:
    """Money queued to leave the platform by payout, not yet confirmed by the bank."""
    with job_session() as session:
        return balances.balance(session, payout_clearing_account(session, "VND").id).posted


def intent_status(api, user, intent_id):
    return api.get(f"/v1/payment_intents/{intent_id}", headers=auth(user)).json()


def assert_ledger_sound():
    with job_session() as session:
        report = balances.verify(session)
    assert report.ok, report


class TestQr:
    def test_confirming_issues_a_dynamic_qr_a_bank_app_can_read(self, api):
        user, merchant = make_user(), make_merchant()
        intent = qr_intent(api, user, merchant, 250_000)
        assert intent["status"] == "requires_action"
        action = intent["next_action"]
        assert action["type"] == "vietqr_transfer"
        assert action["reference"].startswith("HP")
        png = api.get(f"/v1/payment_intents/{intent['id']}/qr.png", headers=auth(user))
        assert png.headers["content-type"] == "image/png"
        decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
        assert len(decoded) == 1
        payload = parse_payload(decoded[0].text)
        assert payload.amount == 250_000
        assert payload.reference == action["reference"]
        assert payload.bank_bin == get_settings().vietqr_bank_bin
        assert payload.point_of_initiation == "dynamic"

    def test_qr_of_someone_elses_intent_or_a_wallet_payment(self, api):
        user, merchant = make_user(), make_merchant()
        intent = qr_intent(api, user, merchant, 10_000)
        assert (
            api.get(f"/v1/payment_intents/{intent['id']}/qr.png", headers=auth(make_user())).status_code
            == 404
        )
        wallet = make_wallet(user, balance=10_000)
        body = {
            "amount": 1_000,
            "currency": "VND",
            "merchant_id": merchant.id,
            "purpose": "merchant_payment",
            "provider": "wallet",
            "wallet_id": wallet.id,
            "confirm": True,
        }
        paid = api.post("/v1/payment_intents", json=body, headers=auth(user)).json()
        r = api.get(f"/v1/payment_intents/{paid['id']}/qr.png", headers=auth(user))
        assert r.status_code == 409
        assert r.json()["code"] == "qr_not_available"

    def test_manual_capture_is_refused_for_transfers(self, api):
        user, merchant = make_user(), make_merchant()
        body = {
            "amount": 1_000,
            "currency": "VND",
            "merchant_id": merchant.id,
            "purpose": "merchant_payment",
            "provider": "vietqr",
            "confirm": True,
            "capture_method": "manual",
        }
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert r.status_code == 422
        assert r.json()["code"] == "capture_method_unsupported"


class TestMatching:
    def test_exact_amount_succeeds_and_posts_the_ledger(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=100)
        intent = qr_intent(api, user, merchant, 120_000)
        ref = intent["next_action"]["reference"]
        r = transfer(api, 120_000, f"MBVCB.3301.{ref}.CT tu 101010 NGUYEN VAN A")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "applied"
        assert intent_status(api, user, intent["id"])["status"] == "succeeded"
        assert posted(merchant.account_id) == 118_800
        assert receipts() == 0
        assert_ledger_sound()

    @pytest.mark.parametrize(
        "mangle",
        [
            str.lower,
            lambda r: " ".join(r),
            lambda r: f"{r[:5]}-{r[5:11]}.{r[11:]}",
            lambda r: f"thanh toan {r} cam on",
        ],
        ids=["lowercase", "spaced", "punctuated", "wrapped"],
    )
    def test_references_survive_what_bank_apps_do(self, api, mangle):
        user, merchant = make_user(), make_merchant()
        intent = qr_intent(api, user, merchant, 30_000)
        r = transfer(api, 30_000, mangle(intent["next_action"]["reference"]))
        assert r.json()["status"] == "applied"
        assert r.json()["payment_intent"] == intent["id"]

    def test_underpayment_waits_and_a_later_transfer_completes_it(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 100_000)
        ref = intent["next_action"]["reference"]
        assert transfer(api, 60_000, ref).json()["status"] == "partial"
        waiting = intent_status(api, user, intent["id"])
        assert waiting["status"] == "requires_action"
        assert waiting["amount_collected"] == 60_000
        assert posted(merchant.account_id) == 0
        assert receipts() == 60_000
        assert transfer(api, 40_000, ref).json()["status"] == "applied"
        assert intent_status(api, user, intent["id"])["status"] == "succeeded"
        assert posted(merchant.account_id) == 100_000
        assert receipts() == 0
        assert_ledger_sound()

    def test_overpayment_is_flagged_for_refund_by_default(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 50_000)
        r = transfer(api, 65_000, intent["next_action"]["reference"])
        assert r.json()["status"] == "excess"
        assert intent_status(api, user, intent["id"])["amount_received"] == 50_000
        assert (receipts(), in_transit()) == (0, 15_000)  # owed back to the payer, queued as a payout
        finance = make_user(["finance"])
        payouts = api.get("/v1/payouts", headers=auth(finance)).json()
        assert [(p["amount"], p["status"], p["account"]) for p in payouts] == [
            (15_000, "pending", "101010101010")
        ]
        paid = api.post(f"/v1/payouts/{payouts[0]['id']}/mark_paid", headers=auth(finance))
        assert paid.json()["status"] == "paid"
        assert (receipts(), in_transit()) == (0, 0)
        assert api.post(f"/v1/payouts/{payouts[0]['id']}/mark_paid", headers=auth(finance)).status_code == 409
        assert_ledger_sound()

    def test_overpayment_credits_the_payers_wallet_when_the_merchant_says_so(self, api):
        user, admin = make_user(), make_user(["admin"])
        body = {
            "name": "Phở Bát Đàn",
            "kind": "market_vendor",
            "fee_bps": 0,
            "payout_bank_bin": "970436",
            "payout_account": "0011223344",
            "payout_account_name": "BAT DAN",
            "overpayment_policy": "credit_wallet",
        }
        created = api.post("/v1/merchants", json=body, headers=auth(admin)).json()
        assert created["overpayment_policy"] == "credit_wallet"
        with job_session() as session:
            merchant = session.get(Merchant, created["id"])
        wallet = make_wallet(user)
        intent = qr_intent(api, user, merchant, 50_000)
        assert transfer(api, 52_000, intent["next_action"]["reference"]).json()["status"] == "applied"
        assert posted(wallet.account_id) == 2_000
        assert receipts() == 0
        assert_ledger_sound()

    def test_a_transfer_matching_nothing_is_kept_unapplied(self, api):
        r = transfer(api, 77_000, "chuyen tien an trua")
        assert r.status_code == 200
        assert r.json()["status"] == "unapplied"
        assert receipts() == 77_000
        finance = make_user(["finance"])
        unapplied = api.get(
            "/v1/bank_transactions", params={"status": "unapplied"}, headers=auth(finance)
        ).json()
        assert [t["amount"] for t in unapplied] == [77_000]
        assert api.get("/v1/bank_transactions", headers=auth(make_user())).status_code == 403

    def test_a_payment_after_expiry_is_kept_and_flagged(self, api):
        user, merchant = make_user(), make_merchant()
        intent = qr_intent(api, user, merchant, 20_000)
        with job_session() as session:
            session.execute(
                update(PaymentIntent)
                .where(PaymentIntent.id == intent["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
        assert expire_vietqr_intents() == 1
        assert intent_status(api, user, intent["id"])["status"] == "canceled"
        r = transfer(api, 20_000, intent["next_action"]["reference"])
        assert r.json()["status"] == "late"
        assert receipts() == 20_000
        assert_ledger_sound()

    def test_wallet_topup_by_bank_transfer(self, api):
        user = make_user()
        wallet = make_wallet(user)
        body = {
            "amount": 300_000,
            "currency": "VND",
            "purpose": "wallet_topup",
            "purpose_ref": wallet.id,
            "provider": "vietqr",
            "confirm": True,
        }
        intent = api.post("/v1/payment_intents", json=body, headers=auth(user)).json()
        assert transfer(api, 300_000, intent["next_action"]["reference"]).json()["status"] == "applied"
        assert api.get(f"/v1/wallets/{wallet.id}", headers=auth(user)).json()["available"] == 300_000


class TestDelivery:
    def test_a_replayed_notification_is_applied_once(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 10_000)
        ref = intent["next_action"]["reference"]
        assert transfer(api, 10_000, ref, txn="FT-REPLAY").json()["duplicate"] is False
        again = transfer(api, 10_000, ref, txn="FT-REPLAY")
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert posted(merchant.account_id) == 10_000

    def test_the_same_transaction_ten_times_at_once_is_applied_once(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 10_000)
        ref = intent["next_action"]["reference"]
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda _: transfer(api, 10_000, ref, txn="FT-RACE"), range(10)))
        assert {r.status_code for r in results} == {200}
        assert [r.json()["duplicate"] for r in results].count(False) == 1
        assert posted(merchant.account_id) == 10_000
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(BankTransaction)) == 1
            assert (
                session.scalar(
                    select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "bank_receipt")
                )
                == 1
            )
        assert_ledger_sound()

    @pytest.mark.parametrize("case", ["missing", "forged", "stale", "unknown_key", "tampered"])
    def test_bad_signatures_are_refused_and_change_nothing(self, api, case):
        body = json.dumps(
            {
                "transaction_id": "FT-BAD",
                "account": "1",
                "amount": 1_000,
                "description": "x",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        headers = {
            "missing": {},
            "forged": {SIGNATURE_HEADER: sign(body, kid=KID, secret="not the secret")},
            "stale": {SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET, timestamp=int(time.time()) - 301)},
            "unknown_key": {SIGNATURE_HEADER: sign(body, kid="other", secret=SECRET)},
            "tampered": {SIGNATURE_HEADER: sign(body.replace(b"1000", b"9000"), kid=KID, secret=SECRET)},
        }[case]
        r = api.post(
            "/v1/webhooks/bank", content=body, headers=headers | {"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_signature"
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(BankTransaction)) == 0

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[]",
            b'{"transaction_id": "x"}',
            b'{"transaction_id": "x", "account": "1", '
            b'"amount": -5, "occurred_at": "2026-11-23T10:00:00+07:00"}',
        ],
    )
    def test_malformed_notifications_are_refused(self, api, body):
        headers = {SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET), "content-type": "application/json"}
        r = api.post("/v1/webhooks/bank", content=body, headers=headers)
        assert r.status_code == 400
        assert r.json()["code"] == "malformed_webhook"

    @pytest.mark.parametrize("text", [r"FT\u0000", r"FT\udfff", r"FT\ud800x"])
    @pytest.mark.parametrize("field", ["transaction_id", "description", "account"])
    def test_text_postgresql_cannot_store_is_a_malformed_webhook(self, api, text, field):
        note = {
            "transaction_id": "FT-TEXT",
            "account": get_settings().vietqr_account,
            "amount": 1_000,
            "description": "x",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(note).replace(f'"{note[field]}"', f'"{text}"', 1).encode()
        headers = {SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET), "content-type": "application/json"}
        r = api.post("/v1/webhooks/bank", content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "malformed_webhook"
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(BankTransaction)) == 0


class TestReceivingAccount:
    def test_a_transfer_into_an_account_we_do_not_hold_never_pays_an_intent(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 10_000)
        r = transfer(api, 10_000, intent["next_action"]["reference"], account="9999888877776666")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "unknown_collection_account"
        assert intent_status(api, user, intent["id"])["status"] == "requires_action"
        assert posted(merchant.account_id) == 0
        assert receipts() == 0
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(BankTransaction)) == 0
        assert_ledger_sound()

    def test_configured_and_registered_collection_accounts_are_accepted(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        settings = get_settings()
        settings.vietqr_collection_accounts = ["5556667778"]
        try:
            first = qr_intent(api, user, merchant, 10_000)
            r = transfer(api, 10_000, first["next_action"]["reference"], account="5556667778")
            assert r.json()["status"] == "applied"
        finally:
            settings.vietqr_collection_accounts = []
        with job_session() as session:
            session.add(CollectionAccount(account="7001002003", bank_bin="970436", label="stall A12"))
        second = qr_intent(api, user, merchant, 20_000)
        assert (
            transfer(api, 20_000, second["next_action"]["reference"], account="7001002003").json()["status"]
            == "applied"
        )
        with job_session() as session:
            session.execute(
                update(CollectionAccount)
                .where(CollectionAccount.account == "7001002003")
                .values(closed_at=datetime.now(UTC))
            )
        third = qr_intent(api, user, merchant, 30_000)
        closed = transfer(api, 30_000, third["next_action"]["reference"], account="7001002003")
        assert closed.json()["code"] == "unknown_collection_account"
        assert posted(merchant.account_id) == 30_000


class TestRefund:
    def test_refund_becomes_a_payout_tracked_until_the_bank_confirms(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=200)
        intent = qr_intent(api, user, merchant, 100_000)
        transfer(api, 100_000, intent["next_action"]["reference"])
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        refund = api.post(
            "/v1/refunds", json={"payment_intent": intent["id"], "amount": 40_000}, headers=auth(vendor)
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "pending"
        assert posted(merchant.account_id) == 98_000 - 39_200
        assert (receipts(), in_transit()) == (0, 40_000)  # owed back to the payer until the bank confirms
        finance = make_user(["finance"])
        payout = api.get("/v1/payouts", headers=auth(finance)).json()[0]
        assert (payout["refund_id"], payout["amount"], payout["bank_bin"]) == (
            refund.json()["id"],
            40_000,
            "970415",
        )
        api.post(f"/v1/payouts/{payout['id']}/mark_paid", headers=auth(finance))
        assert (
            api.get(f"/v1/refunds/{refund.json()['id']}", headers=auth(vendor)).json()["status"]
            == "succeeded"
        )
        assert (receipts(), in_transit()) == (0, 0)
        over = api.post(
            "/v1/refunds", json={"payment_intent": intent["id"], "amount": 60_001}, headers=auth(vendor)
        )
        assert over.json()["code"] == "amount_exceeds_refundable"
        assert_ledger_sound()


class TestDecode:
    def test_a_scanned_payload_is_read_back(self, api):
        user = make_user()
        payload = build_payload(
            bank_bin="970436", account="0011002233445", amount=85_000, reference="HP TEST 42"
        )
        r = api.post("/v1/vietqr/decode", json={"payload": payload}, headers=auth(user))
        assert r.status_code == 200, r.text
        assert r.json() | {"merchant_name": None} == {
            "bank_bin": "970436",
            "bank": "Vietcombank",
            "account": "0011002233445",
            "amount": 85_000,
            "reference": "HP TEST 42",
            "point_of_initiation": "dynamic",
            "merchant_name": None,
        }

    @pytest.mark.parametrize(
        ("mangle", "code"),
        [
            (lambda p: p[:-4] + ("0000" if p[-4:] != "0000" else "FFFF"), "qr_bad_crc"),
            (lambda p: p[:21], "qr_bad_length"),
            (lambda p: "000201" + "38990010A000000727", "qr_bad_length"),
        ],
        ids=["wrong_crc", "truncated", "bad_length"],
    )
    def test_a_damaged_payload_is_refused_with_its_code(self, api, mangle, code):
        payload = build_payload(bank_bin="970436", account="0011002233445", amount=85_000, reference="HP1")
        r = api.post("/v1/vietqr/decode", json={"payload": mangle(payload)}, headers=auth(make_user()))
        assert r.status_code == 422
        assert r.json()["code"] == code

    def test_an_unknown_bank_is_named(self, api):
        payload = build_payload(bank_bin="970436", account="1", amount=1_000)
        forged = payload.replace("970436", "999999")
        body = forged[:-4]
        forged = body + f"{crc16_ccitt_false(body.encode()):04X}"
        r = api.post("/v1/vietqr/decode", json={"payload": forged}, headers=auth(make_user()))
        assert r.json()["code"] == "qr_unknown_bank"


class TestRaces:
    def test_two_partial_transfers_at_once_complete_the_intent_once(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 100_000)
        ref = intent["next_action"]["reference"]
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda txn: transfer(api, 50_000, ref, txn=txn), ["FT-HALF-1", "FT-HALF-2"])
            )
        assert sorted(r.json()["status"] for r in results) == ["applied", "partial"]
        got = intent_status(api, user, intent["id"])
        assert (got["status"], got["amount_collected"], got["amount_received"]) == (
            "succeeded",
            100_000,
            100_000,
        )
        assert posted(merchant.account_id) == 100_000
        assert receipts() == 0
        assert_ledger_sound()

    def test_a_payout_confirmed_twice_at_once_moves_money_once(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        intent = qr_intent(api, user, merchant, 50_000)
        transfer(api, 70_000, intent["next_action"]["reference"])
        finance = make_user(["finance"])
        payout = api.get("/v1/payouts", headers=auth(finance)).json()[0]
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(f"/v1/payouts/{payout['id']}/mark_paid", headers=auth(finance)),
                    range(4),
                )
            )
        assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
        assert receipts() == 0
        assert_ledger_sound()
