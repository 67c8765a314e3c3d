"""Redis-queued jobs and the transactional outbox that feeds them.

A side effect that leaves the database is written as an outbox row in the same transaction as the
change that causes it. After the commit the rows are relayed to RQ; if Redis is down they stay in the
table and the sweeper relays them once it is back, so a payment never waits on, or is lost to, Redis.

Jobs have stable names (`"payments.deliver_event"`), registered with `@job(name)`. Outbox rows and the
queue store the name, never an import path, so moving a function to another module orphans nothing:
RQ runs `run_job(name, **kwargs)`, which looks the name up in this process's registry.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import redis
from rq import Queue, Retry
from sqlalchemy import BigInteger, Index, String, Text, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from hanoipay.db import Base, CreatedAt, SessionLocal, get_engine
from hanoipay.settings import get_settings

log = logging.getLogger(__name__)

RETRY_INTERVALS = [1, 5, 30, 120, 600]
_redis: redis.Redis | None = None
_OUTBOX = "hanoipay.outbox"
_registry: dict[str, Callable[..., Any]] = {}
JobFunction = TypeVar("JobFunction", bound=Callable[..., Any])


class UnknownJob(LookupError):
    """A job name no module of this process registered."""


def job(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as the job called `name` (stable once rows or queues hold it)."""

    def register(function: JobFunction) -> JobFunction:
        existing = _registry.get(name)
        if existing is not None and existing.__qualname__ != function.__qualname__:
            taken_by = f"{existing.__module__}.{existing.__qualname__}"
            raise ValueError(f"job name {name!r} is already taken by {taken_by}")
        _registry[name] = function
        return function

    return register


def run_job(job_name: str, /, **kwargs: Any) -> Any:
    """Run the job registered as `job_name`: what RQ executes for every queued job."""
    function = _registry.get(job_name)
    if function is None:
        raise UnknownJob(f"no job is registered as {job_name!r}; is its domain registered in this process?")
    return function(**kwargs)


def registered_jobs() -> list[str]:
    """The names of every job registered in this process."""
    return sorted(_registry)


class OutboxMessage(CreatedAt, Base):
    """A job to enqueue once the transaction that wrote it has committed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unrelayed", "id", postgresql_where=text("relayed_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    relayed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


def init_redis(url: str) -> redis.Redis:
    """Connect the process to Redis at `url`."""
    global _redis
    _redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
    _breaker.reset()
    return _redis


def get_redis() -> redis.Redis:
    """The process's Redis connection."""
    if _redis is None:
        raise RuntimeError("Redis is not initialised; call hanoipay.jobs.init_redis first")
    return _redis


def get_queue(name: str | None = None) -> Queue:
    """The RQ queue jobs go to."""
    return Queue(name or get_settings().queue_name, connection=get_redis())


@dataclass(frozen=True)
class _Pending:
    id: int
    job: str
    kwargs: dict[str, Any]


def enqueue_after_commit(session: Session, job_name: str, **kwargs: Any) -> None:
    """Write an outbox row for the named job; it is enqueued only if and after the transaction commits."""
    row_id = session.execute(
        insert(OutboxMessage).values(job=job_name, kwargs=kwargs).returning(OutboxMessage.id)
    ).scalar_one()
    session.info.setdefault(_OUTBOX, []).append(_Pending(row_id, job_name, kwargs))


def enqueue(job_name: str, *, job_id: str | None = None, **kwargs: Any) -> None:
    """Put the named job on the queue now (for jobs that fan out work; money changes use the outbox)."""
    get_queue().enqueue_call(run_job, args=(job_name,), kwargs=kwargs, job_id=job_id)


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    pending = session.info.pop(_OUTBOX, None)
    if pending and _enqueue(pending):
        _marker.mark([p.id for p in pending])


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_OUTBOX, None)


class _Breaker:
    """After Redis fails to answer, skip relaying for a few seconds instead of making every payment wait.

    The rows stay in the outbox and the sweeper relays them once Redis answers again.
    """

    def __init__(self, open_seconds: float = 5.0) -> None:
        self.open_seconds = open_seconds
        self._open_until = 0.0

    def allows(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + self.open_seconds

    def reset(self) -> None:
        self._open_until = 0.0


_breaker = _Breaker()


def _enqueue(pending: Sequence[_Pending], *, force: bool = False) -> bool:
    """Put the jobs on the queue in one round trip; False (and nothing lost) if Redis cannot be reached.

    Right after a failure the after-commit relay does not even try (`force` is for the sweeper).
    """
    if not force and not _breaker.allows():
        return False
    retry = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    queue = get_queue()
    try:
        with get_redis().pipeline() as pipe:
            queue.enqueue_many(
                [
                    Queue.prepare_data(
                        run_job, args=(p.job,), kwargs=p.kwargs, job_id=f"outbox-{p.id}", retry=retry
                    )
                    for p in pending
                ],
                pipeline=pipe,
            )
            pipe.execute()
    except (redis.RedisError, OSError) as exc:
        if _breaker.allows():
            log.warning("outbox relay postponed, Redis unavailable: %s", exc)
        _breaker.trip()
        return False
    _breaker.reset()
    return True


class _RelayMarker:
    """Marks relayed outbox rows in batches from a background thread, off the payment's request path.

    A mark lost to a crash only means the sweeper enqueues that job again under the same job id; jobs
    are idempotent, so that is harmless.
    """

    def __init__(self) -> None:
        self._ids: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def mark(self, ids: Sequence[int]) -> None:
        self._idle.clear()
        for row_id in ids:
            self._ids.put(row_id)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-marker", daemon=True)
                self._thread.start()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every mark handed over so far is written."""
        self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._ids.get()]
            time.sleep(0.05)
            while len(batch) < 5_000:
                try:
                    batch.append(self._ids.get_nowait())
                except queue.Empty:
                    break
            try:
                with get_engine().begin() as conn:
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                    conn.execute(
                        update(OutboxMessage).where(OutboxMessage.id.in_(batch)).values(relayed_at=func.now())
                    )
            except Exception:
                log.exception(
                    "could not mark %d outbox rows relayed; the sweeper will relay them again", len(batch)
                )
            if self._ids.empty():
                self._idle.set()


_marker = _RelayMarker()


def flush_relay_marks(timeout: float = 5.0) -> None:
    """Wait for the background marking of relayed outbox rows (tests, orderly shutdown)."""
    _marker.flush(timeout)


def relay(*, older_than_seconds: int = 0, limit: int = 1000) -> int:
    """Enqueue unrelayed outbox rows older than the age and mark them relayed; returns how many.

    If Redis cannot be reached, nothing is marked and the rows wait for the next sweep.
    """
    with SessionLocal() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.job, OutboxMessage.kwargs)
            .where(OutboxMessage.relayed_at.is_(None))
            .where(OutboxMessage.created_at < func.now() - timedelta(seconds=older_than_seconds))
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows or not _enqueue([_Pending(r.id, r.job, r.kwargs) for r in rows], force=True):
            return 0
        relayed = [row.id for row in rows]
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(relayed)).values(relayed_at=func.now())
        )
        session.commit()
        return len(rows)


@job("outbox.sweep")
def sweep_outbox() -> int:
    """Relay outbox rows that the after-commit relay missed (Redis down, process killed)."""
    total = 0
    while relayed := relay(older_than_seconds=get_settings().outbox_sweep_after_seconds):
        total += relayed
    return total
