"""Events about money objects: stored with the change, delivered by a job after the commit."""

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from payments.models import Event


def publish(
    session: Session, type: str, *, object_id: str, merchant_id: str | None, data: dict[str, Any]
) -> str:
    """Record an event and queue its delivery through the outbox; returns the event id."""
    event_id = new_id("evt")
    session.execute(
        insert(Event).values(id=event_id, type=type, merchant_id=merchant_id, object_id=object_id, data=data)
    )
    enqueue_after_commit(session, "payments.deliver_event", event_id=event_id)
    return event_id
