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

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import stripe
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from hanoipay.settings import get_settings
from payments import accounts, ledger
from payments.exceptions import (
    AmountExceedsCapturable,
    AmountExceedsRefundable,
    IntentNotCancelable,
    IntentNotCapturable,
    PaymentMethodRequired,
)
from payments.models import PaymentIntent, Refund
from payments.providers.base import AuthorizeResult, Outcome, PaymentMethod, RefundOutcome
from payments.providers.stripe.exceptions import (
    CardDeclined,
    InvalidPaymentMethod,
    ProviderNotConfigured,
    ProviderUnavailable,
)
from payments.providers.stripe.objects import (
    StripeObjectMalformed,
    StripePaymentIntent,
    card_error,
    outcome_of,
    parse_stripe_object,
)

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams, RefundCreateParams

log = logging.getLogger(__name__)

# Keys of the intent's metadata that carry what a confirm (and its replay) sends to Stripe.
PAYMENT_METHOD = "stripe_payment_method"
RETURN_URL = "stripe_return_url"
ATTEMPT = "stripe_attempt"
# Stripe keeps idempotency keys for 24 hours; after that a replayed create would charge again.
REPLAY_WINDOW = timedelta(hours=23)
_ADOPTED_REFUND = "stripe.adopted_refund_status"


def _answer(data: Any, doing: str) -> StripePaymentIntent:
    """A PaymentIntent Stripe's API answered with; one we cannot read is Stripe being unavailable."""
    try:
        return parse_stripe_object(StripePaymentIntent, data)
    except StripeObjectMalformed as error:
        log.error("stripe answered with a malformed PaymentIntent while trying to %s: %s", doing, error)
        raise ProviderUnavailable(f"Stripe's answer could not be read; could not {doing}.") from None


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
    settles_at_once = False
    holds_at_once = False
    asks_about_refunds = True

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

    def source_account(self, session: Session, intent: PaymentIntent) -> accounts.AccountRef:
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
            enqueue_after_commit(session, "payments.settle_intent", intent_id=intent.id)
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
            enqueue_after_commit(session, "payments.settle_refund", refund_id=refund.id)
            return "pending"
        except stripe.StripeError as error:
            raise _unavailable(error, "refund the payment") from None
        return "succeeded" if made.status == "succeeded" else "pending"

    def retrieve(self, session: Session, intent: PaymentIntent) -> Outcome:
        """Where a card payment whose confirm lost its answer stands at Stripe.

        With no Stripe id yet, the very same create call is repeated under the same idempotency key:
        Stripe replays what it did, or does it now if it never got the request.
        """
        client = self.client()
        if intent.provider_ref is None:
            if intent.updated_at < datetime.now(UTC) - REPLAY_WINDOW:
                log.error(
                    "%s has been processing too long to replay its confirm; reconcile by hand", intent.id
                )
                return Outcome("processing")
            try:
                replayed = client.v1.payment_intents.create(_create_params(intent), _confirm_key(intent))
            except (stripe.CardError, stripe.InvalidRequestError) as error:
                decline = error.error.decline_code if error.error else None
                return Outcome("failed", error=card_error(error.user_message, error.code, decline))
            except stripe.StripeError as error:
                raise _unavailable(error, "say where the payment stands") from None
            intent.provider_ref = replayed.id
        try:
            current = client.v1.payment_intents.retrieve(intent.provider_ref)
        except stripe.StripeError as error:
            raise _unavailable(error, "say where the payment stands") from None
        return outcome_of(_answer(current.to_dict(), "settle the payment"))

    def retrieve_refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> RefundOutcome | None:
        """Repeat a refund whose answer was lost (Stripe replays it) and say where it stands."""
        client = self.client()
        try:
            made = client.v1.refunds.create(_refund_params(intent, refund), _key("refund", refund.id))
            current = client.v1.refunds.retrieve(made.id)
        except stripe.StripeError as error:
            raise _unavailable(error, "say where the refund stands") from None
        return refund_outcome(current.status)


def refund_outcome(stripe_status: str | None) -> RefundOutcome | None:
    """A Stripe refund's status as the core's: succeeded, pending, failed (canceled is failed)."""
    if stripe_status == "succeeded":
        return "succeeded"
    if stripe_status in ("failed", "canceled"):
        return "failed"
    return "pending" if stripe_status in ("pending", "requires_action") else None


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
