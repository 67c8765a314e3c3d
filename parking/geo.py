"""Great-circle distance on a spherical Earth, bounding boxes around a point, points along a line."""

import math
from itertools import pairwise

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG), the same in Python and in the SQL search


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The haversine distance in metres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) holding every point within `radius_m`, a little generously."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.001
    lat_min, lat_max = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    if lat_max >= 89.9 or lat_min <= -89.9:
        return lat_min, lat_max, -180.0, 180.0
    widest = max(abs(lat_min), abs(lat_max))
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * math.cos(math.radians(widest)))) * 1.001
    if dlon >= 180:
        return lat_min, lat_max, -180.0, 180.0
    return lat_min, lat_max, lon - dlon, lon + dlon


def points_along(
    line: list[tuple[float, float]], count: int, offset: float = 0.5
) -> list[tuple[float, float]]:
    """`count` points spread evenly along a polyline of (lat, lon), by straight-line interpolation."""
    if count <= 0:
        return []
    if len(line) == 1:
        return [line[0]] * count
    lengths = [math.dist(a, b) for a, b in pairwise(line)]
    total = sum(lengths) or 1.0
    points = []
    for i in range(count):
        target = total * (i + offset) / count
        for (a, b), length in zip(pairwise(line), lengths, strict=True):
            if target <= length or (a, b) == (line[-2], line[-1]):
                t = min(1.0, target / length) if length else 0.0
                points.append((round(a[0] + (b[0] - a[0]) * t, 7), round(a[1] + (b[1] - a[1]) * t, 7)))
                break
            target -= length
    return points
