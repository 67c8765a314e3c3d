"""The parking jobs: a session's reminder and expiry (on RQ's schedule from its start), and their sweep."""

import logging
from datetime import UTC, datetime

from hanoipay.db import job_session
from hanoipay.jobs import job
from parking.service import timers

log = logging.getLogger(__name__)


@job("parking.schedule_timers")
def schedule_timers(session_id: str, remind_at: str, expire_at: str) -> None:
    """A started or extended session's reminder and expiry, put on RQ's schedule."""
    timers.schedule(session_id, datetime.fromisoformat(remind_at), datetime.fromisoformat(expire_at))


@job("parking.send_reminder")
def send_reminder(session_id: str) -> bool:
    """Remind the driver the paid time ends soon (once per paid-until time)."""
    with job_session() as session:
        return timers.send_reminder(session, session_id)


@job("parking.expire_session")
def expire_session(session_id: str, now: str | None = None) -> bool:
    """Turn the session to expired if its paid time is over."""
    with job_session() as session:
        return timers.expire(session, session_id, now=datetime.fromisoformat(now) if now else None)


@job("parking.sweep_timers")
def sweep_timers() -> tuple[int, int]:
    """Send due reminders and expire due sessions that RQ's schedule missed (Redis lost, a restart)."""
    now = datetime.now(UTC)
    with job_session() as session:
        remind, expired = timers.due_sessions(session, now=now)
    reminded = sum(send_reminder(session_id) for session_id in remind)
    ended = sum(expire_session(session_id) for session_id in expired)
    if reminded or ended:
        log.info("parking sweep: %d reminders, %d sessions expired", reminded, ended)
    return reminded, ended
