"""The driver's and the attendant's pages: server-rendered, with a little script for the map and payments.

Searching, looking a plate up and recording a violation are plain forms handled here; starting,
extending and ending a session move money, so the driver page's script calls the JSON API with an
`Idempotency-Key` (docs/web.md), then reloads the page.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response
from pydantic_settings import BaseSettings, SettingsConfigDict

from hanoipay.auth.service import Principal, Role
from hanoipay.db import DbSession
from hanoipay.errors import HanoiPayError
from hanoipay.web.pages import SignedInPage
from parking.exceptions import SessionNotFound
from parking.models import OPEN_STATUSES, VehicleType
from parking.service import catalog, enforcement, search, sessions
from payments import wallets

page_router = APIRouter(include_in_schema=False)
DURATIONS = (30, 60, 120, 180, 240, 480)
VIOLATION_KINDS = ("no_session", "expired", "wrong_spot", "no_parking", "other")


class MapSettings(BaseSettings):
    """`HANOIPAY_PARKING_MAP_TILES`: a tile URL template (`https://tiles.example.vn/{z}/{x}/{y}.png`) to
    draw under the streets; its origin must also be in `HANOIPAY_WEB_IMAGE_ORIGINS`. Unset: streets only,
    drawn from the zones' geometry, with no network."""

    model_config = SettingsConfigDict(env_prefix="HANOIPAY_PARKING_", env_file=".env", extra="ignore")
    map_tiles: str | None = None


def _map_data(session: DbSession) -> list[dict[str, Any]]:
    return [
        {
            "code": zone.code,
            "name": zone.name,
            "geometry": zone.geometry,
            "lat": zone.lat,
            "lon": zone.lon,
            "free": free,
            "total": total,
        }
        for zone, free, total in catalog.list_zones(session)
    ]


def _driver_sessions(session: DbSession, who: Principal) -> tuple[list[Any], list[Any]]:
    page = sessions.list_sessions(session, who, limit=20, starting_after=None)
    open_ones = [sessions.receipt(session, who, psn.id) for psn in page.items if psn.status in OPEN_STATUSES]
    ended = [psn for psn in page.items if psn.status not in OPEN_STATUSES][:5]
    return open_ones, ended


def _coordinate(text: str | None, limit: float) -> float | None:
    """A latitude or longitude from the search form (empty when the position was not used)."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and -limit <= value <= limit else None


@page_router.get("/parking")
def driver_page(
    page: SignedInPage,
    session: DbSession,
    street: Annotated[str | None, Query(max_length=100)] = None,
    lat: Annotated[str | None, Query(max_length=20)] = None,
    lon: Annotated[str | None, Query(max_length=20)] = None,
    vehicle_type: VehicleType = VehicleType.CAR,
    duration_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
) -> HTMLResponse:
    """Find parking (by street or near you, on a map), get a price, start, extend and end a session."""
    who = page.require(Role.CUSTOMER)
    latitude, longitude = _coordinate(lat, 90), _coordinate(lon, 180)
    searched = bool(street) or (latitude is not None and longitude is not None)
    hits, problem = [], None
    if searched:
        try:
            hits = search.search(
                session,
                vehicle_type=vehicle_type,
                duration_minutes=duration_minutes,
                lat=None if street else latitude,
                lon=None if street else longitude,
                radius_m=1_000,
                street=street or None,
                limit=10,
            )
        except HanoiPayError as error:
            problem = error.detail
    open_sessions, ended = _driver_sessions(session, who)
    own_wallets = [
        (w, wallets.wallet_balance(session, w).available) for w in wallets.list_wallets(session, who)
    ]
    return page.render(
        "parking/driver.html",
        searched=searched,
        hits=hits,
        problem=problem,
        street=street or "",
        lat=latitude,
        lon=longitude,
        vehicle_type=vehicle_type,
        duration_minutes=duration_minutes,
        durations=DURATIONS,
        zones=catalog.list_zones(session),
        open_sessions=open_sessions,
        ended=ended,
        wallets=own_wallets,
        map_zones=_map_data(session),
        map_tiles=MapSettings().map_tiles,
        now=datetime.now(UTC),
    )


@page_router.get("/parking/sessions/{session_id}")
def receipt_page(session_id: str, page: SignedInPage, session: DbSession) -> HTMLResponse:
    """A session's receipt."""
    who = page.require(Role.CUSTOMER, Role.OPERATOR, Role.ADMIN)
    try:
        receipt = sessions.receipt(session, who, session_id)
    except SessionNotFound:
        return page.render("parking/receipt.html", status_code=404, receipt=None)
    return page.render("parking/receipt.html", receipt=receipt)


