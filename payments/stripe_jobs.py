"""Jobs that settle Stripe payments and refunds whose answer was lost: thin, idempotent, own session."""

import logging
from datetime import timedelta

from sqlalchemy import func, select

from hanoipay.db import job_session
from hanoipay.jobs import job
from payments.models import PaymentIntent, Refund
from payments.providers.base import get_provider
from payments.providers.stripe import StripeProvider

log = logging.getLogger(__name__)


def _stripe() -> StripeProvider:
    provider = get_provider("stripe")
    assert isinstance(provider, StripeProvider)
    return provider


@job("stripe.settle_processing_intent")
def settle_processing_intent(intent_id: str) -> bool:
    """Ask Stripe where a `processing` intent stands and apply its answer once; returns whether it changed."""
    with job_session() as session:
        intent = session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
        if intent is None or intent.provider != "stripe" or intent.status != "processing":
            return False
        return _stripe().settle(session, intent)


@job("stripe.settle_pending_refund")
def settle_pending_refund(refund_id: str) -> bool:
    """Repeat a Stripe refund whose answer was lost and record what Stripe did; returns whether it changed."""
    with job_session() as session:
        refund = session.get(Refund, refund_id, with_for_update=True, populate_existing=True)
        if refund is None or refund.status != "pending":
            return False
        intent = session.get(PaymentIntent, refund.intent_id)
        if intent is None or intent.provider != "stripe":
            return False
        return _stripe().settle_refund(session, intent, refund)


@job("stripe.settle_stale_objects")
def settle_stale_stripe_objects(older_than_seconds: int = 300, limit: int = 100) -> int:
    """Settle Stripe intents left processing and refunds left pending (a lost job or webhook)."""
    cutoff = func.now() - timedelta(seconds=older_than_seconds)
    with job_session() as session:
        intent_ids = session.scalars(
            select(PaymentIntent.id)
            .where(
                PaymentIntent.provider == "stripe",
                PaymentIntent.status == "processing",
                PaymentIntent.updated_at < cutoff,
            )
            .order_by(PaymentIntent.updated_at)
            .limit(limit)
        ).all()
        refund_ids = session.scalars(
            select(Refund.id)
            .join(PaymentIntent, PaymentIntent.id == Refund.intent_id)
            .where(PaymentIntent.provider == "stripe", Refund.status == "pending", Refund.created_at < cutoff)
            .order_by(Refund.created_at)
            .limit(limit)
        ).all()
    changed = sum(settle_processing_intent(i) for i in intent_ids)
    changed += sum(settle_pending_refund(r) for r in refund_ids)
    if changed:
        log.info("settled %d stale stripe intents and refunds", changed)
    return changed
