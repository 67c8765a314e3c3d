"""Stripe's signed webhooks: verified, recorded once by event id, applied to their intents in any order.

Each event is inserted into `provider_event` in the request's transaction before anything is applied,
so a redelivery (or ten at once) waits for the first and then answers `duplicate`. The intent is locked
while Stripe's word is applied; `transitions.apply_provider_status` ignores news about a finished intent, so
late and out-of-order events change nothing. An event about an intent this platform does not know is
recorded and acknowledged, or Stripe would retry it for days.
"""

import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import stripe
from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.db import committed
from hanoipay.errors import Conflict, HanoiPayError
from hanoipay.http import errors, raw_body
from hanoipay.settings import get_settings
from hanoipay.validation import describe, unstorable_paths
from payments import refunds
from payments.exceptions import InvalidSignature, MalformedWebhook
from payments.models import PaymentIntent, ProviderEvent, Refund
from payments.providers.stripe import ATTEMPT, adopting_refund, refund_outcome
from payments.providers.stripe.exceptions import ProviderNotConfigured
from payments.providers.stripe.objects import (
    StripeCharge,
    StripeObjectMalformed,
    StripePaymentIntent,
    StripeRefund,
    outcome_of,
    parse_stripe_object,
)
from payments.transitions import apply_outcome

log = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300
router = APIRouter(prefix="/v1", tags=["webhooks"])

PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.amount_capturable_updated",
        "payment_intent.requires_action",
    }
)
REFUND_EVENTS = frozenset({"refund.created", "refund.updated"})
# Who records a refund made outside the platform (in Stripe's dashboard).
STRIPE = Principal(id="stripe", kind="provider", roles=frozenset({Role.FINANCE}))


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


class RefundBeforePayment(Conflict):
    code = "refund_before_payment"
    title = "Refund reported before its payment"


class WebhookReceipt(BaseModel):
    received: bool = True
    duplicate: bool = False


@router.post(
    "/webhooks/stripe",
    responses=errors(InvalidSignature, MalformedWebhook, ProviderNotConfigured, RefundBeforePayment),
)
def stripe_webhook(
    body: Annotated[bytes, Depends(raw_body)], stripe_signature: Annotated[str | None, Header()] = None
) -> WebhookReceipt:
    """Stripe's signed notification about a card payment or a refund; each event is applied once."""
    event = verify_webhook(body, stripe_signature)
    return WebhookReceipt(duplicate=not committed(lambda session: apply_event(session, event)))


def apply_event(session: Session, event: WebhookEvent) -> bool:
    """Record a verified event and apply it; False, changing nothing, if it was recorded before.

    The object is read into its typed form before anything is recorded: a signed event whose object
    lacks a field we read is a 400 `malformed_webhook` that changes nothing.
    """
    try:
        if event.type in PAYMENT_INTENT_EVENTS:
            payment_intent = parse_stripe_object(StripePaymentIntent, event.object)
            if not _claim(session, event.id, event.type, event.payload):
                return False
            apply_payment_intent(session, payment_intent)
        elif event.type in REFUND_EVENTS | {"charge.refunded"}:
            if event.type == "charge.refunded":
                charge = parse_stripe_object(StripeCharge, event.object)
                stripe_intent, stripe_refunds = charge.payment_intent, list(reversed(charge.refunds.data))
            else:
                refund = parse_stripe_object(StripeRefund, event.object)
                stripe_intent, stripe_refunds = refund.payment_intent, [refund]
            if not _claim(session, event.id, event.type, event.payload):
                return False
            apply_refunds(session, stripe_intent, stripe_refunds)
        elif not _claim(session, event.id, event.type, event.payload):
            return False
    except StripeObjectMalformed as error:
        raise MalformedWebhook(f"Event {event.id} ({event.type}): {error}"[:600]) from None
    return True


def apply_payment_intent(session: Session, payment_intent: StripePaymentIntent) -> bool:
    """Apply what a Stripe PaymentIntent says to the intent it belongs to; returns whether it changed."""
    intent = _locked_intent(session, payment_intent.metadata.get("hanoipay_intent"), payment_intent.id)
    if intent is None or not is_current_attempt(intent, payment_intent):
        log.info("stripe event about %s matches no current intent", payment_intent.id)
        return False
    if intent.provider_ref is None:
        intent.provider_ref = payment_intent.id
    outcome = outcome_of(payment_intent)
    if outcome.status == "requires_action" and intent.status != "processing":
        return False  # only news to an intent still waiting for Stripe's answer; otherwise stale
    return apply_outcome(session, intent, outcome)


def apply_refunds(session: Session, stripe_intent_id: str | None, stripe_refunds: list[StripeRefund]) -> None:
    """Bring the intent's refunds in line with Stripe's: update ours, record those made at Stripe."""
    named = next(
        (r.metadata["hanoipay_intent"] for r in stripe_refunds if "hanoipay_intent" in r.metadata), None
    )
    intent = _locked_intent(session, named, stripe_intent_id)
    if intent is None:
        log.info("stripe refunds of %s match no intent", stripe_intent_id)
        return
    for stripe_refund in stripe_refunds:
        ours = stripe_refund.metadata.get("hanoipay_refund")
        refund = session.get(Refund, ours, with_for_update=True, populate_existing=True) if ours else None
        if refund is not None and refund.intent_id == intent.id:
            refunds.record_refund_outcome(refund, refund_outcome(stripe_refund.status))
        else:
            _adopt_refund(session, intent, stripe_refund)


def _adopt_refund(session: Session, intent: PaymentIntent, stripe_refund: StripeRefund) -> None:
    """Record, once, a refund Stripe made that the platform did not ask for (or lost the record of)."""
    status: Literal["succeeded", "pending"]
    if stripe_refund.status == "succeeded":
        status = "succeeded"
    elif stripe_refund.status == "pending":
        status = "pending"
    else:
        return
    if intent.status != "succeeded":
        raise RefundBeforePayment(
            f"Stripe reports a refund of {intent.id} before its payment was applied; deliver it again later."
        )
    savepoint = session.begin_nested()
    try:
        if _claim(session, f"refund:{stripe_refund.id}", "refund", stripe_refund.model_dump()):
            with adopting_refund(session, status):
                refunds.create_refund(
                    session,
                    STRIPE,
                    intent.id,
                    amount=stripe_refund.amount,
                    reason=f"Refunded at Stripe ({stripe_refund.id})",
                )
        savepoint.commit()
    except HanoiPayError as error:
        savepoint.rollback()
        log.error("could not record stripe refund %s of %s: %s", stripe_refund.id, intent.id, error.detail)


def _claim(session: Session, external_id: str, type: str, payload: dict[str, Any]) -> bool:
    """Insert the provider event; False if it was already there (a concurrent one waits for ours)."""
    inserted = session.execute(
        pg_insert(ProviderEvent)
        .values(provider="stripe", external_id=external_id, type=type, payload=payload)
        .on_conflict_do_nothing()
        .returning(ProviderEvent.external_id)
    ).scalar()
    return inserted is not None


def _locked_intent(session: Session, intent_id: Any, stripe_intent_id: Any) -> PaymentIntent | None:
    """The Stripe intent named in metadata, or else found by its Stripe id, locked for the update."""
    if isinstance(intent_id, str):
        intent = session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
        if intent is not None and intent.provider == "stripe":
            return intent
    if not isinstance(stripe_intent_id, str):
        return None
    return session.scalars(
        select(PaymentIntent)
        .where(PaymentIntent.provider == "stripe", PaymentIntent.provider_ref == stripe_intent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
