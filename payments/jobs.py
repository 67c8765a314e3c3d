"""Background jobs of the payment core: thin, idempotent, each in its own session."""

import json
import logging
from datetime import timedelta

from rq.job import Job, JobStatus
from sqlalchemy import func, select, update

from hanoipay.db import job_session
from hanoipay.jobs import enqueue, get_queue, get_redis, job
from hanoipay.settings import get_settings
from payments import balances, idempotency, refunds, transitions
from payments.models import Event, IntentStatus, PaymentIntent, Refund, RefundStatus
from payments.providers.base import all_providers, get_provider
from payments.providers.vietqr import webhook

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "hanoipay:events"
BACKLOG = 1_000
# A redelivery still in one of these states is not queued again.
PENDING = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED})


@job("payments.deliver_event")
def deliver_event(event_id: str) -> bool:
    """Publish an event to its merchant's live channel and mark it delivered; harmless to repeat."""
    with job_session() as session:
        # A redelivery and the original may run at once on two workers: the second skips, not repeats.
        event = session.scalars(
            select(Event).where(Event.id == event_id).with_for_update(skip_locked=True)
        ).first()
        if event is None or event.delivered_at is not None:
            return False
        message = json.dumps({"id": event.id, "type": event.type, "data": event.data})
        channel = f"{EVENTS_CHANNEL}:merchant:{event.merchant_id}" if event.merchant_id else EVENTS_CHANNEL
        get_redis().publish(channel, message)
        session.execute(update(Event).where(Event.id == event_id).values(delivered_at=func.now()))
        return True


@job("payments.redeliver_overdue_events")
def redeliver_overdue_events(older_than_seconds: int | None = None, limit: int = 1_000) -> int:
    """Queue again events still undelivered after a while (a Redis that lost its data, a dead worker).

    Under normal load an event is delivered within a second, so one undelivered for
    `HANOIPAY_EVENT_REDELIVERY_SECONDS` lost its job; while the queue holds a backlog, events may only be
    waiting their turn, so nothing is redelivered until it drains.
    """
    if get_queue().count > BACKLOG:
        return 0
    age = get_settings().event_redelivery_seconds if older_than_seconds is None else older_than_seconds
    cutoff = func.now() - timedelta(seconds=age)
    with job_session() as session:
        overdue = session.scalars(
            select(Event.id)
            .where(Event.delivered_at.is_(None), Event.created_at < cutoff)
            .order_by(Event.id)
            .limit(limit)
        ).all()
    job_ids = [f"redeliver-{event_id}" for event_id in overdue]
    waiting = {
        queued.id
        for queued in Job.fetch_many(job_ids, connection=get_redis())
        if queued is not None and queued.get_status(refresh=False) in PENDING
    }
    requeued = [
        (event_id, job_id) for event_id, job_id in zip(overdue, job_ids, strict=True) if job_id not in waiting
    ]
    for event_id, job_id in requeued:
        enqueue("payments.deliver_event", job_id=job_id, event_id=event_id)
    if requeued:
        log.warning("re-queued %d overdue events", len(requeued))
    return len(requeued)


@job("payments.settle_intent")
def settle_intent(intent_id: str) -> bool:
    """Ask the provider where a `processing` intent stands and apply its answer once; whether it changed."""
    with job_session() as session:
        intent = session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
        if intent is None or intent.status != IntentStatus.PROCESSING:
            return False
        return transitions.apply_outcome(
            session, intent, get_provider(intent.provider).retrieve(session, intent)
        )


@job("payments.settle_refund")
def settle_refund(refund_id: str) -> bool:
    """Ask the provider where a pending refund stands and record its answer once; whether it changed."""
    with job_session() as session:
        refund = session.get(Refund, refund_id, with_for_update=True, populate_existing=True)
        if refund is None or refund.status != RefundStatus.PENDING:
            return False
        intent = session.get(PaymentIntent, refund.intent_id)
        assert intent is not None
        outcome = get_provider(intent.provider).retrieve_refund(session, intent, refund)
        return refunds.record_refund_outcome(refund, outcome)


@job("payments.settle_stale")
def settle_stale(older_than_seconds: int = 300, limit: int = 100) -> int:
    """Settle intents left `processing` and provider refunds left pending (a lost job or webhook)."""
    cutoff = func.now() - timedelta(seconds=older_than_seconds)
    with job_session() as session:
        intent_ids = session.scalars(
            select(PaymentIntent.id)
            .where(PaymentIntent.status == IntentStatus.PROCESSING, PaymentIntent.updated_at < cutoff)
            .order_by(PaymentIntent.updated_at)
            .limit(limit)
        ).all()
        refund_ids = session.scalars(
            select(Refund.id)
            .join(PaymentIntent, PaymentIntent.id == Refund.intent_id)
            .where(
                PaymentIntent.provider.in_([p.name for p in all_providers() if p.asks_about_refunds]),
                Refund.status == RefundStatus.PENDING,
                Refund.created_at < cutoff,
            )
            .order_by(Refund.created_at)
            .limit(limit)
        ).all()
    changed = sum(settle_intent(i) for i in intent_ids) + sum(settle_refund(r) for r in refund_ids)
    if changed:
        log.info("settled %d stale intents and refunds", changed)
    return changed


@job("payments.expire_vietqr_intents")
def expire_vietqr_intents() -> int:
    """Cancel VietQR intents whose code expired unpaid."""
    with job_session() as session:
        return webhook.expire_waiting_intents(session)


@job("payments.void_expired_authorizations")
def void_expired_authorizations() -> int:
    """Cancel authorizations left uncaptured past their capture window."""
    with job_session() as session:
        voided = transitions.void_expired_authorizations(session)
    if voided:
        log.info("voided %d expired authorizations", voided)
    return voided


@job("payments.roll_up_balances")
def roll_up_balances() -> int:
    """Fold hot accounts' pending deltas into their balance rows."""
    total = 0
    while True:
        with job_session() as session:
            folded = balances.roll_up(session)
        total += folded
        if folded == 0:
            return total


@job("payments.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    """Delete idempotency keys older than their 24-hour life."""
    with job_session() as session:
        return idempotency.purge_expired(session)
