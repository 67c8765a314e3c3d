"""Operators: load zones, spots and tariffs; zones for maps; spot states from attendants and sensors;
daily occupancy and revenue."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, raw_body, require_json
from parking import loader
from parking.api.convert import zone_brief
from parking.exceptions import (
    InvalidSearch,
    InvalidTariffFile,
    SpotNotFound,
    TariffVersionImmutable,
    ZoneNotOwned,
)
from parking.models import Zone
from parking.schemas import LoadOut, ReportOut, ReportRow, SpotOut, SpotStateChange, ZoneOut
from parking.service import catalog, reports
from payments.exceptions import MerchantNotFound

router = APIRouter(prefix="/v1/parking", tags=["parking operators"], dependencies=[Depends(require_json)])


def _merchant_of(who: Caller, merchant_id: str | None) -> str:
    chosen = merchant_id or who.merchant_id
    if chosen is None:
        raise RoleNotAllowed("Name the operator: merchant_id.")
    return chosen


@router.post(
    "/data",
    responses=errors(
        InvalidTariffFile, TariffVersionImmutable, ZoneNotOwned, RoleNotAllowed, MerchantNotFound
    ),
)
def load_data(
    body: Annotated[bytes, Depends(raw_body)],
    session: DbSession,
    who: Caller,
    merchant_id: Annotated[str | None, Query(max_length=40, description="Admins: the operator")] = None,
) -> LoadOut:
    """Create or update the operator's tariffs, zones and spots from a parking data document (JSON), whole
    or not at all; a refusal names every fault with its path and line."""
    chosen = _merchant_of(who, merchant_id)
    catalog.require_operator(who, chosen)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InvalidTariffFile("The document is not UTF-8.") from None
    summary = catalog.load_data(session, who, loader.check(text), chosen)
    return LoadOut(merchant_id=chosen, **summary.__dict__)


@router.get("/zones")
def list_zones(session: DbSession, who: Caller) -> list[ZoneOut]:
    """Every zone with its shape and its free and total spots per vehicle type (for maps)."""
    return [_zone_out(zone, free, total) for zone, free, total in catalog.list_zones(session)]


def _zone_out(zone: Zone, free: dict[str, int], total: dict[str, int]) -> ZoneOut:
    brief = zone_brief(zone).model_dump()
    return ZoneOut(
        **brief,
        kind=zone.kind,
        geometry=zone.geometry,
        max_duration_minutes=zone.max_duration_minutes,
        grace_minutes=zone.grace_minutes,
        reminder_minutes=zone.reminder_minutes,
        unused_time_rule=zone.unused_time_rule,
        sample=zone.sample,
        free_spots=free,
        total_spots=total,
    )


@router.get("/zones/{zone_code}/spots")
def list_spots(zone_code: str, session: DbSession, who: Caller) -> list[SpotOut]:
    """The zone's spots and their states."""
    zone = catalog.get_zone(session, zone_code)
    return [SpotOut.model_validate(spot) for spot in catalog.zone_spots(session, zone)]


@router.post("/spots/{spot_id}/state", responses=errors(SpotNotFound, RoleNotAllowed))
def set_spot_state(spot_id: str, body: SpotStateChange, session: DbSession, who: Caller) -> SpotOut:
    """What an attendant or a sensor says of a spot (free, occupied, out of service), applied at once.

    A spot with an open session stays occupied (the answer names the session)."""
    spot, open_session = catalog.set_spot_state(
        session, who, spot_id, state=body.state, source=body.source, at=body.observed_at
    )
    return SpotOut.model_validate(spot).model_copy(update={"open_session_id": open_session})


@router.get("/reports/daily", responses=errors(InvalidSearch, RoleNotAllowed, MerchantNotFound))
def daily_report(
    session: DbSession,
    who: Caller,
    first: Annotated[date, Query(alias="from", description="First local day, YYYY-MM-DD")],
    last: Annotated[date, Query(alias="to", description="Last local day, inclusive")],
    merchant_id: Annotated[str | None, Query(max_length=40)] = None,
) -> ReportOut:
    """Occupancy and revenue (from the ledger) per zone per day, in Asia/Ho_Chi_Minh."""
    chosen = _merchant_of(who, merchant_id)
    rows = reports.daily_report(session, who, chosen, first, last, now=datetime.now(UTC))
    return ReportOut(
        merchant_id=chosen,
        first=first,
        last=last,
        data=[
            ReportRow(
                zone_code=r.zone_code,
                day=r.day,
                spots=r.spots,
                sessions=r.sessions,
                occupied_minutes=r.occupied_minutes,
                occupancy=round(r.occupancy, 4),
                gross_amount=r.gross_amount,
                net_amount=r.net_amount,
            )
            for r in rows
        ],
    )
