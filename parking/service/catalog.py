"""Zones, spots and tariffs: loading an operator's data file, reading zones, changing a spot's state."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role, RoleNotAllowed
from hanoipay.ids import new_id
from merchants.service.onboarding import merchant_kind
from parking.exceptions import (
    InvalidTariffFile,
    SpotNotFound,
    TariffVersionImmutable,
    ZoneNotFound,
    ZoneNotOwned,
)
from parking.geo import points_along
from parking.loader import ParkingData, TariffSpec, VersionSpec, ZoneSpec, version_overlaps
from parking.models import (
    OPEN_STATUSES,
    ParkingSession,
    Spot,
    SpotState,
    Tariff,
    TariffVersion,
    Zone,
    ZoneTariff,
)
from payments.merchants import get_merchant


@dataclass(frozen=True)
class LoadSummary:
    """What a load wrote."""

    tariffs: int
    versions_added: int
    zones: int
    spots_added: int


def street_key(street: str) -> str:
    """A street name folded for matching: lower case, single spaces (diacritics kept: they change names)."""
    return " ".join(street.lower().split())


def require_operator(who: Principal, merchant_id: str) -> None:
    """Refuse unless the caller is the operator's staff, its API key, or an admin."""
    if not (who.has(Role.ADMIN) or (who.merchant_id == merchant_id and not who.has(Role.VENDOR))):
        raise RoleNotAllowed("Only the operator's staff (or an admin) may do this.")


def load_data(session: Session, who: Principal, data: ParkingData, merchant_id: str) -> LoadSummary:
    """Create or update the operator's tariffs, zones and spots from a checked data file, all or nothing."""
    require_operator(who, merchant_id)
    get_merchant(session, merchant_id)
    kind = merchant_kind(session, merchant_id)
    if kind != "parking_operator":
        raise InvalidTariffFile(f"Merchant {merchant_id} is a {kind}, not a parking_operator.")
    tariffs: dict[str, Tariff] = {}
    added = 0
    for index, spec in enumerate(data.tariffs):
        tariff, new_versions = _upsert_tariff(session, merchant_id, spec, index)
        tariffs[spec.code] = tariff
        added += new_versions
    spots = 0
    for index, zone_spec in enumerate(data.zones):
        spots += _upsert_zone(session, merchant_id, zone_spec, tariffs, index)
    session.flush()
    return LoadSummary(len(tariffs), added, len(data.zones), spots)


def _upsert_tariff(session: Session, merchant_id: str, spec: TariffSpec, index: int) -> tuple[Tariff, int]:
    tariff = session.scalar(
        select(Tariff).where(Tariff.merchant_id == merchant_id, Tariff.code == spec.code).with_for_update()
    )
    if tariff is None:
        tariff = Tariff(
            id=new_id("trf"), merchant_id=merchant_id, code=spec.code, vehicle_type=spec.vehicle_type
        )
        session.add(tariff)
    elif tariff.vehicle_type != spec.vehicle_type:
        raise TariffVersionImmutable(f"tariffs[{index}]: tariff {spec.code} is for {tariff.vehicle_type}.")
    tariff.name = spec.name
    session.flush()
    existing = {
        v.effective_from: v
        for v in session.scalars(select(TariffVersion).where(TariffVersion.tariff_id == tariff.id))
    }
    added = 0
    for v, version in enumerate(spec.versions):
        stored = existing.get(version.effective_from)
        if stored is None:
            stored = TariffVersion(
                id=new_id("trv"),
                tariff_id=tariff.id,
                decision_ref=version.decision,
                effective_from=version.effective_from,
                effective_to=version.effective_to,
                rules=version.rules(),
                sample=version.sample,
            )
            session.add(stored)
            existing[version.effective_from] = stored
            added += 1
        elif stored.rules != version.rules() or stored.decision_ref != version.decision:
            raise TariffVersionImmutable(
                f"tariffs[{index}].versions[{v}]: the version of {spec.code} from {version.effective_from} "
                "is already loaded with other prices; a new decision is a new version with its own dates."
            )
        else:
            stored.effective_to, stored.sample = version.effective_to, version.sample
    everything = [_as_spec(v) for v in existing.values()]
    overlaps = version_overlaps(everything, ("versions",))
    if overlaps:
        raise InvalidTariffFile(
            f"tariffs[{index}] ({spec.code}) with the versions already loaded: {overlaps[0][1]}"
        )
    return tariff, added


def _as_spec(version: TariffVersion) -> VersionSpec:
    return VersionSpec.model_validate(
        {
            **version.rules,
            "decision": version.decision_ref,
            "effective_from": version.effective_from,
            "effective_to": version.effective_to,
        }
    )


def _upsert_zone(
    session: Session, merchant_id: str, spec: ZoneSpec, tariffs: dict[str, Tariff], index: int
) -> int:
    zone = session.scalar(select(Zone).where(Zone.code == spec.code).with_for_update())
    if zone is None:
        zone = Zone(id=new_id("pz"), merchant_id=merchant_id, code=spec.code)
        session.add(zone)
    elif zone.merchant_id != merchant_id:
        raise ZoneNotOwned(f"zones[{index}]: zone {spec.code} belongs to another operator.")
    zone.name, zone.kind, zone.street, zone.street_key = (
        spec.name,
        spec.kind,
        spec.street,
        street_key(spec.street),
    )
    zone.district, zone.address = spec.district, spec.address
    zone.lat, zone.lon = spec.position
    zone.geometry = spec.geometry.model_dump(mode="json")
    zone.max_duration_minutes, zone.grace_minutes = spec.max_duration_minutes, spec.grace_minutes
    zone.reminder_minutes, zone.unused_time_rule = spec.reminder_minutes, spec.unused_time_rule
    zone.sample = spec.sample
    session.flush()
    for vehicle, code in spec.tariffs.items():
        session.merge(ZoneTariff(zone_id=zone.id, vehicle_type=vehicle, tariff_id=tariffs[code].id))
    return _upsert_spots(session, zone, spec)


def _spot_specs(spec: ZoneSpec) -> list[tuple[str, str, tuple[float, float]]]:
    if isinstance(spec.spots, list):
        return [(s.code, s.vehicle_type, s.position) for s in spec.spots]
    line = list(spec.geometry.coordinates)
    out: list[tuple[str, str, tuple[float, float]]] = []
    for offset, (vehicle, count) in zip((0.25, 0.75), sorted(spec.spots.items()), strict=False):
        prefix = "C" if vehicle == "car" else "M"
        out.extend(
            (f"{prefix}{i + 1:03d}", vehicle, point)
            for i, point in enumerate(points_along(line, count, offset))
        )
    return out


def _upsert_spots(session: Session, zone: Zone, spec: ZoneSpec) -> int:
    existing = {s.code: s for s in session.scalars(select(Spot).where(Spot.zone_id == zone.id))}
    added = 0
    now = datetime.now(UTC)
    for code, vehicle, (lat, lon) in _spot_specs(spec):
        spot = existing.get(code)
        if spot is None:
            session.add(
                Spot(
                    id=new_id("spt"),
                    zone_id=zone.id,
                    code=code,
                    vehicle_type=vehicle,
                    lat=lat,
                    lon=lon,
                    state=SpotState.FREE,
                    state_source="load",
                    state_changed_at=now,
                )
            )
            added += 1
        else:
            spot.vehicle_type, spot.lat, spot.lon = vehicle, lat, lon
    return added


def get_zone(session: Session, code: str) -> Zone:
    """A zone by its code."""
    zone = session.scalar(select(Zone).where(Zone.code == code))
    if zone is None:
        raise ZoneNotFound(f"No zone {code}.")
    return zone


def list_zones(session: Session) -> list[tuple[Zone, dict[str, int], dict[str, int]]]:
    """Every zone with its free and total spots per vehicle type, by code."""
    counts = session.execute(
        select(
            Spot.zone_id,
            Spot.vehicle_type,
            func.count(),
            func.count().filter(Spot.state == SpotState.FREE),
        ).group_by(Spot.zone_id, Spot.vehicle_type)
    ).all()
    free: dict[str, dict[str, int]] = {}
    total: dict[str, dict[str, int]] = {}
    for zone_id, vehicle, count, free_count in counts:
        total.setdefault(zone_id, {})[vehicle] = count
        free.setdefault(zone_id, {})[vehicle] = free_count
    zones = session.scalars(select(Zone).order_by(Zone.code)).all()
    return [(z, free.get(z.id, {}), total.get(z.id, {})) for z in zones]


def set_spot_state(
    session: Session,
    who: Principal,
    spot_id: str,
    *,
    state: SpotState,
    source: str,
    at: datetime | None = None,
) -> tuple[Spot, str | None]:
    """Record what an attendant or a sensor says of a spot; and the open session on it, if any.

    A spot with an open session stays occupied whatever is reported: the session ends only when the
    driver or an attendant ends it, which is when the money is settled.
    """
    spot = session.get(Spot, spot_id, with_for_update=True)
    zone = session.get(Zone, spot.zone_id) if spot is not None else None
    if spot is None or zone is None or not (who.is_staff or who.merchant_id == zone.merchant_id):
        raise SpotNotFound(f"No spot {spot_id}.")
    require_operator(who, zone.merchant_id)
    open_session = session.scalar(
        select(ParkingSession.id).where(
            ParkingSession.spot_id == spot.id, ParkingSession.status.in_(OPEN_STATUSES)
        )
    )
    if open_session is None and spot.state != state:
        spot.state, spot.state_source = state, source
        spot.state_changed_at = at or datetime.now(UTC)
    session.flush()
    return spot, open_session


def zone_spots(session: Session, zone: Zone) -> list[Spot]:
    """The zone's spots, by code."""
    return list(session.scalars(select(Spot).where(Spot.zone_id == zone.id).order_by(Spot.code)))
