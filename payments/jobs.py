"""Background jobs of the payment core: thin, idempotent, each in its own session."""

import json
import logging
from datetime import timedelta

from sqlalchemy import func, select, update

from hanoipay.db import job_session
from hanoipay.jobs import enqueue, get_redis, job
from payments import bank, idempotency, intents, ledger
from payments.models import Event

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "hanoipay:events"


@job("payments.deliver_event")
def deliver_event(event_id: str) -> bool:
    """Publish an event to its merchant's live channel and mark it delivered; harmless to repeat."""
    with job_session() as session:
        event = session.get(Event, event_id)
        if event is None or event.delivered_at is not None:
            return False
        message = json.dumps({"id": event.id, "type": event.type, "data": event.data})
        channel = f"{EVENTS_CHANNEL}:merchant:{event.merchant_id}" if event.merchant_id else EVENTS_CHANNEL
        get_redis().publish(channel, message)
        session.execute(update(Event).where(Event.id == event_id).values(delivered_at=func.now()))
        return True


@job("payments.redeliver_overdue_events")
def redeliver_overdue_events(older_than_seconds: int = 300, limit: int = 1_000) -> int:
    """Queue again events still undelivered after a while (a Redis that lost its data, a dead worker)."""
    cutoff = func.now() - timedelta(seconds=older_than_seconds)
    with job_session() as session:
        overdue = session.scalars(
            select(Event.id)
            .where(Event.delivered_at.is_(None), Event.created_at < cutoff)
            .order_by(Event.id)
            .limit(limit)
        ).all()
    for event_id in overdue:
        enqueue("payments.deliver_event", job_id=f"redeliver-{event_id}", event_id=event_id)
    if overdue:
        log.warning("re-queued %d overdue events", len(overdue))
    return len(overdue)


@job("payments.expire_vietqr_intents")
def expire_vietqr_intents() -> int:
    """Cancel VietQR intents whose code expired unpaid."""
    with job_session() as session:
        return bank.expire_waiting_intents(session)


@job("payments.void_expired_authorizations")
def void_expired_authorizations() -> int:
    """Cancel authorizations left uncaptured past their capture window."""
    with job_session() as session:
        voided = intents.void_expired_authorizations(session)
    if voided:
        log.info("voided %d expired authorizations", voided)
    return voided


@job("payments.roll_up_balances")
def roll_up_balances() -> int:
    """Fold hot accounts' pending deltas into their balance rows."""
    total = 0
    while True:
        with job_session() as session:
            folded = ledger.roll_up(session)
        total += folded
        if folded == 0:
            return total


@job("payments.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    """Delete idempotency keys older than their 24-hour life."""
    with job_session() as session:
        return idempotency.purge_expired(session)