def _attendant_page(
    page: SignedInPage,
    session: DbSession,
    *,
    plate: str = "",
    zone_code: str = "",
    lookup: enforcement.Lookup | None = None,
    problem: str | None = None,
    recorded: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    who = page.require(Role.OPERATOR)
    assert who.merchant_id is not None
    own_zones = [z for z, _, _ in catalog.list_zones(session) if z.merchant_id == who.merchant_id]
    return page.render(
        "parking/attendant.html",
        status_code=status_code,
        plate=plate,
        zone_code=zone_code,
        zones=own_zones,
        lookup=lookup,
        problem=problem,
        recorded=recorded,
        kinds=VIOLATION_KINDS,
        overstays=enforcement.list_overstays(session, who, limit=50),
        violations=enforcement.list_violations(session, who, limit=10, starting_after=None).items,
        now=datetime.now(UTC),
    )


@page_router.get("/parking/attendant")
def attendant_page(
    page: SignedInPage,
    session: DbSession,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    zone_code: Annotated[str | None, Query(max_length=32)] = None,
    recorded: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Look a plate up in the operator's zones, record a violation, see the unpaid overstays."""
    who = page.require(Role.OPERATOR)
    lookup, problem = None, None
    if plate:
        try:
            lookup = enforcement.lookup_plate(session, who, plate, zone_code=zone_code or None)
        except HanoiPayError as error:
            invalid = page.gettext("That is not a Vietnamese licence plate; write it like 30A-123.45.")
            problem = invalid if error.code == "invalid_plate" else error.detail
    found_zone = lookup.zone_code if lookup is not None and lookup.zone_code else ""
    return _attendant_page(
        page,
        session,
        plate=plate or "",
        zone_code=zone_code or found_zone,
        lookup=lookup,
        problem=problem,
        recorded=recorded,
    )


@page_router.post("/parking/attendant/violations", response_model=None)
def record_violation(
    page: SignedInPage,
    session: DbSession,
    plate: Annotated[str, Form(min_length=1, max_length=20)],
    zone_code: Annotated[str, Form(min_length=1, max_length=32)],
    kind: Annotated[str, Form(max_length=32)],
    photo_ref: Annotated[str, Form(min_length=1, max_length=500)],
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record a violation with its photo reference (refused for a plate whose session is paid)."""
    who = page.require(Role.OPERATOR)
    if kind not in VIOLATION_KINDS:
        kind = "other"
    try:
        with session.begin_nested():
            violation = enforcement.record_violation(
                session,
                who,
                plate=plate,
                zone_code=zone_code,
                kind=kind,
                photo_ref=photo_ref,
                note=note or None,
            )
    except HanoiPayError as error:
        messages = {
            "session_paid": page.gettext("This plate has a paid session here: no violation was recorded."),
            "invalid_plate": page.gettext(
                "That is not a Vietnamese licence plate; write it like 30A-123.45."
            ),
        }
        return _attendant_page(
            page,
            session,
            plate=plate,
            zone_code=zone_code,
            problem=messages.get(error.code, error.detail),
            status_code=error.status,
        )
    return page.redirect(f"/parking/attendant?recorded={violation.id}")
