"""The parking jobs: schedule a session's timers in RQ, send its reminder, expire it; and their sweeps."""

import logging
from datetime import UTC, datetime

from hanoipay.db import job_session
from hanoipay.jobs import enqueue, get_queue, job, run_job
from parking.models import ParkingSession, Zone
from parking.service import timers

log = logging.getLogger(__name__)


def _at(when: datetime, name: str, job_id: str, session_id: str) -> None:
    """Run the named job at `when` (RQ's scheduler), or now if that time has passed."""
    if when <= datetime.now(UTC):
        enqueue(name, job_id=job_id, session_id=session_id)
    else:
        get_queue().enqueue_at(when, run_job, name, job_id=job_id, session_id=session_id)


@job("parking.schedule_timers")
def schedule_timers(session_id: str) -> None:
    """Put the session's reminder and expiry on RQ's schedule, for the time it is now paid until."""
    with job_session() as session:
        psn = session.get(ParkingSession, session_id)
        zone = session.get(Zone, psn.zone_id) if psn is not None else None
        if psn is None or zone is None or psn.covered_until is None:
            return
        remind_at, expire_at = timers.reminder_due_at(psn, zone), psn.covered_until
    if remind_at is None:
        return  # an open-ended session runs until it is ended
    stamp = int(expire_at.timestamp())
    _at(remind_at, "parking.send_reminder", f"parking-remind-{session_id}-{stamp}", session_id)
    _at(expire_at, "parking.expire_session", f"parking-expire-{session_id}-{stamp}", session_id)


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
