"""Redis-queued jobs and the transactional outbox that feeds them.

A side effect that leaves the database is written as an outbox row in the same transaction as the
change that causes it. An API request never talks to Redis: once its transaction commits, a relayer (a
thread of every worker process, polling the outbox every 200 ms) moves committed rows to RQ in batches.
Jobs and commands relay the rows they wrote themselves, right after their commit. If Redis is down the
rows stay in the table until it is back. A payment never waits on, or is lost to, Redis.

Jobs have stable names (`"payments.deliver_event"`), registered with `@job(name)`. Outbox rows and the
queue store the name, never an import path, so moving a function to another module orphans nothing:
RQ runs `run_job(name, **kwargs)`, which looks the name up in this process's registry.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import redis
from psycopg.types.json import Jsonb
from rq import Queue, Retry
from sqlalchemy import BigInteger, Index, String, Text, event, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from hanoipay.db import RELAY_AFTER_COMMIT, Base, CreatedAt, SessionLocal, execute, get_engine
from hanoipay.settings import get_settings

log = logging.getLogger(__name__)

RETRY_INTERVALS = [1, 5, 30, 120, 600]
_redis: redis.Redis | None = None
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


# Set False on a session whose transaction must never wait for Redis (an API request): its rows are left to
# the relayers. Sessions of jobs and commands relay their own rows right after they commit.
_PENDING = "hanoipay.outbox"
_OUTBOX_INSERT = "INSERT INTO outbox (job, kwargs) VALUES (%s, %s) RETURNING id"


def enqueue_after_commit(session: Session, job_name: str, **kwargs: Any) -> None:
    """Write an outbox row for the named job; it is enqueued once (and only if) the transaction commits."""
    row = execute(session, _OUTBOX_INSERT, (job_name, Jsonb(kwargs))).fetchone()
    assert row is not None
    written(session, row[0], job_name, kwargs)


def written(session: Session, row_id: int, job_name: str, kwargs: dict[str, Any]) -> None:
    """Note an outbox row the session wrote (by `enqueue_after_commit` or a statement of its own)."""
    if session.info.get(RELAY_AFTER_COMMIT, True):
        session.info.setdefault(_PENDING, []).append(_Pending(row_id, job_name, kwargs))


@event.listens_for(Session, "after_commit")
def _relay_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending and _enqueue(pending):
        _mark_relayed([p.id for p in pending])


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _mark_relayed(ids: list[int]) -> None:
    try:
        with get_engine().begin() as conn:
            conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(relayed_at=func.now()))
    except Exception:
        # Unmarked rows are relayed again under the same job id; jobs are idempotent, so that is harmless.
        log.exception("could not mark %d outbox rows relayed", len(ids))


def enqueue(job_name: str, *, job_id: str | None = None, **kwargs: Any) -> None:
    """Put the named job on the queue now (for jobs that fan out work; money changes use the outbox)."""
    get_queue().enqueue_call(run_job, args=(job_name,), kwargs=kwargs, job_id=job_id)


def _enqueue(pending: Sequence[_Pending]) -> bool:
    """Put the jobs on the queue in one round trip; False (and nothing lost) if Redis cannot be reached."""
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
        log.warning("outbox relay postponed, Redis unavailable: %s", exc)
        return False
    return True


def relay(*, older_than_seconds: int = 0, limit: int = 1000) -> int:
    """Enqueue unrelayed outbox rows older than the age and mark them relayed; returns how many.

    Rows are taken with `FOR UPDATE SKIP LOCKED`, so several relayers share the work without relaying a
    row twice. If Redis cannot be reached, nothing is marked and the rows wait for the next try.
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
        if not rows or not _enqueue([_Pending(r.id, r.job, r.kwargs) for r in rows]):
            return 0
        relayed = [row.id for row in rows]
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(relayed)).values(relayed_at=func.now())
        )
        session.commit()
        return len(rows)


def relay_all() -> int:
    """Relay every committed outbox row, a batch at a time; returns how many."""
    total = 0
    while relayed := relay():
        total += relayed
    return total


class Relayer:
    """Moves committed outbox rows to RQ in batches, in a background thread of every worker process.

    It looks for committed rows every `HANOIPAY_OUTBOX_RELAY_POLL_MS` (200 ms) through the outbox's partial
    index of unrelayed rows, and relays what it finds in batches of up to 1 000, so a job reaches the
    queue a fraction of a second after its transaction commits. Polling keeps no connection open that
    the server writes to: a LISTEN socket inherited by a forked process (RQ's scheduler) that never reads
    it would block the server's backend. The request that wrote a row never talks to Redis.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relayer", daemon=True)

    def start(self) -> None:
        """Start relaying in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        pause = get_settings().outbox_relay_poll_ms / 1000
        while not self._stop.wait(pause):
            try:
                relay_all()
            except Exception:
                log.exception("the outbox relayer failed; trying again")
                self._stop.wait(1)


@job("outbox.sweep")
def sweep_outbox() -> int:
    """Relay outbox rows no relayer took (no worker running a relayer, one that stopped)."""
    total = 0
    while relayed := relay(older_than_seconds=get_settings().outbox_sweep_after_seconds):
        total += relayed
    return total
