"""Rows written or locked by hand-written SQL become session objects as if the ORM had loaded them."""

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hanoipay.db import attached, execute, get_engine, job_session, locked
from hanoipay.jobs import OutboxMessage


def test_an_attached_row_is_stored_loaded_and_tracked_like_a_loaded_one():
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    with job_session() as session:
        cursor = execute(
            session,
            "INSERT INTO outbox (job, kwargs) VALUES (%s, '{\"n\": 1}') RETURNING *",
            ("tests.attached",),
        )
        row = cursor.fetchone()
        assert cursor.description is not None
        assert row is not None
        message = attached(
            session, OutboxMessage, zip((c.name for c in cursor.description), row, strict=True)
        )
        event.listen(get_engine(), "before_cursor_execute", seen)
        try:
            assert message in session
            assert not session.new
            assert not session.dirty
            assert (message.job, message.kwargs, message.relayed_at) == ("tests.attached", {"n": 1}, None)
            assert session.get(OutboxMessage, message.id) is message
            assert statements == []  # every attribute was loaded: nothing was read back
            message.last_error = "changed after attaching"
            session.flush()
            assert len(statements) == 1
            assert statements[0].startswith("UPDATE outbox SET last_error")
        finally:
            event.remove(get_engine(), "before_cursor_execute", seen)
    with job_session() as session:
        stored = session.scalars(select(OutboxMessage).where(OutboxMessage.job == "tests.attached")).one()
        assert stored.last_error == "changed after attaching"


def _lock(session: Session, message_id: int) -> OutboxMessage | None:
    return locked(session, OutboxMessage, "SELECT * FROM outbox WHERE id = %s FOR UPDATE", (message_id,))


def test_a_locked_row_is_the_session_s_object_with_the_row_s_values():
    with job_session() as session:
        session.add(message := OutboxMessage(job="tests.locked", kwargs={}))
    with job_session() as session:
        mine = _lock(session, message.id)
        assert mine is not None
        assert mine in session
        assert not session.dirty
        assert mine.job == "tests.locked"
        assert _lock(session, -1) is None
    with job_session() as session:
        held = session.get(OutboxMessage, message.id)
        assert held is not None
        execute(session, "UPDATE outbox SET last_error = 'changed by hand' WHERE id = %s", (message.id,))
        # The session holds the object already: it is the one returned, with the row's values read in.
        assert _lock(session, message.id) is held
        assert held.last_error == "changed by hand"
