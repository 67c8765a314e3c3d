"""Attendants: plate look-up in their zones, violations with a photo reference, unpaid overstays."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit
from parking.exceptions import InvalidPlate, SessionPaid, SpotNotFound, ZoneNotFound
from parking.schemas import LookupOut, OverstayOut, ViolationCreate, ViolationList, ViolationOut
from parking.service import enforcement

router = APIRouter(prefix="/v1/parking", tags=["parking enforcement"], dependencies=[Depends(require_json)])


@router.get("/enforcement/plates/{plate}", responses=errors(InvalidPlate, RoleNotAllowed))
def lookup_plate(
    plate: str,
    session: DbSession,
    who: Caller,
    zone_code: Annotated[str | None, Query(max_length=32)] = None,
) -> LookupOut:
    """A plate's standing in the attendant's zones: paid until, expired since, or no session."""
    found = enforcement.lookup_plate(session, who, plate, zone_code=zone_code)
    psn = found.session
    if psn is None:
        return LookupOut(plate=found.plate, status=found.status)
    return LookupOut(
        plate=found.plate,
        status=found.status,
        session_id=psn.id,
        zone_code=found.zone_code,
        spot_code=found.spot_code,
        paid_until=psn.covered_until if found.status == "paid" and not psn.open_ended else None,
        expired_since=psn.covered_until if found.status == "expired" else None,
        open_ended=psn.open_ended,
        unpaid_amount=psn.unpaid_amount,
    )


@router.post(
    "/violations",
    status_code=201,
    responses=errors(InvalidPlate, SessionPaid, ZoneNotFound, SpotNotFound, RoleNotAllowed),
)
def record_violation(body: ViolationCreate, session: DbSession, who: Caller) -> ViolationOut:
    """Record a violation with its photo reference; refused (409 session_paid) for a paid plate."""
    return ViolationOut.model_validate(enforcement.record_violation(session, who, **body.model_dump()))


@router.get("/violations", responses=errors(RoleNotAllowed))
def list_violations(
    session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> ViolationList:
    """The operator's violations, newest first."""
    page = enforcement.list_violations(session, who, limit=limit, starting_after=starting_after)
    return ViolationList(
        data=[ViolationOut.model_validate(v) for v in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/enforcement/overstays", responses=errors(RoleNotAllowed))
def list_overstays(
    session: DbSession, who: Caller, zone_code: Annotated[str | None, Query(max_length=32)] = None
) -> list[OverstayOut]:
    """Cars past their paid time still parked, and ended sessions still owing money."""
    return [
        OverstayOut(
            session_id=psn.id,
            plate=psn.plate,
            zone_code=zone,
            spot_code=spot,
            status=psn.status,
            covered_until=psn.covered_until,
            ended_at=psn.ended_at,
            unpaid_amount=psn.unpaid_amount,
        )
        for psn, zone, spot in enforcement.list_overstays(session, who, zone_code=zone_code)
    ]
