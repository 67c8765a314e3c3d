"""Cards through Stripe PaymentIntents: the only module that imports `stripe`.

Every request Stripe receives carries an idempotency key derived from our ids, so any retry (the SDK's,
a settle job's, a merchant's) gets back what Stripe already did instead of doing it twice:

- confirm: `hanoipay:pi_confirm:{intent id}:{attempt id}`. A decline rolls the request's transaction back
  and leaves the intent confirmable; another card is another attempt, so it needs another key (Stripe
  would replay the decline for the same one). The attempt id is kept with the intent, so when Stripe's
  answer is lost (a timeout, a 5xx) the settle job repeats the very same create call under the same key:
  Stripe replays what it did, or does it now if it never got the request. That finds the Stripe
  PaymentIntent without knowing its id, and never charges twice.
- capture and cancel: `hanoipay:pi_capture:{intent id}`, `hanoipay:pi_cancel:{intent id}`.
- refund: `hanoipay:refund:{refund id}`.

Stripe's answers are converted here: a decline is `CardDeclined`, a request Stripe refuses for a
reason of ours is the core's own error, and anything else is `ProviderUnavailable`, raised before the
caller writes anything, so no money object is left half-written.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import stripe
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import HanoiPayError, InvalidRequest
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from hanoipay.settings import get_settings
from hanoipay.validation import describe, unstorable_paths
from payments import ledger
from payments.exceptions import (
    AmountExceedsCapturable,
    AmountExceedsRefundable,
    IntentNotCancelable,
    IntentNotCapturable,
    InvalidSignature,
    MalformedWebhook,
    PaymentFailed,
    PaymentMethodRequired,
)
from payments.intents import apply_provider_status
from payments.models import PaymentIntent, Refund
from payments.providers.base import AuthorizeResult, PaymentMethod

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams, RefundCreateParams

log = logging.getLogger(__name__)

# Keys of the intent's metadata that carry what a confirm (and its replay) sends to Stripe.
PAYMENT_METHOD = "stripe_payment_method"
RETURN_URL = "stripe_return_url"
ATTEMPT = "stripe_attempt"
# Stripe keeps idempotency keys for 24 hours; after that a replayed create would charge again.
REPLAY_WINDOW = timedelta(hours=23)
WEBHOOK_TOLERANCE_SECONDS = 300
SETTLE_INTENT_JOB = "stripe.settle_processing_intent"
SETTLE_REFUND_JOB = "stripe.settle_pending_refund"
_ADOPTED_REFUND = "stripe.adopted_refund_status"

Status = Literal["succeeded", "requires_capture", "processing", "requires_action", "failed", "canceled"]


class ProviderNotConfigured(InvalidRequest):
    code = "provider_not_configured"
    title = "Payment provider not configured"


class CardDeclined(PaymentFailed):
    code = "card_declined"
    title = "Card declined"
    error_type = "card_error"


class InvalidPaymentMethod(InvalidRequest):
    code = "invalid_payment_method"


class ProviderUnavailable(HanoiPayError):
    status = 502
    code = "provider_unavailable"
    title = "Payment provider unavailable"


@dataclass(frozen=True)
class Outcome:
    """Where Stripe says a PaymentIntent stands, in the words of `intents.apply_provider_status`."""

    status: Status
    amount: int | None = None
    error: dict[str, str | None] | None = None
    next_action: dict[str, Any] | None = None


class StripeObjectMalformed(ValueError):
    """A Stripe object (an API answer or a webhook's) lacks a field we read, or holds the wrong type."""


class _StripeModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if isinstance(data, dict) and (unstorable := list(unstorable_paths(data))):
            raise ValueError(describe(unstorable))
        return data


class StripePaymentError(_StripeModel):
    """Stripe's `last_payment_error`."""

    type: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=64)
    decline_code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=1000)


