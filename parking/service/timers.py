"""A session's reminder before it expires, and its expiry: scheduled in RQ, swept in case RQ lost them.

Each is idempotent: a reminder is a notification with a dedupe key naming the session and the time it
covers, so an extended session gets a new one and a repeated job sends nothing twice; expiry only turns
an active session whose paid time is over into `expired` (overstaying). Both lock the session row, so an
extension racing the expiry is either applied first (and the expiry does nothing) or refused.
"""

from datetime import UTC, datetime

from redis.client import Pipeline
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.jobs import enqueue_after_commit, get_queue, run_job
from hanoipay.localtime import HANOI
from hanoipay.notifications import notify
from parking.models import ParkingSession, SessionStatus, Zone

SCHEDULE = "parking.schedule_timers"


def schedule_after_commit(session: Session, psn: ParkingSession) -> None:
    """Put the session's reminder and expiry on RQ's schedule once this transaction commits.

    Through the outbox, as every side effect of a request: the request never talks to Redis, and the
    worker's relayer hands the timers to `parking.schedule_timers`. If Redis misses them the sweep
    (`parking.sweep_timers`, every minute) sends the reminder and expires the session all the same.
    """
    if psn.remind_at is None or psn.covered_until is None:
        return  # an open-ended session runs until it is ended
    enqueue_after_commit(
        session,
        SCHEDULE,
        session_id=psn.id,
        remind_at=psn.remind_at.isoformat(),
        expire_at=psn.covered_until.isoformat(),
    )


def schedule(session_id: str, remind_at: datetime, expire_at: datetime) -> None:
    """Schedule the reminder and the expiry in RQ, in one round trip; job ids name the paid-until time,
    so scheduling the same timers twice keeps one of each."""
    queue = get_queue()
    stamp = int(expire_at.timestamp())
    with queue.connection.pipeline() as pipe:
        for when, name, kind in (
            (remind_at, "parking.send_reminder", "remind"),
            (expire_at, "parking.expire_session", "expire"),
        ):
            _at(queue, pipe, when, name, f"parking-{kind}-{session_id}-{stamp}", session_id)
        pipe.execute()


def _at(queue: Queue, pipe: Pipeline, when: datetime, name: str, job_id: str, session_id: str) -> None:
    """Run the named job at `when` (RQ's scheduler), or now if that time has passed."""
    job = queue.create_job(run_job, args=(name,), kwargs={"session_id": session_id}, job_id=job_id)
    if when <= datetime.now(UTC):
        queue.enqueue_job(job, pipeline=pipe)
    else:
        queue.schedule_job(job, when, pipeline=pipe)


def send_reminder(session: Session, session_id: str, *, now: datetime | None = None) -> bool:
    """Remind the driver the paid time ends soon, once per paid-until time; False if it is not due."""
    now = now or datetime.now(UTC)
    psn = session.get(ParkingSession, session_id, with_for_update=True)
    zone = session.get(Zone, psn.zone_id) if psn is not None else None
    if psn is None or zone is None or psn.status != SessionStatus.ACTIVE:
        return False
    due = psn.remind_at
    if due is None or psn.covered_until is None or not due <= now < psn.covered_until:
        return False
    until = psn.covered_until.astimezone(HANOI).strftime("%H:%M")
    return (
        notify(
            session,
            recipient_id=psn.driver_id,
            kind="parking.expiring",
            text=f"Phiên đỗ xe {psn.plate} tại {zone.name} hết hạn lúc {until}. "
            f"Your parking for {psn.plate} ends at {until}: extend it in the app.",
            data={"session_id": psn.id, "covered_until": psn.covered_until.isoformat(), "zone": zone.code},
            dedupe_key=f"parking.expiring:{psn.id}:{psn.covered_until.isoformat()}",
        )
        is not None
    )


def expire(session: Session, session_id: str, *, now: datetime | None = None) -> bool:
    """Mark an active session whose paid time is over as expired (overstaying); False if it is not due."""
    now = now or datetime.now(UTC)
    psn = session.get(ParkingSession, session_id, with_for_update=True, populate_existing=True)
    if (
        psn is None
        or psn.status != SessionStatus.ACTIVE
        or psn.open_ended
        or psn.covered_until is None
        or psn.covered_until > now
    ):
        return False
    psn.status, psn.updated_at = SessionStatus.EXPIRED, now
    notify(
        session,
        recipient_id=psn.driver_id,
        kind="parking.expired",
        text=f"Phiên đỗ xe {psn.plate} đã hết hạn; thời gian quá hạn được tính khi kết thúc. "
        f"Your parking for {psn.plate} has expired; the overstay is charged when the session ends.",
        data={"session_id": psn.id},
        dedupe_key=f"parking.expired:{psn.id}:{psn.covered_until.isoformat()}",
    )
    session.flush()
    return True


def due_sessions(session: Session, *, now: datetime, limit: int = 500) -> tuple[list[str], list[str]]:
    """(sessions whose reminder is due, sessions whose paid time is over), for the sweep."""
    active = select(ParkingSession.id).where(
        ParkingSession.status == SessionStatus.ACTIVE, ParkingSession.open_ended.is_(False)
    )
    remind = session.scalars(
        active.where(ParkingSession.covered_until > now, ParkingSession.remind_at <= now).limit(limit)
    ).all()
    expired = session.scalars(active.where(ParkingSession.covered_until <= now).limit(limit)).all()
    return list(remind), list(expired)
