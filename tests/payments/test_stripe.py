"""Card payments through the real Stripe SDK against a local server speaking Stripe's wire format."""

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select, update

from hanoipay.db import job_session
from hanoipay.jobs import OutboxMessage
from hanoipay.settings import get_settings
from payments import balances, ledger
from payments.jobs import settle_intent, settle_refund, settle_stale, void_expired_authorizations
from payments.models import JournalEntry, PaymentIntent, ProviderEvent, Refund
from payments.providers.base import register_provider
from payments.providers.stripe import StripeProvider
from tests.factories import auth, make_merchant, make_user, make_wallet, run_jobs
from tests.stripe_fake import StripeFake, sign_payload

WEBHOOK_SECRET = "whsec_hanoipay_stripe_tests"
# Short enough that a lost answer costs a test about two seconds (one SDK retry), long enough for the fake.
CLIENT_TIMEOUT = 1.0
LOST = 1.5


@pytest.fixture
def fake():
    with StripeFake() as server:
        yield server


@pytest.fixture(autouse=True)
def stripe_enabled(fake):
    """Point the settings at the fake and use a provider with a short client timeout."""
    settings = get_settings()
    saved = (settings.stripe_api_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    settings.stripe_api_key, settings.stripe_webhook_secret = fake.api_key, WEBHOOK_SECRET
    settings.stripe_api_base = fake.url
    register_provider(StripeProvider(timeout=CLIENT_TIMEOUT))
    yield
    settings.stripe_api_key, settings.stripe_webhook_secret, settings.stripe_api_base = saved
    register_provider(StripeProvider())


def card_payment(
    api, user, merchant, amount=50_000, *, confirm=True, pm="pm_card_visa", headers=None, **extra
):
    body = {
        "amount": amount,
        "currency": "VND",
        "merchant_id": merchant.id,
        "purpose": "merchant_payment",
        "provider": "stripe",
        "confirm": confirm,
        **({"payment_method": pm} if confirm else {}),
        **extra,
    }
    return api.post("/v1/payment_intents", json=body, headers={**auth(user), **(headers or {})})


def open_card_intent(api, merchant, amount=50_000, **extra) -> dict[str, Any]:
    """An intent a vendor created for a card payment, waiting for the customer to confirm it."""
    vendor = make_user(["vendor"], merchant_id=merchant.id)
    r = card_payment(api, vendor, merchant, amount, confirm=False, **extra)
    assert r.status_code == 201, r.text
    return r.json()


def confirm(api, user, intent_id, pm="pm_card_visa", **extra):
    body = {"payment_method": pm, **extra}
    return api.post(f"/v1/payment_intents/{intent_id}/confirm", json=body, headers=auth(user))


def get_intent(api, user, intent_id) -> dict[str, Any]:
    return api.get(f"/v1/payment_intents/{intent_id}", headers=auth(user)).json()


def deliver(api, event, *, secret=WEBHOOK_SECRET, timestamp=None, signature=None, payload=None):
    payload = StripeFake.event_payload(event) if payload is None else payload
    header = sign_payload(payload, secret, timestamp) if signature is None else signature
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if header:
        headers["Stripe-Signature"] = header
    return api.post("/v1/webhooks/stripe", content=payload, headers=headers)


def stripe_events(fake, type, stripe_id=None) -> list[dict[str, Any]]:
    return [
        e
        for e in fake.events
        if e["type"] == type
        and stripe_id in (None, e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
    ]


def entries(intent_id) -> list[str]:
    with job_session() as session:
        return list(session.scalars(select(JournalEntry.kind).where(JournalEntry.intent_id == intent_id)))


def posted(account_id) -> int:
    with job_session() as session:
        return balances.balance(session, account_id).posted


def clearing() -> int:
    with job_session() as session:
        return balances.balance(session, ledger.clearing_account(session, "stripe", "VND").id).posted


def fee_revenue() -> int:
    with job_session() as session:
        return balances.balance(session, ledger.fee_revenue_account(session, "VND").id).posted


def assert_ledger_sound():
    with job_session() as session:
        report = balances.verify(session)
    assert report.ok, report


def stripe_client(fake) -> stripe.StripeClient:
    """A client acting as someone in Stripe's dashboard, outside the platform."""
    return stripe.StripeClient(
        fake.api_key,
        base_addresses={"api": fake.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=5),
    )


def stored_intent(intent_id) -> PaymentIntent:
    with job_session() as session:
        intent = session.get(PaymentIntent, intent_id)
        assert intent is not None
        return intent


def processing_intent(api, fake, user, merchant, pm="pm_card_visa", status="timeout") -> dict[str, Any]:
    """A card payment whose confirm Stripe never answered (twice: the SDK retries once)."""
    fake.fail_next(2, status=status, delay=LOST)
    r = card_payment(api, user, merchant, pm=pm)
    assert r.status_code == 201, r.text
    intent = r.json()
    assert intent["status"] == "processing"
    assert stored_intent(intent["id"]).provider_ref is None
    return intent


class TestConfirm:
    def test_card_payment_succeeds_and_posts_clearing_against_merchant_and_fee(self, api, fake):
        user, merchant = make_user(), make_merchant(fee_bps=100)
        r = card_payment(api, user, merchant, 50_000)
        assert r.status_code == 201, r.text
        intent = r.json()
        assert (intent["status"], intent["amount_received"], intent["fee_amount"]) == (
            "succeeded",
            50_000,
            500,
        )
        assert intent["payer_id"] == user.id
        assert intent["next_action"] is None
        ref = stored_intent(intent["id"]).provider_ref
        at_stripe = fake.payment_intents[ref]
        assert (at_stripe["amount"], at_stripe["currency"], at_stripe["status"]) == (
            50_000,
            "vnd",
            "succeeded",
        )
        assert at_stripe["metadata"]["hanoipay_intent"] == intent["id"]
        assert fake.requests[0].params["automatic_payment_methods"] == {
            "enabled": "true",
            "allow_redirects": "never",
        }
        assert clearing() == 50_000
        assert posted(merchant.account_id) == 49_500
        assert fee_revenue() == 500
        assert entries(intent["id"]) == ["payment"]

        # Stripe's own webhook about the same success arrives after our answer: nothing changes.
        r = deliver(api, stripe_events(fake, "payment_intent.succeeded", ref)[0])
        assert r.json() == {"received": True, "duplicate": False}
        assert entries(intent["id"]) == ["payment"]
        assert_ledger_sound()

    @pytest.mark.parametrize(
        ("pm", "decline_code"),
        [
            ("pm_card_chargeDeclined", "generic_decline"),
            ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ],
    )
    def test_decline_is_402_kept_on_the_intent_and_another_card_can_pay(self, api, fake, pm, decline_code):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        r = confirm(api, user, intent["id"], pm)
        assert r.status_code == 402
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (r.json()["code"], r.json()["decline_code"]) == ("card_declined", decline_code)
        assert r.json()["payment_intent"] == intent["id"]
        after = get_intent(api, user, intent["id"])
        assert after["status"] == "requires_payment_method"
        assert after["last_payment_error"] == {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": r.json()["detail"],
        }
        assert entries(intent["id"]) == []

        r = confirm(api, user, intent["id"], "pm_card_visa")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["last_payment_error"]) == ("succeeded", None)
        keys = [q.idempotency_key for q in fake.requests if q.method == "POST"]
        assert len(keys) == len(set(keys)) == 2  # a new attempt, a new key: Stripe would replay the decline
        assert entries(intent["id"]) == ["payment"]

    def test_declined_create_and_confirm_leaves_the_intent_waiting_with_its_error(self, api):
        user, merchant = make_user(), make_merchant()
        r = card_payment(api, user, merchant, pm="pm_card_chargeDeclined")
        assert r.status_code == 402
        with job_session() as session:
            [stored] = session.scalars(select(PaymentIntent)).all()
        assert stored.id == r.json()["payment_intent"]
        assert stored.status == "requires_payment_method"
        assert stored.last_payment_error["decline_code"] == "generic_decline"
        assert entries(stored.id) == []

    def test_authentication_then_webhook_succeeds_once(self, api, fake):
        user, merchant = make_user(), make_merchant()
        r = card_payment(
            api, user, merchant, pm="pm_card_authenticationRequired", return_url="https://app.example/back"
        )
        assert r.status_code == 201, r.text
        intent = r.json()
        assert intent["status"] == "requires_action"
        assert intent["next_action"]["type"] == "redirect_to_url"
        assert intent["next_action"]["redirect_to_url"]["return_url"] == "https://app.example/back"
        assert entries(intent["id"]) == []

        ref = stored_intent(intent["id"]).provider_ref
        fake.complete_next_action(ref)
        succeeded = stripe_events(fake, "payment_intent.succeeded", ref)[0]
        assert deliver(api, succeeded).json() == {"received": True, "duplicate": False}
        after = get_intent(api, user, intent["id"])
        assert (after["status"], after["amount_received"], after["next_action"]) == (
            "succeeded",
            50_000,
            None,
        )
        assert deliver(api, succeeded).json() == {"received": True, "duplicate": True}
        assert entries(intent["id"]) == ["payment"]
        assert_ledger_sound()

    def test_failed_authentication_lets_the_customer_pay_again(self, api, fake):
        user, merchant = make_user(), make_merchant()
        first = card_payment(api, user, merchant, pm="pm_card_authenticationRequired").json()
        assert first["next_action"]["type"] == "use_stripe_sdk"
        first_ref = stored_intent(first["id"]).provider_ref
        fake.complete_next_action(first_ref, succeed=False)
        deliver(api, stripe_events(fake, "payment_intent.payment_failed", first_ref)[0])
        failed = get_intent(api, user, first["id"])
        assert failed["status"] == "requires_payment_method"
        assert (
            failed["last_payment_error"]["message"] == "The provided PaymentMethod has failed authentication."
        )

        r = confirm(api, user, first["id"], "pm_card_visa")
        assert r.json()["status"] == "succeeded"
        assert stored_intent(first["id"]).provider_ref != first_ref
        # The first attempt's requires_action event, delivered late, is about an abandoned attempt.
        deliver(api, stripe_events(fake, "payment_intent.requires_action", first_ref)[0])
        assert get_intent(api, user, first["id"])["status"] == "succeeded"
        assert entries(first["id"]) == ["payment"]

    def test_a_late_decline_of_an_earlier_attempt_is_ignored(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        assert confirm(api, user, intent["id"], "pm_card_chargeDeclined").status_code == 402
        declined = stripe_events(fake, "payment_intent.payment_failed")[0]
        assert (
            confirm(api, user, intent["id"], "pm_card_authenticationRequired").json()["status"]
            == "requires_action"
        )

        assert deliver(api, declined).status_code == 200
        assert get_intent(api, user, intent["id"])["status"] == "requires_action"
        ref = stored_intent(intent["id"]).provider_ref
        fake.complete_next_action(ref)
        deliver(api, stripe_events(fake, "payment_intent.succeeded", ref)[0])
        assert get_intent(api, user, intent["id"])["status"] == "succeeded"

    def test_missing_or_unknown_card_is_refused_with_a_clear_422(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        r = api.post(f"/v1/payment_intents/{intent['id']}/confirm", json={}, headers=auth(user))
        assert (r.status_code, r.json()["code"]) == (422, "payment_method_required")
        r = confirm(api, user, intent["id"], "pm_card_nope")
        assert (r.status_code, r.json()["code"]) == (422, "invalid_payment_method")
        assert "pm_card_nope" in r.json()["detail"]
        assert get_intent(api, user, intent["id"])["status"] == "requires_confirmation"

    def test_without_an_api_key_cards_are_refused_with_how_to_enable_them(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        get_settings().stripe_api_key = None
        r = confirm(api, user, intent["id"])
        assert r.status_code == 422
        assert r.json()["code"] == "provider_not_configured"
        assert "HANOIPAY_STRIPE_API_KEY" in r.json()["detail"]
        assert fake.requests == []

        get_settings().stripe_webhook_secret = None
        r = deliver(api, {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}})
        assert (r.status_code, r.json()["code"]) == (422, "provider_not_configured")
        assert "HANOIPAY_STRIPE_WEBHOOK_SECRET" in r.json()["detail"]

    def test_a_key_stripe_refuses_is_a_502_that_records_nothing(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        get_settings().stripe_api_key = "sk_live_not_for_tests_0000"
        r = confirm(api, user, intent["id"])
        assert (r.status_code, r.json()["code"]) == (502, "provider_unavailable")
        assert get_intent(api, user, intent["id"])["status"] == "requires_confirmation"

    def test_retry_with_the_same_idempotency_key_replays_without_charging_again(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        headers = {**auth(user), "Idempotency-Key": "confirm-once"}
        url = f"/v1/payment_intents/{intent['id']}/confirm"
        first = api.post(url, json={"payment_method": "pm_card_visa"}, headers=headers)
        again = api.post(url, json={"payment_method": "pm_card_visa"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert len(fake.payment_intents) == 1

    def test_two_confirms_racing_make_one_payment(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: confirm(api, user, intent["id"]), range(2)))
        assert sorted(r.status_code for r in answers) == [200, 409]
        assert {r.json().get("code") for r in answers if r.status_code == 409} == {"intent_not_confirmable"}
        assert len(fake.payment_intents) == 1
        assert entries(intent["id"]) == ["payment"]


class TestCaptureAndCancel:
    def test_manual_capture_of_part_of_the_authorization(self, api, fake):
        user, merchant = make_user(), make_merchant(fee_bps=100)
        intent = card_payment(api, user, merchant, capture_method="manual").json()
        assert (intent["status"], intent["amount_capturable"]) == ("requires_capture", 50_000)
        assert entries(intent["id"]) == []
        ref = stored_intent(intent["id"]).provider_ref
        assert fake.payment_intents[ref]["capture_method"] == "manual"

        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(
            f"/v1/payment_intents/{intent['id']}/capture",
            json={"amount_to_capture": 30_000},
            headers=auth(vendor),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["amount_received"], r.json()["fee_amount"]) == (
            "succeeded",
            30_000,
            300,
        )
        assert (fake.payment_intents[ref]["status"], fake.payment_intents[ref]["amount_received"]) == (
            "succeeded",
            30_000,
        )
        assert clearing() == 30_000
        assert posted(merchant.account_id) == 29_700

        for late in ("payment_intent.amount_capturable_updated", "payment_intent.succeeded"):
            assert deliver(api, stripe_events(fake, late, ref)[0]).status_code == 200
        assert get_intent(api, user, intent["id"])["amount_received"] == 30_000
        assert entries(intent["id"]) == ["payment"]
        assert_ledger_sound()

    def test_cancel_voids_the_authorization_at_stripe(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, capture_method="manual").json()
        ref = stored_intent(intent["id"]).provider_ref
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(f"/v1/payment_intents/{intent['id']}/cancel", json={}, headers=auth(vendor))
        assert (r.status_code, r.json()["status"]) == (200, "canceled")
        assert fake.payment_intents[ref]["status"] == "canceled"
        assert deliver(api, stripe_events(fake, "payment_intent.canceled", ref)[0]).status_code == 200
        assert get_intent(api, user, intent["id"])["status"] == "canceled"
        assert entries(intent["id"]) == []

    def test_cancel_is_refused_when_the_card_payment_went_through_at_stripe(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, pm="pm_card_authenticationRequired").json()
        ref = stored_intent(intent["id"]).provider_ref
        fake.complete_next_action(ref)  # the customer passed 3-D Secure; the webhook is still on its way
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(f"/v1/payment_intents/{intent['id']}/cancel", json={}, headers=auth(vendor))
        assert (r.status_code, r.json()["code"]) == (409, "intent_not_cancelable")
        assert "succeeded" in r.json()["detail"]
        deliver(api, stripe_events(fake, "payment_intent.succeeded", ref)[0])
        assert get_intent(api, user, intent["id"])["status"] == "succeeded"

    def test_capture_of_an_authorization_canceled_at_stripe_is_refused(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, capture_method="manual").json()
        ref = stored_intent(intent["id"]).provider_ref
        stripe_client(fake).v1.payment_intents.cancel(ref)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        r = api.post(f"/v1/payment_intents/{intent['id']}/capture", json={}, headers=auth(vendor))
        assert (r.status_code, r.json()["code"]) == (409, "intent_not_capturable")
        assert get_intent(api, user, intent["id"])["status"] == "requires_capture"
        deliver(api, stripe_events(fake, "payment_intent.canceled", ref)[0])
        canceled = get_intent(api, user, intent["id"])
        assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "provider")


def refund(api, merchant, intent_id, amount=None):
    vendor = make_user(["vendor"], merchant_id=merchant.id)
    body = {"payment_intent": intent_id, **({"amount": amount} if amount else {})}
    return api.post("/v1/refunds", json=body, headers=auth(vendor))


def refunds_of(intent_id) -> list[tuple[int, str]]:
    with job_session() as session:
        rows = session.scalars(select(Refund).where(Refund.intent_id == intent_id).order_by(Refund.id))
        return [(r.amount, r.status) for r in rows]


class TestRefunds:
    def test_partial_refund_then_over_refund_is_refused(self, api, fake):
        user, merchant = make_user(), make_merchant(fee_bps=100)
        intent = card_payment(api, user, merchant, 50_000).json()
        r = refund(api, merchant, intent["id"], 20_000)
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["fee_refunded"]) == ("succeeded", 200)
        (made,) = fake.refunds.values()
        assert (made["amount"], made["metadata"]["hanoipay_refund"]) == (20_000, r.json()["id"])
        assert clearing() == 30_000
        assert posted(merchant.account_id) == 49_500 - 19_800
        assert fee_revenue() == 300

        over = refund(api, merchant, intent["id"], 40_000)
        assert (over.status_code, over.json()["code"]) == (422, "amount_exceeds_refundable")
        # Stripe's charge.refunded names our own refund: nothing is added.
        deliver(api, stripe_events(fake, "charge.refunded")[0])
        assert refunds_of(intent["id"]) == [(20_000, "succeeded")]
        assert_ledger_sound()

    def test_a_refund_made_in_stripes_dashboard_is_recorded_once(self, api, fake):
        user, merchant = make_user(), make_merchant(fee_bps=100)
        intent = card_payment(api, user, merchant, 50_000).json()
        ref = stored_intent(intent["id"]).provider_ref
        stripe_client(fake).v1.refunds.create(params={"payment_intent": ref, "amount": 10_000})

        # Stripe knows of a refund the platform does not yet: it refuses more than is left.
        r = refund(api, merchant, intent["id"], 45_000)
        assert (r.status_code, r.json()["code"]) == (422, "amount_exceeds_refundable")
        assert refunds_of(intent["id"]) == []

        deliver(api, stripe_events(fake, "charge.refunded")[0])
        assert refunds_of(intent["id"]) == [(10_000, "succeeded")]
        assert get_intent(api, user, intent["id"])["amount_refunded"] == 10_000
        assert refund(api, merchant, intent["id"], 40_000).status_code == 201
        # The second charge.refunded lists both refunds: each is already recorded.
        deliver(api, stripe_events(fake, "charge.refunded")[1])
        assert refunds_of(intent["id"]) == [(10_000, "succeeded"), (40_000, "succeeded")]
        assert clearing() == 0
        assert posted(merchant.account_id) == 0
        assert_ledger_sound()

    def test_a_dashboard_refund_reported_before_the_payment_is_retried_later(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, pm="pm_card_authenticationRequired").json()
        ref = stored_intent(intent["id"]).provider_ref
        fake.complete_next_action(ref)
        stripe_client(fake).v1.refunds.create(params={"payment_intent": ref})
        refunded = stripe_events(fake, "charge.refunded")[0]
        r = deliver(api, refunded)
        assert (r.status_code, r.json()["code"]) == (409, "refund_before_payment")
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0  # Stripe retries it

        deliver(api, stripe_events(fake, "payment_intent.succeeded", ref)[0])
        assert deliver(api, refunded).json() == {"received": True, "duplicate": False}
        assert refunds_of(intent["id"]) == [(50_000, "succeeded")]
        assert get_intent(api, user, intent["id"])["amount_refunded"] == 50_000

    def test_a_lost_refund_answer_leaves_it_pending_until_the_job_asks_again(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, 50_000).json()
        fake.fail_next(2, status="timeout", path_prefix="/v1/refunds", delay=LOST)
        r = refund(api, merchant, intent["id"], 15_000)
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        assert len(fake.refunds) == 1  # Stripe did it; only its answer was lost

        assert settle_refund(r.json()["id"]) is True
        assert refunds_of(intent["id"]) == [(15_000, "succeeded")]
        assert len(fake.refunds) == 1
        assert settle_refund(r.json()["id"]) is False
        keys = {q.idempotency_key for q in fake.requests if q.path == "/v1/refunds"}
        assert keys == {f"hanoipay:refund:{r.json()['id']}"}


class TestLostAnswers:
    def test_a_single_timeout_is_absorbed_by_the_sdks_retry_with_the_same_key(self, api, fake):
        user, merchant = make_user(), make_merchant()
        fake.fail_next(1, status="timeout", delay=LOST)
        r = card_payment(api, user, merchant)
        assert r.json()["status"] == "succeeded"
        creates = [q for q in fake.requests if q.path == "/v1/payment_intents"]
        assert len(creates) == 2
        assert creates[0].idempotency_key == creates[1].idempotency_key
        assert len(fake.payment_intents) == 1

    def test_timeout_leaves_it_processing_and_the_settle_job_finishes_it_once(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant)
        with job_session() as session:
            jobs = session.execute(select(OutboxMessage.job, OutboxMessage.kwargs)).all()
        assert ("payments.settle_intent", {"intent_id": intent["id"]}) in jobs
        assert entries(intent["id"]) == []

        assert settle_intent(intent["id"]) is True
        settled = get_intent(api, user, intent["id"])
        assert (settled["status"], settled["amount_received"]) == ("succeeded", 50_000)
        assert settle_intent(intent["id"]) is False
        assert entries(intent["id"]) == ["payment"]
        assert len(fake.payment_intents) == 1
        creates = {q.idempotency_key for q in fake.requests if q.path == "/v1/payment_intents"}
        assert len(creates) == 1  # the job replayed the very same create
        assert_ledger_sound()

    def test_5xx_then_a_real_worker_settles_it(self, api, fake, redis_url):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant, status=500)
        assert fake.payment_intents == {}  # the 5xx came from in front of Stripe's API
        run_jobs(redis_url)
        assert get_intent(api, user, intent["id"])["status"] == "succeeded"
        assert len(fake.payment_intents) == 1
        assert entries(intent["id"]) == ["payment"]

    def test_a_decline_whose_answer_was_lost_fails_the_intent_when_settled(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant, pm="pm_card_chargeDeclined")
        settle_intent(intent["id"])
        failed = get_intent(api, user, intent["id"])
        assert (failed["status"], failed["last_payment_error"]["message"]) == (
            "requires_payment_method",
            "Your card was declined.",
        )
        assert failed["last_payment_error"]["decline_code"] == "generic_decline"
        assert confirm(api, user, intent["id"], "pm_card_visa").json()["status"] == "succeeded"

    def test_an_authentication_whose_answer_was_lost_asks_for_it_when_settled(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant, pm="pm_card_authenticationRequired")
        settle_intent(intent["id"])
        waiting = get_intent(api, user, intent["id"])
        assert waiting["status"] == "requires_action"
        assert waiting["next_action"]["type"] == "use_stripe_sdk"

    def test_the_webhook_can_finish_a_processing_intent_before_the_job(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant)
        deliver(api, stripe_events(fake, "payment_intent.succeeded")[0])
        assert get_intent(api, user, intent["id"])["status"] == "succeeded"
        assert stored_intent(intent["id"]).provider_ref == next(iter(fake.payment_intents))
        assert settle_intent(intent["id"]) is False
        assert entries(intent["id"]) == ["payment"]

    def test_a_confirm_too_old_to_replay_is_left_for_finance(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant)
        with job_session() as session:
            session.execute(
                update(PaymentIntent)
                .where(PaymentIntent.id == intent["id"])
                .values(updated_at=datetime.now(UTC) - timedelta(days=2))
            )
        seen = len(fake.requests)
        assert settle_intent(intent["id"]) is False
        assert len(fake.requests) == seen
        assert get_intent(api, user, intent["id"])["status"] == "processing"

    def test_the_periodic_sweep_settles_what_was_missed(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = processing_intent(api, fake, user, merchant)
        assert settle_stale(older_than_seconds=3600) == 0
        assert settle_stale(older_than_seconds=0) == 1
        assert get_intent(api, user, intent["id"])["status"] == "succeeded"


class TestWebhooks:
    def authenticated_intent(self, api, fake) -> tuple[dict[str, Any], dict[str, Any]]:
        """A card payment that passed 3-D Secure at Stripe, and the succeeded event not yet delivered."""
        user, merchant = make_user(), make_merchant()
        intent = card_payment(api, user, merchant, pm="pm_card_authenticationRequired").json()
        ref = stored_intent(intent["id"]).provider_ref
        fake.complete_next_action(ref)
        return intent, stripe_events(fake, "payment_intent.succeeded", ref)[0]

    def test_ten_concurrent_deliveries_apply_once(self, api, fake):
        intent, event = self.authenticated_intent(api, fake)
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda _: deliver(api, event), range(10)))
        assert [r.status_code for r in answers] == [200] * 10
        assert sorted(r.json()["duplicate"] for r in answers) == [False] + [True] * 9
        assert entries(intent["id"]) == ["payment"]
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 1
        assert_ledger_sound()

    def test_failure_reported_after_success_changes_nothing(self, api, fake):
        intent, succeeded = self.authenticated_intent(api, fake)
        late = copy.deepcopy(succeeded)
        late.update(id="evt_late_failure", type="payment_intent.payment_failed")
        late["data"]["object"].update(
            status="requires_payment_method", last_payment_error={"message": "Your card was declined."}
        )
        deliver(api, succeeded)
        assert deliver(api, late).json() == {"received": True, "duplicate": False}
        assert stored_intent(intent["id"]).status == "succeeded"
        assert stored_intent(intent["id"]).last_payment_error is None

    def test_success_delivered_while_our_confirm_waits_for_stripe(self, api, fake):
        user, merchant = make_user(), make_merchant()
        intent = open_card_intent(api, merchant)
        fake.fail_next(1, status="timeout", delay=0.5)  # shorter than the client's timeout: only slow
        results: list[Any] = []
        confirming = threading.Thread(target=lambda: results.append(confirm(api, user, intent["id"])))
        confirming.start()
        deadline = time.monotonic() + 5
        while not stripe_events(fake, "payment_intent.succeeded") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not results  # Stripe has charged the card; our confirm still waits for its answer
        webhook = deliver(api, stripe_events(fake, "payment_intent.succeeded")[0])
        confirming.join()
        assert webhook.status_code == 200
        assert results[0].json()["status"] == "succeeded"
        assert entries(intent["id"]) == ["payment"]

    @pytest.mark.parametrize(
        "tamper",
        ["wrong_secret", "changed_body", "expired", "missing", "garbage_header"],
    )
    def test_unverifiable_webhooks_are_refused_and_record_nothing(self, api, fake, tamper):
        intent, event = self.authenticated_intent(api, fake)
        payload = StripeFake.event_payload(event)
        kwargs: dict[str, Any] = {
            "wrong_secret": {"secret": "whsec_someone_else"},
            "changed_body": {
                "signature": sign_payload(payload, WEBHOOK_SECRET),
                "payload": payload.replace(b"50000", b"5"),
            },
            "expired": {"timestamp": int(time.time()) - 301},
            "missing": {"signature": ""},
            "garbage_header": {"signature": "t=abc,v1"},
        }[tamper]
        r = deliver(api, event, **kwargs)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid_signature"
        assert stored_intent(intent["id"]).status == "requires_action"
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0

    @pytest.mark.parametrize(
        "payload", [b"{not json", b"[1, 2]", b'{"id": "evt_1", "type": "x"}', b"\xff\xfe"]
    )
    def test_signed_but_malformed_bodies_are_400(self, api, payload):
        r = deliver(api, None, payload=payload)
        assert (r.status_code, r.json()["code"]) == (400, "malformed_webhook")

    @pytest.mark.parametrize(
        ("event_type", "change"),
        [
            ("payment_intent.succeeded", {"amount_received": None}),
            ("payment_intent.succeeded", {"amount_received": "50000"}),
            ("payment_intent.succeeded", {"id": None}),
            (
                "payment_intent.amount_capturable_updated",
                {"status": "requires_capture", "amount_capturable": None},
            ),
            ("payment_intent.succeeded", {"metadata": ["not", "a", "map"]}),
            ("payment_intent.succeeded", {"status": None}),
            ("charge.refunded", {"refunds": {"data": [{"id": "re_1"}]}}),
            ("charge.refunded", {"refunds": ["re_1"]}),
            ("refund.updated", {"amount": None}),
        ],
        ids=repr,
    )
    def test_a_signed_event_missing_a_field_we_read_is_400_and_changes_nothing(
        self, api, fake, event_type, change
    ):
        intent, succeeded = self.authenticated_intent(api, fake)
        event = copy.deepcopy(succeeded)
        event.update(id=f"evt_malformed_{event_type}", type=event_type)
        event["data"]["object"].update(change)
        event["data"]["object"] = {k: v for k, v in event["data"]["object"].items() if v is not None}
        r = deliver(api, event)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "malformed_webhook"
        assert stored_intent(intent["id"]).status == "requires_action"
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
        # The same object, whole, is applied: nothing of the refused one was kept.
        assert deliver(api, succeeded).json() == {"received": True, "duplicate": False}
        assert stored_intent(intent["id"]).status == "succeeded"

    def test_a_missing_field_about_an_intent_already_succeeded_is_400_too(self, api, fake):
        intent, succeeded = self.authenticated_intent(api, fake)
        deliver(api, succeeded)
        late = copy.deepcopy(succeeded)
        late["id"] = "evt_late_without_amount"
        del late["data"]["object"]["amount_received"]
        assert deliver(api, late).json()["code"] == "malformed_webhook"
        assert entries(intent["id"]) == ["payment"]

    def test_an_event_about_an_unknown_payment_is_acknowledged_and_recorded(self, api, fake):
        stripe_client(fake).v1.payment_intents.create(
            params={"amount": 1_000, "currency": "vnd", "confirm": True, "payment_method": "pm_card_visa"}
        )
        event = stripe_events(fake, "payment_intent.succeeded")[0]
        assert deliver(api, event).json() == {"received": True, "duplicate": False}
        assert deliver(api, event).json() == {"received": True, "duplicate": True}
        with job_session() as session:
            assert session.scalar(select(ProviderEvent.type)) == "payment_intent.succeeded"


def test_every_stripe_request_carries_a_key_derived_from_our_ids(api, fake):
    user, merchant = make_user(), make_merchant()
    vendor = make_user(["vendor"], merchant_id=merchant.id)
    paid = card_payment(api, user, merchant).json()
    authorized = card_payment(api, user, merchant, capture_method="manual").json()
    voided = card_payment(api, user, merchant, capture_method="manual").json()
    api.post(f"/v1/payment_intents/{authorized['id']}/capture", json={}, headers=auth(vendor))
    api.post(f"/v1/payment_intents/{voided['id']}/cancel", json={}, headers=auth(vendor))
    refunded = refund(api, merchant, paid["id"], 1_000).json()

    posts = [q for q in fake.requests if q.method == "POST"]
    assert len(posts) == 6
    for request in posts:
        assert request.idempotency_key is not None
        assert request.idempotency_key.startswith("hanoipay:")
    by_operation = {q.idempotency_key.split(":")[1]: q.idempotency_key for q in posts}
    assert by_operation["pi_capture"] == f"hanoipay:pi_capture:{authorized['id']}"
    assert by_operation["pi_cancel"] == f"hanoipay:pi_cancel:{voided['id']}"
    assert by_operation["refund"] == f"hanoipay:refund:{refunded['id']}"
    confirms = [q.idempotency_key for q in posts if q.path == "/v1/payment_intents"]
    assert [k.split(":")[2] for k in confirms] == [paid["id"], authorized["id"], voided["id"]]


def test_wallet_top_up_by_card_credits_the_customers_wallet(api, fake):
    user = make_user()
    wallet = make_wallet(user)
    body = {
        "amount": 200_000,
        "currency": "VND",
        "purpose": "wallet_topup",
        "purpose_ref": wallet.id,
        "provider": "stripe",
        "payment_method": "pm_card_mastercard",
        "confirm": True,
    }
    r = api.post("/v1/payment_intents", json=body, headers=auth(user))
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["payer_id"]) == ("succeeded", user.id)
    assert posted(wallet.account_id) == 200_000
    assert clearing() == 200_000
    assert_ledger_sound()


def test_one_failing_void_does_not_undo_the_other_expired_authorizations(api, fake):
    user, merchant = make_user(), make_merchant()
    card = card_payment(api, user, merchant, capture_method="manual").json()
    wallet = make_wallet(user, balance=20_000)
    body = {
        "amount": 20_000,
        "currency": "VND",
        "merchant_id": merchant.id,
        "purpose": "merchant_payment",
        "provider": "wallet",
        "wallet_id": wallet.id,
        "confirm": True,
        "capture_method": "manual",
    }
    held = api.post("/v1/payment_intents", json=body, headers=auth(user)).json()
    with job_session() as session:
        session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id.in_([card["id"], held["id"]]))
            .values(capture_before=datetime.now(UTC) - timedelta(seconds=1))
        )
    fake.fail_next(3, status=500, path_prefix="/v1/payment_intents")
    assert void_expired_authorizations() == 1
    assert get_intent(api, user, held["id"])["status"] == "canceled"
    assert get_intent(api, user, card["id"])["status"] == "requires_capture"  # tried again on the next run
    with job_session() as session:
        assert balances.balance(session, wallet.account_id).available == 20_000
    assert void_expired_authorizations() == 1
    assert get_intent(api, user, card["id"])["status"] == "canceled"