class StripePaymentIntent(_StripeModel):
    """The fields of a Stripe PaymentIntent this platform reads."""

    id: str = Field(min_length=1, max_length=255)
    status: str = Field(min_length=1, max_length=64)
    amount_received: StrictInt | None = Field(default=None, ge=0)
    amount_capturable: StrictInt | None = Field(default=None, ge=0)
    next_action: dict[str, Any] | None = None
    last_payment_error: StripePaymentError | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amounts_of_the_status(self) -> "StripePaymentIntent":
        if self.status == "succeeded" and self.amount_received is None:
            raise ValueError("a succeeded PaymentIntent must carry amount_received")
        if self.status == "requires_capture" and self.amount_capturable is None:
            raise ValueError("a PaymentIntent that requires capture must carry amount_capturable")
        return self


class StripeRefund(_StripeModel):
    """The fields of a Stripe Refund this platform reads."""

    id: str = Field(min_length=1, max_length=255)
    amount: StrictInt = Field(gt=0)
    status: str | None = Field(default=None, max_length=64)
    payment_intent: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)


class _StripeRefundList(_StripeModel):
    data: list[StripeRefund] = Field(default_factory=list)


class StripeCharge(_StripeModel):
    """The fields of a Stripe Charge (`charge.refunded`) this platform reads."""

    payment_intent: str | None = Field(default=None, max_length=255)
    refunds: _StripeRefundList = Field(default_factory=_StripeRefundList)


StripeObject = TypeVar("StripeObject", bound=_StripeModel)


