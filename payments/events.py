"""Events about money objects: stored with the change, delivered by a job after the commit."""

from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from hanoipay.db import execute
from hanoipay.ids import new_id
from hanoipay.jobs import written

DELIVER_EVENT = "payments.deliver_event"
# The event and its outbox row, in one round trip.
_PUBLISH = """
WITH event_row AS (
    INSERT INTO event (id, type, merchant_id, object_id, data) VALUES (%(id)s, %(type)s, %(merchant_id)s,
        %(object_id)s, %(data)s)
), job AS (
    INSERT INTO outbox (job, kwargs) VALUES (%(job)s, %(kwargs)s) RETURNING id
)
SELECT id FROM job
"""


def publish(
    session: Session, type: str, *, object_id: str, merchant_id: str | None, data: dict[str, Any]
) -> str:
    """Record an event and queue its delivery through the outbox; returns the event id."""
    event_id = new_id("evt")
    params = {
        "id": event_id,
        "type": type,
        "merchant_id": merchant_id,
        "object_id": object_id,
        "data": Jsonb(data),
        "job": DELIVER_EVENT,
        "kwargs": Jsonb({"event_id": event_id}),
    }
    row = execute(session, _PUBLISH, params).fetchone()
    assert row is not None
    written(session, row[0], DELIVER_EVENT, {"event_id": event_id})
    return event_id
