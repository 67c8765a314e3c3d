"""Search: the nearest zones with a free spot for the vehicle, their distance, and a price for the stay.

PostgreSQL's `cube` and `earthdistance` extensions exist on the embedded server and on PostgreSQL 15,
but the search does not need them: a B-tree index on (lat, lon) answers a bounding box around the
point, and the exact great-circle (haversine) distance is computed only for the zones inside it. Free
spots are counted per candidate zone, nearest first, from a partial index of free spots, and the query
stops once it has `limit` zones with room.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from parking.exceptions import InvalidSearch
from parking.geo import EARTH_RADIUS_M, bounding_box
from parking.models import TariffVersion
from parking.service.catalog import street_key
from parking.service.quotes import price, versions_in_force
from parking.tariffs import Priced

MAX_RADIUS_M = 5_000
MAX_LIMIT = 50

_DISTANCE = """
    2 * :earth_radius * asin(least(1.0, sqrt(
        power(sin(radians(z.lat - :lat) / 2), 2)
        + cos(radians(:lat)) * cos(radians(z.lat)) * power(sin(radians(z.lon - :lon) / 2), 2))))
"""
_COLUMNS = ", ".join(
    f"z.{c}"
    for c in (
        "id",
        "code",
        "name",
        "street",
        "district",
        "address",
        "lat",
        "lon",
        "merchant_id",
        "max_duration_minutes",
    )
)
_FREE = """
    CROSS JOIN LATERAL (
        SELECT count(*) AS free FROM parking_spot s
        WHERE s.zone_id = z.id AND s.vehicle_type = :vehicle_type AND s.state = 'free'
    ) f
"""
# The f-strings only join the constant fragments above; every value is a bound parameter.
NEAR_SQL = text(
    f"""
    SELECT z.*, f.free FROM (
        SELECT {_COLUMNS}, {_DISTANCE} AS distance_m
        FROM parking_zone z
        WHERE z.lat BETWEEN :lat_min AND :lat_max AND z.lon BETWEEN :lon_min AND :lon_max
          AND z.max_duration_minutes >= :minutes
        ORDER BY distance_m, z.code
    ) z {_FREE}
    WHERE z.distance_m <= :radius AND f.free > 0
    ORDER BY z.distance_m, z.code
    LIMIT :limit
    """  # noqa: S608
)
NAMED_SQL = text(
    f"""
    SELECT {_COLUMNS}, CASE WHEN :has_position THEN {_DISTANCE} END AS distance_m, f.free
    FROM parking_zone z {_FREE}
    WHERE (CAST(:zone_code AS text) IS NULL OR z.code = :zone_code)
      AND (CAST(:street AS text) IS NULL OR strpos(z.street_key, :street) > 0)
      AND z.max_duration_minutes >= :minutes AND f.free > 0
    ORDER BY distance_m NULLS LAST, z.code
    LIMIT :limit
    """  # noqa: S608
)


@dataclass(frozen=True)
class Hit:
    """A zone with room for the vehicle, how far it is, and what the stay would cost there."""

    zone: dict[str, Any]
    distance_m: float | None
    free_spots: int
    version: TariffVersion
    priced: Priced


def search(
    session: Session,
    *,
    vehicle_type: str,
    duration_minutes: int,
    lat: float | None = None,
    lon: float | None = None,
    radius_m: int = 500,
    street: str | None = None,
    zone_code: str | None = None,
    arrival: datetime | None = None,
    limit: int = 10,
) -> list[Hit]:
    """Zones with a free spot, nearest first (or by code, searching by street or zone code alone)."""
    if (lat is None) != (lon is None):
        raise InvalidSearch("Give both lat and lon, or neither.")
    if lat is None and street is None and zone_code is None:
        raise InvalidSearch("Search near a position (lat, lon), or by street or zone_code.")
    arrival = arrival or datetime.now(UTC)
    params: dict[str, Any] = {
        "vehicle_type": vehicle_type,
        "minutes": duration_minutes,
        "limit": limit,
        "earth_radius": EARTH_RADIUS_M,
        "lat": lat or 0.0,
        "lon": lon or 0.0,
    }
    if lat is not None and lon is not None and street is None and zone_code is None:
        lat_min, lat_max, lon_min, lon_max = bounding_box(lat, lon, radius_m)
        params |= {"lat_min": lat_min, "lat_max": lat_max, "lon_min": lon_min, "lon_max": lon_max}
        rows = session.execute(NEAR_SQL, params | {"radius": radius_m}).mappings().all()
    else:
        params |= {
            "has_position": lat is not None,
            "zone_code": zone_code,
            "street": street_key(street) if street else None,
        }
        rows = session.execute(NAMED_SQL, params).mappings().all()
    versions = versions_in_force(session, [r["id"] for r in rows], vehicle_type, arrival)
    hits = []
    for row in rows:
        version = versions.get(row["id"])
        if version is None:
            continue  # the zone has spots of this type but no tariff in force then: nothing to quote
        zone = {k: row[k] for k in ("id", "code", "name", "street", "district", "address", "lat", "lon")}
        distance = row["distance_m"]
        hits.append(
            Hit(
                zone,
                None if distance is None else float(distance),
                int(row["free"]),
                version,
                price(version, arrival, duration_minutes),
            )
        )
    return hits
