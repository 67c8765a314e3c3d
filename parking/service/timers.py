"""A session's reminder before it expires, and its expiry: scheduled in RQ, swept in case Redis lost them.

Each is idempotent: a reminder is a notification with a dedupe key naming the session and the time it
covers, so an extended session gets a new one and a repeated job sends nothing twice; expiry only turns
an active session whose paid time is over into `expired` (overstaying). Both lock the session row, so an
extension racing the expiry is either applied first (and the expiry does nothing) or refused.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.notifications import notify
from parking.models import ParkingSession, SessionStatus, Zone
from parking.tariffs import LOCAL


def reminder_due_at(psn: ParkingSession, zone: Zone) -> datetime | None:
    """When the driver should be reminded, or None for a session with no end."""
    if psn.covered_until is None or psn.open_ended:
        return None
    return psn.covered_until - timedelta(minutes=zone.reminder_minutes)


def send_reminder(session: Session, session_id: str, *, now: datetime | None = None) -> bool:
    """Remind the driver the paid time ends soon, once per paid-until time; False if it is not due."""
    now = now or datetime.now(UTC)
    psn = session.get(ParkingSession, session_id, with_for_update=True)
    zone = session.get(Zone, psn.zone_id) if psn is not None else None
    if psn is None or zone is None or psn.status != SessionStatus.ACTIVE:
        return False
    due = reminder_due_at(psn, zone)
    if due is None or psn.covered_until is None or not due <= now < psn.covered_until:
        return False
    until = psn.covered_until.astimezone(LOCAL).strftime("%H:%M")
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
    """(sessions whose reminder is due, sessions whose paid time is over), for the sweeps."""
    active = (
        select(ParkingSession.id)
        .join(Zone, Zone.id == ParkingSession.zone_id)
        .where(ParkingSession.status == SessionStatus.ACTIVE, ParkingSession.open_ended.is_(False))
    )
    remind = session.scalars(
        active.where(
            ParkingSession.covered_until > now,
            ParkingSession.covered_until - Zone.reminder_minutes * timedelta(minutes=1) <= now,
        ).limit(limit)
    ).all()
    expired = session.scalars(active.where(ParkingSession.covered_until <= now).limit(limit)).all()
    return list(remind), list(expired)
