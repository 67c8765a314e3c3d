"""Drive the real ``stripe`` SDK against the local StripeFake server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import stripe

from tests.stripe_fake import StripeFake, parse_form, sign_payload

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams

WEBHOOK_SECRET = "whsec_hanoipay_test"


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    """A running fake Stripe server, stopped after the test."""
    with StripeFake() as server:
        yield server


def make_client(
    fake: StripeFake,
    http_client: stripe.HTTPClient | None = None,
    *,
    retries: int = 0,
    key: str | None = None,
) -> stripe.StripeClient:
    """A StripeClient pointed at the fake."""
    return stripe.StripeClient(
        key or fake.api_key,
        base_addresses={"api": fake.url},
        max_network_retries=retries,
        http_client=http_client or stripe.RequestsClient(timeout=5),
    )


@pytest.fixture
def client(fake: StripeFake) -> stripe.StripeClient:
    """A StripeClient with retries disabled."""
    return make_client(fake)


def create_intent(
    client: stripe.StripeClient, options: stripe.RequestOptions | None = None, **params: Any
) -> stripe.PaymentIntent:
    """Create a 50,000 VND intent, overriding any parameter (deliberately untyped, to send bad ones too)."""
    merged = cast("PaymentIntentCreateParams", {"amount": 50_000, "currency": "vnd", **params})
    return client.v1.payment_intents.create(params=merged, options=options)


def replayed_header(obj: stripe.StripeObject) -> str | None:
    """The Idempotent-Replayed header of the response that produced obj."""
    assert obj.last_response is not None
    return obj.last_response.headers.get("Idempotent-Replayed")


def event_types(fake: StripeFake) -> list[str]:
    """The types of the events the fake emitted, in order."""
    return [event["type"] for event in fake.events]


def test_create_then_confirm_with_visa_succeeds(fake: StripeFake, client: stripe.StripeClient) -> None:
    intent = create_intent(client, metadata={"order": "A-1"}, description="parking")
    assert intent.id.startswith("pi_")
    assert (intent.status, intent.livemode, intent.metadata["order"]) == (
        "requires_payment_method",
        False,
        "A-1",
    )

    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})

    assert confirmed.status == "succeeded"
    assert (confirmed.amount_received, confirmed.amount_capturable) == (50_000, 0)
    assert str(confirmed.latest_charge).startswith("ch_")
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert event_types(fake) == ["payment_intent.succeeded"]
    assert fake.requests[0].params == {
        "amount": "50000",
        "currency": "vnd",
        "metadata": {"order": "A-1"},
        "description": "parking",
    }


def test_create_with_payment_method_waits_for_confirmation_and_update_merges_metadata(
    client: stripe.StripeClient,
) -> None:
    intent = create_intent(client, payment_method="pm_card_visa", metadata={"a": "1", "b": "2"})
    assert intent.status == "requires_confirmation"

    updated = client.v1.payment_intents.update(intent.id, params={"metadata": {"b": "", "c": "3"}})

    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert client.v1.payment_intents.confirm(intent.id).status == "succeeded"


def test_manual_capture_partial(fake: StripeFake, client: stripe.StripeClient) -> None:
    intent = create_intent(
        client,
        capture_method="manual",
        confirm=True,
        payment_method="pm_card_visa",
        payment_method_types=["card"],
    )
    assert (intent.status, intent.amount_capturable, intent.amount_received) == (
        "requires_capture",
        50_000,
        0,
    )
    assert fake.requests[-1].params["payment_method_types"] == ["card"]

    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 30_000})

    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 30_000, 0)
    assert event_types(fake) == ["payment_intent.amount_capturable_updated", "payment_intent.succeeded"]
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.amount == 30_000


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_decline_raises_card_error(
    fake: StripeFake, client: stripe.StripeClient, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as excinfo:
        create_intent(client, confirm=True, payment_method=payment_method)

    error = excinfo.value
    assert (error.http_status, error.code) == (402, "card_declined")
    assert error.error is not None
    assert error.error.decline_code == decline_code
    intent = error.error.payment_intent
    assert intent is not None
    assert intent.status == "requires_payment_method"
    stored = client.v1.payment_intents.retrieve(intent.id)
    assert stored.last_payment_error is not None
    assert stored.last_payment_error.code == "card_declined"
    assert event_types(fake) == ["payment_intent.payment_failed"]


def test_authentication_required_gives_requires_action(fake: StripeFake, client: stripe.StripeClient) -> None:
    sdk = create_intent(client, confirm=True, payment_method="pm_card_authenticationRequired")
    redirect = create_intent(
        client,
        confirm=True,
        payment_method="pm_card_authenticationRequired",
        return_url="https://pay.example/r",
    )

    assert sdk.status == redirect.status == "requires_action"
    assert sdk.next_action is not None
    assert sdk.next_action.type == "use_stripe_sdk"
    assert redirect.next_action is not None
    assert redirect.next_action.type == "redirect_to_url"
    assert redirect.next_action.redirect_to_url is not None
    assert redirect.next_action.redirect_to_url.return_url == "https://pay.example/r"

    fake.complete_next_action(redirect.id)
    fake.complete_next_action(sdk.id, succeed=False)

    assert client.v1.payment_intents.retrieve(redirect.id).status == "succeeded"
    assert client.v1.payment_intents.retrieve(sdk.id).status == "requires_payment_method"
    assert event_types(fake) == [
        "payment_intent.requires_action",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
    ]


def test_invalid_transitions_carry_the_intent(fake: StripeFake, client: stripe.StripeClient) -> None:
    intent = create_intent(client, confirm=True, payment_method="pm_card_visa")

    for action in (client.v1.payment_intents.capture, client.v1.payment_intents.cancel):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            action(intent.id)
        assert excinfo.value.code == "payment_intent_unexpected_state"
        assert excinfo.value.error is not None
        assert excinfo.value.error.payment_intent is not None
        assert excinfo.value.error.payment_intent.id == intent.id

    pending = create_intent(client)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.payment_intents.confirm(pending.id)
    assert excinfo.value.code == "payment_intent_unexpected_state"
    canceled = client.v1.payment_intents.cancel(pending.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert event_types(fake)[-1] == "payment_intent.canceled"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"amount": 0}, "amount_too_small"),
        ({"payment_method": "pm_card_nope"}, "resource_missing"),
        ({"capture_methods": "manual"}, "parameter_unknown"),
        ({"currency": None}, "parameter_missing"),
        ({"payment_method_types": "card"}, None),
    ],
)
def test_invalid_create_params_are_refused(
    client: stripe.StripeClient, params: dict[str, Any], code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        create_intent(client, **params)
    assert excinfo.value.code == code


def test_missing_objects_are_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.payment_intents.retrieve("pi_missing")
    assert (excinfo.value.http_status, excinfo.value.code) == (404, "resource_missing")


def test_partial_refund_then_over_refund(fake: StripeFake, client: stripe.StripeClient) -> None:
    intent = create_intent(client, confirm=True, payment_method="pm_card_visa")

    refund = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 20_000, "reason": "requested_by_customer"}
    )
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.payment_intent) == ("succeeded", 20_000, intent.id)
    assert client.v1.refunds.retrieve(refund.id).amount == 20_000

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 40_000})
    assert excinfo.value.code == "amount_too_large"
    assert "greater than unrefunded amount on charge (30000 VND)" in str(excinfo.value.user_message)

    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 30_000
    charge = client.v1.charges.retrieve(str(intent.latest_charge))
    assert (charge.amount_refunded, charge.refunded, charge.payment_intent) == (50_000, True, intent.id)
    refunded = [event["data"]["object"] for event in fake.events if event["type"] == "charge.refunded"]
    assert [c["amount_refunded"] for c in refunded] == [20_000, 50_000]
    assert [r["id"] for r in refunded[-1]["refunds"]["data"]] == [rest.id, refund.id]


def test_idempotent_replay_returns_the_same_intent(fake: StripeFake, client: stripe.StripeClient) -> None:
    first = create_intent(client, confirm=True, payment_method="pm_card_visa")
    one = create_intent(client, {"idempotency_key": "order-42"})
    two = create_intent(client, {"idempotency_key": "order-42"})

    assert one.id == two.id != first.id
    assert replayed_header(two) == "true"
    assert replayed_header(one) is None
    assert len(fake.payment_intents) == 2


def test_same_idempotency_key_with_different_params_is_refused(client: stripe.StripeClient) -> None:
    create_intent(client, {"idempotency_key": "order-43"})

    with pytest.raises(stripe.IdempotencyError):
        create_intent(client, {"idempotency_key": "order-43"}, amount=60_000)


def test_idempotency_keys_are_scoped_per_api_key(fake: StripeFake, client: stripe.StripeClient) -> None:
    other = make_client(fake, key="sk_test_other_merchant")
    mine = create_intent(client, {"idempotency_key": "shared"})
    theirs = create_intent(other, {"idempotency_key": "shared"})

    assert mine.id != theirs.id
    assert [request.api_key for request in fake.requests] == [fake.api_key, "sk_test_other_merchant"]


def test_live_keys_are_refused(fake: StripeFake) -> None:
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        create_intent(make_client(fake, key="sk_live_0123456789abcdef"))
    assert excinfo.value.user_message == "Invalid API Key provided: sk_live_************cdef"


def test_injected_500_raises_api_error_once(fake: StripeFake, client: stripe.StripeClient) -> None:
    fake.fail_next(status=500)

    with pytest.raises(stripe.APIError) as excinfo:
        create_intent(client)
    assert excinfo.value.http_status == 500
    assert create_intent(client).status == "requires_payment_method"


def test_sdk_retry_after_500_reuses_the_idempotency_key(fake: StripeFake) -> None:
    fake.fail_next(status=503, path_prefix="/v1/payment_intents")

    intent = create_intent(make_client(fake, retries=1))

    keys = [request.idempotency_key for request in fake.requests]
    assert len(keys) == 2
    assert keys[0] is not None
    assert keys[0] == keys[1]
    assert list(fake.payment_intents) == [intent.id]


@pytest.mark.parametrize(
    "http_client",
    [
        pytest.param(lambda: stripe.RequestsClient(timeout=0.5), id="requests"),
        pytest.param(
            lambda: stripe.HTTPXClient(timeout=0.5, allow_sync_methods=True),
            id="httpx",
            # stripe's HTTPXClient posts a str body via data=, which httpx deprecates.
            marks=pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
        ),
    ],
)
def test_timeout_still_applies_the_operation(fake: StripeFake, http_client: Any) -> None:
    client = make_client(fake, http_client())
    intent = create_intent(client)
    fake.fail_next(status="timeout", path_prefix=f"/v1/payment_intents/{intent.id}/confirm", delay=3)

    with pytest.raises(stripe.APIConnectionError) as excinfo:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert type(excinfo.value.__cause__).__name__ == "ReadTimeout"

    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    lost_key = fake.requests[1].idempotency_key
    assert lost_key is not None
    retried = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}, options={"idempotency_key": lost_key}
    )
    assert retried.status == "succeeded"
    assert replayed_header(retried) == "true"


def test_stop_wakes_delayed_responses_and_joins_threads() -> None:
    before = set(threading.enumerate())
    fake = StripeFake()
    fake.start()
    fake.fail_next(status="timeout", delay=60)
    with pytest.raises(stripe.APIConnectionError):
        create_intent(make_client(fake, stripe.RequestsClient(timeout=0.2)))

    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 5
    assert set(threading.enumerate()) <= before


def test_module_level_api_base(fake: StripeFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_base", fake.url)
    monkeypatch.setattr(stripe, "api_key", fake.api_key)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    monkeypatch.setattr(stripe, "default_http_client", stripe.RequestsClient(timeout=5))

    intent = stripe.PaymentIntent.create(
        amount=10_000, currency="vnd", confirm=True, payment_method="pm_card_visa"
    )

    assert intent.status == "succeeded"


def test_webhook_signature_round_trip(fake: StripeFake, client: stripe.StripeClient) -> None:
    create_intent(client, confirm=True, payment_method="pm_card_visa")
    payload = fake.event_payload(fake.events[-1])
    header = sign_payload(payload, WEBHOOK_SECRET)

    event = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET)
    assert event.type == "payment_intent.succeeded"
    assert event.data.object["object"] == "payment_intent"
    assert event.id.startswith("evt_")
    assert event.livemode is False
    assert client.construct_event(payload, header, WEBHOOK_SECRET).id == event.id

    tampered = payload.replace(b'"amount": 50000', b'"amount": 5')
    stale = sign_payload(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)
    for body, signature, secret in [
        (tampered, header, WEBHOOK_SECRET),
        (payload, header, "whsec_wrong"),
        (payload, stale, WEBHOOK_SECRET),
    ]:
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, signature, secret)


def test_events_record_the_triggering_request(fake: StripeFake, client: stripe.StripeClient) -> None:
    intent = create_intent(
        client, {"idempotency_key": "evt-key"}, confirm=True, payment_method="pm_card_visa"
    )

    event = fake.events[-1]
    assert event["request"]["idempotency_key"] == "evt-key"
    assert intent.last_response is not None
    assert event["request"]["id"] == intent.last_response.request_id
    assert event["api_version"] == fake.api_version
    assert isinstance(event["created"], int)


def test_raw_http_unknown_route_and_bracketed_arrays(fake: StripeFake) -> None:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    body = b"amount=500&currency=VND&payment_method_types[]=card&payment_method_types[]=bank"
    request = urllib.request.Request(f"{fake.url}/v1/payment_intents", body, headers, method="POST")
    with urllib.request.urlopen(request) as response:
        created = json.load(response)
    assert (created["currency"], created["payment_method_types"]) == ("vnd", ["card", "bank"])

    missing = urllib.request.Request(f"{fake.url}/v1/customers", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(missing)
    with excinfo.value as error:
        assert error.code == 404
        assert json.load(error)["error"]["type"] == "invalid_request_error"


def test_parse_form_nests_brackets() -> None:
    body = "a[b][c]=x&metadata[order]=1&metadata[0]=zero&l[0]=p&l[1]=q&e[]=m&e[]=n&flag="
    assert parse_form(body) == {
        "a": {"b": {"c": "x"}},
        "metadata": {"order": "1", "0": "zero"},
        "l": ["p", "q"],
        "e": ["m", "n"],
        "flag": "",
    }


def test_balance_transactions_page_by_creation_time_and_list_a_payouts_members(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    paid = [
        create_intent(client, amount=10_000 * (i + 1), payment_method="pm_card_visa", confirm=True)
        for i in range(3)
    ]
    charges = [fake.charges[p.latest_charge] for p in paid]  # type: ignore[index]
    old = fake.add_balance_transaction("stripe_fee", -5_000, created=int(time.time()) - 10 * 86_400)
    fee = (10_000 * 340 + 5_000) // 10_000 + 2_000
    window = {"gte": int(time.time()) - 3_600, "lt": int(time.time()) + 3_600}
    page = client.v1.balance_transactions.list({"created": window, "limit": 2, "expand": ["data.source"]})
    assert page.has_more
    assert len(page.data) == 2
    every = list(page.auto_paging_iter())
    assert {t.source.id for t in every} == {c["id"] for c in charges}  # the old fee is outside the window
    first = next(t for t in every if t.amount == 10_000)
    assert (first.fee, first.net, first.type, first.source.payment_intent) == (
        fee,
        10_000 - fee,
        "charge",
        paid[0].id,
    )
    payout = client.v1.payouts.create({"currency": "vnd"})
    members = list(
        client.v1.balance_transactions.list({"payout": payout.id, "limit": 100}).auto_paging_iter()
    )
    assert sorted(t.id for t in members) == sorted([*(c["balance_transaction"] for c in charges), old["id"]])
    assert payout.amount == sum(t.net for t in members)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.balance_transactions.list({"limit": 101})
