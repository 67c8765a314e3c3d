"""Notifications to people (a parking session about to expire, a tuition invoice due), through channels.

A domain calls `notify()` inside its transaction: the notification is stored with the change that causes
it and delivered by a job after the commit (through the outbox), so a rollback sends nothing and a Redis
outage delays, never loses, it. Delivery goes through a pluggable `Channel`: the built-in `inbox` channel
only keeps the notification for the person's pages and the API; a deployment registers its own channel
(SMS, Zalo, push) with `register_channel()` and names it in `HANOIPAY_NOTIFICATION_CHANNEL`.
"""

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import String, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from hanoipay.db import Base, CreatedAt, job_session
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit, job
from hanoipay.settings import get_settings

log = logging.getLogger(__name__)


class Notification(CreatedAt, Base):
    """A message to one person, kept whether or not a channel delivered it."""

    __tablename__ = "notification"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None]


class Channel(Protocol):
    """A way to reach a person: SMS, an app push, Zalo. `deliver` raises to have the job retried."""

    name: str

    def deliver(self, notification: Notification) -> None:
        """Send the notification to its recipient."""


class InboxChannel:
    """Keeps the notification for the person's pages and `GET` APIs only; sends nothing outside."""

    name = "inbox"

    def deliver(self, notification: Notification) -> None:
        """Nothing leaves the platform: the stored row is the delivery."""
        log.info("notification %s for %s: %s", notification.id, notification.recipient_id, notification.text)


_channels: dict[str, Channel] = {"inbox": InboxChannel()}


def register_channel(channel: Channel) -> None:
    """Make a delivery channel available by its name."""
    _channels[channel.name] = channel


def notify(
    session: Session,
    *,
    recipient_id: str,
    kind: str,
    text: str,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Store a notification and queue its delivery after commit; None if `dedupe_key` was used before."""
    notification_id = session.execute(
        insert(Notification)
        .values(
            id=new_id("ntf"),
            recipient_id=recipient_id,
            kind=kind,
            text=text,
            data=data or {},
            dedupe_key=dedupe_key,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notification.id)
    ).scalar()
    if notification_id is not None:
        enqueue_after_commit(session, "notifications.deliver", notification_id=notification_id)
    return notification_id


@job("notifications.deliver")
def deliver_notification(notification_id: str) -> bool:
    """Deliver a stored notification through the configured channel, once; harmless to repeat."""
    with job_session() as session:
        notification = session.get(Notification, notification_id, with_for_update=True)
        if notification is None or notification.delivered_at is not None:
            return False
        channel = _channels[get_settings().notification_channel]
        channel.deliver(notification)
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(delivered_at=func.now(), channel=channel.name)
        )
        return True


def list_notifications(session: Session, recipient_id: str, *, limit: int = 50) -> list[Notification]:
    """A person's notifications, newest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.recipient_id == recipient_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )
