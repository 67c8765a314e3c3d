"""Tariffs in force and binding quotes: the price a driver is shown is the price a session charges."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from hanoipay.localtime import HANOI
from parking.exceptions import DurationOutOfRange, NoTariff, SpotNotFound, SpotOutOfService, SpotTaken
from parking.models import Quote, Spot, SpotState, TariffVersion, Zone, ZoneTariff
from parking.service.catalog import get_zone
from parking.tariffs import Priced, TariffRules, price_stay

QUOTE_MINUTES = 10


# A version's rules never change once loaded, and a version id is never reused: parsed once per process,
# by id (a search prices ten zones; parsing their rules again was most of its Python).
_parsed_rules: dict[str, TariffRules] = {}
_MAX_PARSED = 4096


def rules_of(version: TariffVersion) -> TariffRules:
    """The version's rules, parsed once per process."""
    rules = _parsed_rules.get(version.id)
    if rules is None:
        if len(_parsed_rules) >= _MAX_PARSED:
            _parsed_rules.clear()
        rules = _parsed_rules[version.id] = TariffRules.model_validate(version.rules)
    return rules


def versions_in_force(
    session: Session, zone_ids: list[str], vehicle_type: str, at: datetime
) -> dict[str, TariffVersion]:
    """The tariff version each zone charges the vehicle type for a stay starting at `at`."""
    day = at.astimezone(HANOI).date()
    rows = session.execute(
        select(ZoneTariff.zone_id, TariffVersion)
        .join(TariffVersion, TariffVersion.tariff_id == ZoneTariff.tariff_id)
        .where(
            ZoneTariff.zone_id.in_(zone_ids),
            ZoneTariff.vehicle_type == vehicle_type,
            TariffVersion.effective_from <= day,
            (TariffVersion.effective_to.is_(None)) | (TariffVersion.effective_to >= day),
        )
    ).all()
    return {zone_id: version for zone_id, version in rows}


def version_in_force(session: Session, zone: Zone, vehicle_type: str, at: datetime) -> TariffVersion:
    """The tariff version in force for the zone and vehicle type at `at`, or NoTariff."""
    version = versions_in_force(session, [zone.id], vehicle_type, at).get(zone.id)
    if version is None:
        raise NoTariff(
            f"Zone {zone.code} has no {vehicle_type} tariff in force on {at.astimezone(HANOI).date()}."
        )
    return version


def price(version: TariffVersion, starts_at: datetime, minutes: int) -> Priced:
    """The price of a stay under a tariff version."""
    return price_stay(rules_of(version), starts_at, minutes)


def check_duration(zone: Zone, minutes: int | None) -> int:
    """The minutes a stay covers (the zone's maximum for an open-ended one), or DurationOutOfRange."""
    if minutes is None:
        return zone.max_duration_minutes
    if not 1 <= minutes <= zone.max_duration_minutes:
        raise DurationOutOfRange(
            f"Zone {zone.code} takes stays of 1 to {zone.max_duration_minutes} minutes, not {minutes}."
        )
    return minutes


def create_quote(
    session: Session,
    who: Principal,
    *,
    zone_code: str,
    vehicle_type: str,
    duration_minutes: int | None,
    spot_id: str | None = None,
    now: datetime | None = None,
) -> tuple[Quote, Priced]:
    """A binding quote for parking from now: the amount, the tariff version, and when the offer ends.

    An open-ended stay is quoted (and held) at the price of the zone's longest stay.
    """
    now = now or datetime.now(UTC)
    zone = get_zone(session, zone_code)
    minutes = check_duration(zone, duration_minutes)
    if spot_id is not None:
        spot = session.get(Spot, spot_id)
        if spot is None or spot.zone_id != zone.id or spot.vehicle_type != vehicle_type:
            raise SpotNotFound(f"No {vehicle_type} spot {spot_id} in zone {zone.code}.")
        if spot.state == SpotState.OUT_OF_SERVICE:
            raise SpotOutOfService(f"Spot {spot.code} of {zone.code} is out of service.")
        if spot.state != SpotState.FREE:
            raise SpotTaken(f"Spot {spot.code} of {zone.code} is taken.")
    version = version_in_force(session, zone, vehicle_type, now)
    priced = price(version, now, minutes)
    quote = Quote(
        id=new_id("pq"),
        driver_id=who.id,
        merchant_id=zone.merchant_id,
        zone_id=zone.id,
        zone_code=zone.code,
        spot_id=spot_id,
        vehicle_type=vehicle_type,
        tariff_version_id=version.id,
        starts_at=now,
        duration_minutes=duration_minutes,
        minutes=minutes,
        reminder_minutes=zone.reminder_minutes,
        amount=priced.amount,
        currency="VND",
        expires_at=now + timedelta(minutes=QUOTE_MINUTES),
    )
    session.add(quote)
    session.flush()
    return quote, priced
