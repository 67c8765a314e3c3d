"""Enforcement for attendants: look a plate up in the operator's zones, record violations, list overstays.

The look-up reads the session row the payment's own transaction wrote, so a session is visible the
moment its payment succeeds; and it judges expiry by the clock, not by whether the expiry job has run.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role, RoleNotAllowed
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from parking.exceptions import SessionPaid, SpotNotFound
from parking.models import OPEN_STATUSES, ParkingSession, SessionStatus, Spot, Violation, Zone
from parking.plates import normalize_plate
from parking.service.catalog import get_zone

Standing = Literal["paid", "expired", "payment_pending", "unpaid_overstay", "no_session"]


@dataclass(frozen=True)
class Lookup:
    """What an attendant sees for a plate: paid, expired (and since when), payment pending, owing, or none."""

    plate: str
    status: Standing
    session: ParkingSession | None = None
    zone_code: str | None = None
    spot_code: str | None = None


def _attendant(who: Principal) -> str:
    if who.merchant_id is None or not who.has(Role.OPERATOR, Role.ADMIN, "merchant_system"):
        raise RoleNotAllowed("Plate look-ups are for the parking operator's attendants.")
    return who.merchant_id


def lookup_plate(
    session: Session, who: Principal, plate: str, *, zone_code: str | None = None, now: datetime | None = None
) -> Lookup:
    """The plate's standing in the attendant's zones (or one of them)."""
    merchant_id = _attendant(who)
    plate = normalize_plate(plate)
    now = now or datetime.now(UTC)
    query = (
        select(ParkingSession, Zone.code, Spot.code)
        .join(Zone, Zone.id == ParkingSession.zone_id)
        .join(Spot, Spot.id == ParkingSession.spot_id)
        .where(ParkingSession.plate == plate, ParkingSession.merchant_id == merchant_id)
    )
    if zone_code is not None:
        query = query.where(Zone.code == zone_code)
    found = session.execute(
        query.where(ParkingSession.status.in_(OPEN_STATUSES)).order_by(ParkingSession.id.desc()).limit(1)
    ).first()
    if found is None:
        owing = session.execute(
            query.where(ParkingSession.unpaid_amount > 0).order_by(ParkingSession.id.desc()).limit(1)
        ).first()
        if owing is None:
            return Lookup(plate, "no_session")
        return Lookup(plate, "unpaid_overstay", owing[0], owing[1], owing[2])
    psn, zone, spot = found
    status: Standing
    if psn.status == SessionStatus.PENDING_PAYMENT:
        status = "payment_pending"
    elif psn.status == SessionStatus.ACTIVE and (
        psn.open_ended or (psn.covered_until is not None and psn.covered_until > now)
    ):
        status = "paid"
    else:
        status = "expired"
    return Lookup(plate, status, psn, zone, spot)


def record_violation(
    session: Session,
    who: Principal,
    *,
    plate: str,
    zone_code: str,
    kind: str,
    photo_ref: str,
    note: str | None = None,
    spot_id: str | None = None,
    now: datetime | None = None,
) -> Violation:
    """Record a violation with its photo; refused for a plate whose session is paid (SessionPaid)."""
    merchant_id = _attendant(who)
    zone = get_zone(session, zone_code)
    if zone.merchant_id != merchant_id:
        raise RoleNotAllowed(f"Zone {zone_code} is not one of your operator's zones.")
    if spot_id is not None:
        spot = session.get(Spot, spot_id)
        if spot is None or spot.zone_id != zone.id:
            raise SpotNotFound(f"No spot {spot_id} in zone {zone_code}.")
    standing = lookup_plate(session, who, plate, zone_code=zone_code, now=now)
    if standing.status in ("paid", "payment_pending"):
        raise SessionPaid(
            f"{standing.plate} has a {standing.status.replace('_', ' ')} session in {zone_code}."
        )
    violation = Violation(
        id=new_id("pvi"),
        merchant_id=merchant_id,
        zone_id=zone.id,
        spot_id=spot_id,
        session_id=standing.session.id if standing.session else None,
        plate=standing.plate,
        kind=kind,
        photo_ref=photo_ref,
        note=note,
        recorded_by=who.id,
        observed_at=now or datetime.now(UTC),
    )
    session.add(violation)
    session.flush()
    return violation


def list_violations(
    session: Session, who: Principal, *, limit: int, starting_after: str | None
) -> Page[Violation]:
    """The operator's violations, newest first."""
    merchant_id = _attendant(who)
    return paginate(
        session,
        select(Violation).where(Violation.merchant_id == merchant_id),
        Violation.id,
        limit=limit,
        starting_after=starting_after,
    )


def list_overstays(
    session: Session,
    who: Principal,
    *,
    zone_code: str | None = None,
    now: datetime | None = None,
    limit: int = 200,
) -> list[tuple[ParkingSession, str, str]]:
    """Sessions past their paid time still parked, and ended sessions still owing, oldest first."""
    merchant_id = _attendant(who)
    now = now or datetime.now(UTC)
    query = (
        select(ParkingSession, Zone.code, Spot.code)
        .join(Zone, Zone.id == ParkingSession.zone_id)
        .join(Spot, Spot.id == ParkingSession.spot_id)
        .where(
            ParkingSession.merchant_id == merchant_id,
            or_(
                ParkingSession.status == SessionStatus.EXPIRED,
                (ParkingSession.status == SessionStatus.ACTIVE)
                & ParkingSession.open_ended.is_(False)
                & (ParkingSession.covered_until <= now),
                ParkingSession.unpaid_amount > 0,
            ),
        )
        .order_by(ParkingSession.covered_until, ParkingSession.id)
        .limit(limit)
    )
    if zone_code is not None:
        query = query.where(Zone.code == zone_code)
    return [(psn, zone, spot) for psn, zone, spot in session.execute(query).all()]
