"""Redis-queued jobs and the transactional outbox that feeds them.

A side effect that leaves the database is written as an outbox row in the same transaction as the
change that causes it. After the commit the rows are relayed to RQ; if Redis is down they stay in the
table and the sweeper relays them once it is back, so a payment never waits on, or is lost to, Redis.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from sqlalchemy import BigInteger, Index, String, Text, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from hanoipay.db import Base, CreatedAt, SessionLocal
from hanoipay.settings import get_settings

log = logging.getLogger(__name__)

RETRY_INTERVALS = [1, 5, 30, 120, 600]
_redis: "redis.Redis[bytes] | None" = None
_OUTBOX_IDS = "hanoipay.outbox_ids"


class OutboxMessage(CreatedAt, Base):
    """A job to enqueue once the transaction that wrote it has committed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unrelayed", "id", postgresql_where=text("relayed_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    relayed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


def init_redis(url: str) -> "redis.Redis[bytes]":
    """Connect the process to Redis at `url`."""
    global _redis
    _redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
    return _redis


def get_redis() -> "redis.Redis[bytes]":
    """The process's Redis connection."""
    if _redis is None:
        raise RuntimeError("Redis is not initialised; call hanoipay.jobs.init_redis first")
    return _redis


def get_queue(name: str | None = None) -> Queue:
    """The RQ queue jobs go to."""
    return Queue(name or get_settings().queue_name, connection=get_redis())


def enqueue_after_commit(session: Session, job: str, **kwargs: Any) -> None:
    """Write an outbox row for `job(**kwargs)`; it is enqueued only if and after the transaction commits."""
    row_id = session.execute(
        insert(OutboxMessage).values(job=job, kwargs=kwargs).returning(OutboxMessage.id)
    ).scalar_one()
    session.info.setdefault(_OUTBOX_IDS, []).append(row_id)


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    ids = session.info.pop(_OUTBOX_IDS, None)
    if ids:
        relay(ids)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_OUTBOX_IDS, None)


def relay(ids: Iterable[int] | None = None, *, older_than_seconds: int = 0, limit: int = 1000) -> int:
    """Enqueue unrelayed outbox rows (the given ids, or all older than the age) and mark them relayed.

    Returns how many were relayed; if Redis cannot be reached, nothing is marked and the rows wait.
    """
    with SessionLocal() as session:
        query = (
            select(OutboxMessage.id, OutboxMessage.job, OutboxMessage.kwargs)
            .where(OutboxMessage.relayed_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(list(ids)))
        else:
            age = timedelta(seconds=older_than_seconds)
            query = query.where(OutboxMessage.created_at < func.now() - age)
        rows = session.execute(query).all()
        if not rows:
            return 0
        queue = get_queue()
        try:
            with get_redis().pipeline() as pipe:
                queue.enqueue_many(
                    [
                        Queue.prepare_data(
                            row.job,
                            kwargs=row.kwargs,
                            job_id=f"outbox-{row.id}",
                            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                        )
                        for row in rows
                    ],
                    pipeline=pipe,
                )
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            session.rollback()
            log.warning("outbox relay postponed, Redis unavailable: %s", exc)
            return 0
        session.execute(text("SET LOCAL synchronous_commit = off"))
        relayed = [row.id for row in rows]
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(relayed)).values(relayed_at=func.now())
        )
        session.commit()
        return len(rows)


def sweep_outbox() -> int:
    """Relay outbox rows that the after-commit relay missed (Redis down, process killed)."""
    total = 0
    while relayed := relay(older_than_seconds=get_settings().outbox_sweep_after_seconds):
        total += relayed
    return total