def parse_stripe_object(model: type[StripeObject], data: Any) -> StripeObject:
    """`data` as the typed Stripe object, or StripeObjectMalformed naming what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise StripeObjectMalformed(
            f"not a Stripe {model.__name__.removeprefix('Stripe')}: {error}"
        ) from None


class _EventData(BaseModel):
    object: dict[str, Any]


class _Event(BaseModel):
    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    data: _EventData


@dataclass(frozen=True)
class WebhookEvent:
    """A verified Stripe event: its id, its type, the object it is about, and the whole payload."""

    id: str
    type: str
    object: dict[str, Any]
    payload: dict[str, Any]


def outcome_of(payment_intent: StripePaymentIntent) -> Outcome:
    """What a Stripe PaymentIntent (an API answer or a webhook's object) says about our intent."""
    status = payment_intent.status
    if status == "succeeded":
        return Outcome("succeeded", amount=payment_intent.amount_received)
    if status == "requires_capture":
        return Outcome("requires_capture", amount=payment_intent.amount_capturable)
    if status == "requires_action":
        return Outcome("requires_action", next_action=payment_intent.next_action)
    if status == "processing":
        return Outcome("processing")
    if status == "canceled":
        return Outcome("canceled")
    error = payment_intent.last_payment_error or StripePaymentError()
    return Outcome("failed", error=card_error(error.message, error.code, error.decline_code))


def card_error(
    message: str | None, code: str | None = None, decline_code: str | None = None
) -> dict[str, str | None]:
    """A card's failure as the intent's `last_payment_error`."""
    return {
        "type": "card_error",
        "code": code or "card_declined",
        "decline_code": decline_code,
        "message": message or "The card payment did not go through.",
    }


def _answer(data: Any, doing: str) -> StripePaymentIntent:
    """A PaymentIntent Stripe's API answered with; one we cannot read is Stripe being unavailable."""
    try:
        return parse_stripe_object(StripePaymentIntent, data)
    except StripeObjectMalformed as error:
        log.error("stripe answered with a malformed PaymentIntent while trying to %s: %s", doing, error)
        raise ProviderUnavailable(f"Stripe's answer could not be read; could not {doing}.") from None


def apply_outcome(session: Session, intent: PaymentIntent, outcome: Outcome) -> bool:
    """Apply Stripe's word on the intent once (news of a finished intent changes nothing)."""
    changed = apply_provider_status(
        session, intent, outcome.status, amount=outcome.amount, error=outcome.error
    )
    if changed:
        intent.next_action = outcome.next_action
    return changed


def is_current_attempt(intent: PaymentIntent, payment_intent: StripePaymentIntent) -> bool:
    """True when a Stripe PaymentIntent belongs to the intent's latest confirm, not an abandoned one."""
    attempt = payment_intent.metadata.get("hanoipay_attempt")
    return payment_intent.id == intent.provider_ref or (
        attempt is not None and attempt == intent.metadata_.get(ATTEMPT)
    )


def verify_webhook(payload: bytes, signature: str | None) -> WebhookEvent:
    """The event in a webhook body, once its `Stripe-Signature` proves Stripe sent it recently."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        raise ProviderNotConfigured(
            "Stripe webhooks are not enabled: set HANOIPAY_STRIPE_WEBHOOK_SECRET to the endpoint's "
            "signing secret (whsec_...)."
        )
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise MalformedWebhook("The webhook body is not UTF-8 text.") from None
    # The SDK's own check (what stripe.Webhook.construct_event runs first); the JSON is then parsed and
    # validated here, so that any valid JSON that is not an event is a clean 400, never a 500.
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        raise InvalidSignature(f"The Stripe-Signature header does not verify: {error}") from None
    try:
        payload_json = json.loads(text)
        event = _Event.model_validate(payload_json)
    except (ValueError, ValidationError) as error:
        raise MalformedWebhook(f"The webhook body is not a Stripe event: {str(error)[:300]}") from None
    if unstorable := list(unstorable_paths(payload_json)):
        raise MalformedWebhook(describe(unstorable))
    return WebhookEvent(event.id, event.type, event.data.object, payload_json)


@contextmanager
def adopting_refund(session: Session, stripe_status: Literal["succeeded", "pending"]) -> Iterator[None]:
    """Within the block, the refund the core creates records one Stripe already made (in its dashboard)."""
    session.info[_ADOPTED_REFUND] = stripe_status
    try:
        yield
    finally:
        session.info.pop(_ADOPTED_REFUND, None)


@lru_cache(maxsize=8)
def _client(api_key: str, api_base: str | None, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else {},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def _unavailable(error: stripe.StripeError, doing: str) -> ProviderUnavailable:
    log.warning("stripe refused or failed while %s: %r", doing, error)
    return ProviderUnavailable(
        f"Stripe could not {doing} ({error.user_message or type(error).__name__}). Nothing was recorded "
        "here; retrying is safe, Stripe replays what it already did."
    )


def _key(operation: str, *ids: str) -> stripe.RequestOptions:
    return {"idempotency_key": ":".join(("hanoipay", operation, *ids))}


class StripeProvider:
    """Card payments: a Stripe PaymentIntent per confirm attempt, Stripe's signed webhooks for the rest."""

    name = "stripe"

    def __init__(self, *, timeout: float = 20.0, max_network_retries: int = 1) -> None:
        self.timeout = timeout
        self.max_network_retries = max_network_retries

    def client(self) -> stripe.StripeClient:
        """The SDK client for the current settings (rebuilt when they change), or ProviderNotConfigured."""
        settings = get_settings()
        if not settings.stripe_api_key:
            raise ProviderNotConfigured(
                "Card payments are not enabled: set HANOIPAY_STRIPE_API_KEY to a Stripe secret key "
                "(sk_test_... or sk_live_...) and HANOIPAY_STRIPE_WEBHOOK_SECRET, or pay another way."
            )
        return _client(
            settings.stripe_api_key, settings.stripe_api_base, self.timeout, self.max_network_retries
        )

    def prepare(self, session: Session, who: Principal, intent: PaymentIntent, method: PaymentMethod) -> None:
        """Keep the card (a Stripe `pm_...`) to confirm with; a customer who confirms is the payer."""
        self.client()
        if not method.payment_method:
            raise PaymentMethodRequired("Name the card to pay with: payment_method, a Stripe pm_... id.")
        metadata = {k: v for k, v in intent.metadata_.items() if k not in (PAYMENT_METHOD, RETURN_URL)}
        metadata[PAYMENT_METHOD] = method.payment_method
        if method.return_url:
            metadata[RETURN_URL] = method.return_url
        intent.metadata_ = metadata
        if intent.payer_id is None and who.kind == "user" and who.merchant_id is None and not who.is_staff:
            intent.payer_id = who.id

    def source_account(self, session: Session, intent: PaymentIntent) -> ledger.AccountRef:
        """Card money is owed to the platform by Stripe until its payout."""
        return ledger.clearing_account(session, self.name, intent.currency)

    def authorize(self, session: Session, intent: PaymentIntent) -> AuthorizeResult:
        """Create and confirm a Stripe PaymentIntent; a lost answer leaves ours `processing` for the job."""
        client = self.client()
        intent.metadata_ = {**intent.metadata_, ATTEMPT: new_id("att")}
        intent.provider_ref = intent.next_action = None
        try:
            created = client.v1.payment_intents.create(_create_params(intent), _confirm_key(intent))
        except stripe.CardError as error:
            decline_code = error.error.decline_code if error.error else None
            raise CardDeclined(
                error.user_message or "The card was declined.", decline_code=decline_code
            ) from None
        except (stripe.APIConnectionError, stripe.APIError) as error:
            log.warning("stripe did not answer the confirm of %s, settling later: %r", intent.id, error)
            enqueue_after_commit(session, SETTLE_INTENT_JOB, intent_id=intent.id)
            return "processing"
        except stripe.InvalidRequestError as error:
            if error.param == "payment_method":
                raise InvalidPaymentMethod(error.user_message or "Stripe does not know this card.") from None
            raise _unavailable(error, "confirm the card payment") from None
        except stripe.StripeError as error:
            raise _unavailable(error, "confirm the card payment") from None
        intent.provider_ref = created.id
        outcome = outcome_of(_answer(created.to_dict(), "confirm the card payment"))
        if outcome.status == "failed":
            failure = outcome.error or card_error(None)
            message = failure["message"] or "The card was declined."
            raise CardDeclined(message, decline_code=failure["decline_code"])
        if outcome.status == "canceled":
            raise ProviderUnavailable(f"Stripe canceled the card payment {created.id} as it was confirmed.")
        intent.next_action = outcome.next_action
        return outcome.status

    def capture(self, session: Session, intent: PaymentIntent, amount: int) -> None:
        """Capture `amount` of the authorization at Stripe; Stripe releases the rest."""
        assert intent.provider_ref is not None
        try:
            self.client().v1.payment_intents.capture(
                intent.provider_ref, {"amount_to_capture": amount}, _key("pi_capture", intent.id)
            )
        except stripe.InvalidRequestError as error:
            if error.code == "amount_too_large":
                raise AmountExceedsCapturable(
                    error.user_message or f"Stripe holds less than {amount} for this intent.",
                    amount_capturable=intent.amount_capturable,
                ) from None
            if error.code == "payment_intent_unexpected_state":
                raise IntentNotCapturable(
                    f"Stripe no longer holds the authorization of {intent.id}: {_stripe_status(error)}."
                ) from None
            raise _unavailable(error, "capture the payment") from None
        except stripe.StripeError as error:
            raise _unavailable(error, "capture the payment") from None

    def void(self, session: Session, intent: PaymentIntent) -> None:
        """Cancel the Stripe PaymentIntent, releasing any authorization; one already canceled is fine."""
        if intent.provider_ref is None:
            return
        try:
            self.client().v1.payment_intents.cancel(intent.provider_ref, None, _key("pi_cancel", intent.id))
        except stripe.InvalidRequestError as error:
            status = _stripe_status(error)
            if status == "canceled":
                return
            if error.code == "payment_intent_unexpected_state":
                raise IntentNotCancelable(
                    f"The card payment of {intent.id} is {status} at Stripe; it can no longer be canceled."
                ) from None
            raise _unavailable(error, "cancel the payment") from None
        except stripe.StripeError as error:
            raise _unavailable(error, "cancel the payment") from None

    def refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> Literal["succeeded", "pending"]:
        """Refund at Stripe; when its answer is lost the refund stays pending and a job asks again."""
        adopted: Literal["succeeded", "pending"] | None = session.info.pop(_ADOPTED_REFUND, None)
        if adopted is not None:
            return adopted
        client = self.client()
        try:
            made = client.v1.refunds.create(_refund_params(intent, refund), _key("refund", refund.id))
        except stripe.InvalidRequestError as error:
            if error.code in ("amount_too_large", "charge_already_refunded"):
                raise AmountExceedsRefundable(
                    f"Stripe refuses to refund {refund.amount}: {error.user_message}"
                ) from None
            raise _unavailable(error, "refund the payment") from None
        except (stripe.APIConnectionError, stripe.APIError) as error:
            log.warning("stripe did not answer refund %s, settling later: %r", refund.id, error)
            enqueue_after_commit(session, SETTLE_REFUND_JOB, refund_id=refund.id)
            return "pending"
        except stripe.StripeError as error:
            raise _unavailable(error, "refund the payment") from None
        return "succeeded" if made.status == "succeeded" else "pending"

    def settle(self, session: Session, intent: PaymentIntent) -> bool:
        """Ask Stripe where a `processing` intent stands and apply the answer; returns whether it changed."""
        client = self.client()
        if intent.provider_ref is None:
            if intent.updated_at < datetime.now(UTC) - REPLAY_WINDOW:
                log.error(
                    "%s has been processing too long to replay its confirm; reconcile by hand", intent.id
                )
                return False
            try:
                replayed = client.v1.payment_intents.create(_create_params(intent), _confirm_key(intent))
            except (stripe.CardError, stripe.InvalidRequestError) as error:
                decline = error.error.decline_code if error.error else None
                failed = Outcome("failed", error=card_error(error.user_message, error.code, decline))
                return apply_outcome(session, intent, failed)
            except stripe.StripeError as error:
                raise _unavailable(error, "say where the payment stands") from None
            intent.provider_ref = replayed.id
        try:
            current = client.v1.payment_intents.retrieve(intent.provider_ref)
        except stripe.StripeError as error:
            raise _unavailable(error, "say where the payment stands") from None
        return apply_outcome(session, intent, outcome_of(_answer(current.to_dict(), "settle the payment")))

    def settle_refund(self, session: Session, intent: PaymentIntent, refund: Refund) -> bool:
        """Repeat a refund whose answer was lost (Stripe replays it) and record its status."""
        client = self.client()
        try:
            made = client.v1.refunds.create(_refund_params(intent, refund), _key("refund", refund.id))
            current = client.v1.refunds.retrieve(made.id)
        except stripe.StripeError as error:
            raise _unavailable(error, "say where the refund stands") from None
        return record_refund_status(refund, current.status)


def record_refund_status(refund: Refund, stripe_status: str | None) -> bool:
    """Mark a pending refund succeeded once Stripe says so; returns whether it changed."""
    if refund.status == "pending" and stripe_status == "succeeded":
        refund.status = "succeeded"
        return True
    if stripe_status in ("failed", "canceled"):
        log.error(
            "stripe says refund %s is %s; finance must reverse its ledger entry", refund.id, stripe_status
        )
    return False


def _confirm_key(intent: PaymentIntent) -> stripe.RequestOptions:
    return _key("pi_confirm", intent.id, intent.metadata_[ATTEMPT])


def _create_params(intent: PaymentIntent) -> "PaymentIntentCreateParams":
    """The create-and-confirm call of the intent's latest attempt, the same every time it is built."""
    params: PaymentIntentCreateParams = {
        "amount": intent.amount,
        # Our amounts are in the currency's minor unit, as Stripe's are (VND has none: 8000 is 8 000 ₫).
        "currency": intent.currency.lower(),
        "capture_method": "manual" if intent.capture_method == "manual" else "automatic",
        "payment_method": intent.metadata_[PAYMENT_METHOD],
        "confirm": True,
        "metadata": {"hanoipay_intent": intent.id, "hanoipay_attempt": intent.metadata_[ATTEMPT]},
    }
    if RETURN_URL in intent.metadata_:
        params["return_url"] = intent.metadata_[RETURN_URL]
    else:
        # Without a page to come back to, Stripe must not choose a payment method that redirects.
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
    return params


def _refund_params(intent: PaymentIntent, refund: Refund) -> "RefundCreateParams":
    assert intent.provider_ref is not None
    return {
        "payment_intent": intent.provider_ref,
        "amount": refund.amount,
        "metadata": {"hanoipay_refund": refund.id, "hanoipay_intent": intent.id},
    }


def _stripe_status(error: stripe.InvalidRequestError) -> str:
    """The status of the PaymentIntent a refused request names, as Stripe reports it."""
    payment_intent = error.error.payment_intent if error.error else None
    return str(payment_intent.status) if payment_intent is not None else "in another state"
