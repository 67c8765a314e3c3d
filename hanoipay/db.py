"""The database: one engine per process, sessions owned by the request or the job, one commit each."""

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, TypeVar, cast

import psycopg
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import RowFactory, dict_row
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    SessionTransaction,
    make_transient_to_detached,
    mapped_column,
    sessionmaker,
)

from hanoipay.settings import get_settings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every mapped class; constraint names follow one convention so migrations can name them."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class CreatedAt:
    """A `created_at` timestamp set by the database."""

    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC), server_default=func.now())


R = TypeVar("R")

SessionLocal = sessionmaker(expire_on_commit=False, autoflush=False)
_engine: Engine | None = None


def sqlalchemy_url(url: str) -> str:
    """Make a PostgreSQL URL use the psycopg 3 driver."""
    for scheme in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def init_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """Create the process's engine for `url` and bind sessions to it."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    settings = get_settings()
    _engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        connect_args={"application_name": "hanoipay"},
    )
    SessionLocal.configure(bind=_engine)
    return _engine


def _forget_parents_connections() -> None:
    """In a forked child (an RQ work horse), never use the parent's pooled connections: open new ones."""
    if _engine is not None:
        _engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parents_connections)


def is_initialised() -> bool:
    """True once `init_engine` has run in this process."""
    return _engine is not None


def get_engine() -> Engine:
    """The engine created by `init_engine`."""
    if _engine is None:
        raise RuntimeError("the database is not initialised; call hanoipay.db.init_engine first")
    return _engine


@contextmanager
def job_session() -> Iterator[Session]:
    """A session for one job or CLI command, committed once at the end, rolled back on any error."""
    with SessionLocal() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# A session whose info says False here leaves the outbox rows it commits to the relayers (`hanoipay.jobs`).
RELAY_AFTER_COMMIT = "hanoipay.relay_after_commit"


def _new_request_session() -> Session:
    """A session for one HTTP request: its outbox rows are left to the relayers, so no request waits for
    Redis."""
    session = SessionLocal()
    session.info[RELAY_AFTER_COMMIT] = False
    return session


async def get_session() -> AsyncIterator[Session]:
    """A session for one request, committed before the response is sent (see `DbSession`).

    Opening a session does no I/O, so this runs on the event loop; only the commit (or the rollback) is
    handed to a thread.
    """
    session = _new_request_session()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_end, session, commit=False)
        raise
    if session.in_transaction():
        await run_in_threadpool(_end, session, commit=True)
    else:  # the endpoint did nothing in it
        session.close()


@contextmanager
def request_session() -> Iterator[Session]:
    """A session for a request whose whole work runs in one thread and commits itself (a money POST).

    It does what `DbSession` does without being a FastAPI dependency: a generator dependency costs the
    event loop an exit stack and two thread hand-offs per request, about a tenth of a payment's API time.
    Whatever is left uncommitted (an error) is rolled back when the session closes.
    """
    with _new_request_session() as session:
        yield session


def committed(work: Callable[[Session], R]) -> R:
    """Run a request's whole work in its own session (`request_session`) and commit it, all in the
    endpoint's thread: for the provider webhooks, which carry a city's transfers."""
    with request_session() as session:
        result = work(session)
        session.commit()
        return result


def _end(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


def execute(
    session: Session,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    row_factory: RowFactory[Any] | None = None,
) -> psycopg.Cursor[Any]:
    """Run hand-written SQL on the session's own connection, in its transaction.

    For the hot paths (a payment, its ledger entry, its event): the statement is prepared once per
    connection by the server and then only executed, with none of the ORM's per-statement work. Whatever
    such a statement writes is not in the session's identity map; callers keep the two apart. With
    `row_factory=psycopg.rows.dict_row`, rows come as column → value dictionaries, their names read once
    from the result (the cursor's `description` would build a column object per column on every call).
    """
    driver: psycopg.Connection[Any] | None = session.info.get(_DRIVER)
    if driver is None:
        driver = session.connection().connection.driver_connection
        session.info[_DRIVER] = driver
    assert driver is not None
    if row_factory is None:
        return driver.execute(sql, params, prepare=True)
    return driver.cursor(row_factory=row_factory).execute(sql, params, prepare=True)


_DRIVER = "hanoipay.driver_connection"

T = TypeVar("T", bound=Base)


def attach(session: Session, obj: Base) -> None:
    """Put an object whose row a hand-written statement has just written into the session as stored: the
    ORM neither inserts it again nor reads it back."""
    make_transient_to_detached(obj)
    session.add(obj)


def attached(session: Session, cls: type[T], row: Iterable[tuple[str, Any]]) -> T:
    """An object of `cls` made from a row a hand-written `... RETURNING *` has just written (column name,
    value), attached to the session as stored: a hot path's write with none of the ORM's per-statement
    work."""
    obj = loaded(cls, row)
    attach(session, obj)
    return obj


def loaded(cls: type[T], row: Iterable[tuple[str, Any]]) -> T:
    """An object of `cls` made from a row a hand-written statement returned (column name, value), left
    outside the session: for a hot path that only reads it afterwards, such as a response. Attaching costs
    more Python than building it (the identity map and the session's cascade). Changes to it are not
    saved, and `session.get` reads the row again rather than returning this object."""
    keys = column_keys(cls)
    # As the ORM's own loading does: the values go straight into the instance's dictionary, without an
    # attribute event each, and all of them count as loaded.
    obj = cast(T, sa_inspect(cls).class_manager.new_instance())
    obj.__dict__.update((keys[name], value) for name, value in row)
    return obj


def inserted(session: Session, cls: type[T], sql: str, params: Sequence[Any] | Mapping[str, Any]) -> T | None:
    """Run a hand-written `INSERT ... RETURNING *` and return its row as an object of `cls` attached as
    stored (see `attached`); None when it inserted nothing (`ON CONFLICT DO NOTHING`)."""
    row = execute(session, sql, params, row_factory=dict_row).fetchone()
    return None if row is None else attached(session, cls, row.items())


def locked(session: Session, cls: type[T], sql: str, params: Sequence[Any] | Mapping[str, Any]) -> T | None:
    """Run a hand-written `SELECT * ... FOR UPDATE` of at most one row and return it as an object of
    `cls`: attached as loaded (see `attached`) or, when the session holds that object already, that
    object with the locked row's values read into it; None when no row matched."""
    row = execute(session, sql, params, row_factory=dict_row).fetchone()
    if row is None:
        return None
    identity = session.identity_key(cls, tuple(row[name] for name in _primary_key(cls)))
    if identity in session.identity_map:
        return session.get(cls, identity[1], populate_existing=True)
    return attached(session, cls, row.items())


@cache
def _primary_key(cls: type[Base]) -> tuple[str, ...]:
    return tuple(column.name for column in sa_inspect(cls).primary_key)


@cache
def column_keys(cls: type[Base]) -> dict[str, str]:
    """Column name → mapped attribute name (`metadata` → `metadata_`), for hand-written SQL."""
    return {attribute.columns[0].name: attribute.key for attribute in sa_inspect(cls).column_attrs}


_PER_TRANSACTION: set[str] = {_DRIVER}


def per_transaction(session: Session, name: str) -> dict[str, Any]:
    """A dictionary kept in the session for its current transaction only, forgotten when it ends: for
    what a transaction reads once and may then trust (a payment's merchant and wallet)."""
    _PER_TRANSACTION.add(name)
    known: dict[str, Any] = session.info.setdefault(name, {})
    return known


@event.listens_for(Session, "after_transaction_end")
def _forget_per_transaction(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for name in _PER_TRANSACTION:
            session.info.pop(name, None)
