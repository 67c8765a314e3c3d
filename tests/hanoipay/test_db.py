"""Rows written by hand-written SQL become session objects as if the ORM had loaded them."""

from sqlalchemy import event, select

from hanoipay.db import attached, execute, get_engine, job_session
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
