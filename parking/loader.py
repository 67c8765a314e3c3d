"""The parking data file (YAML or JSON): parsed with the line of every value, checked whole.

A file with any problem (a typo in a key, overlapping or missing bands, versions of a tariff whose dates
overlap, a zone naming a tariff the file does not define) is refused whole: `InvalidTariffFile` lists
every problem with its path in the document and its line, and nothing is written. The format is
documented in docs/parking.md; `parking/data/hanoi.yaml` is a full example.
"""

import json
import re
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from hanoipay.validation import is_storable
from parking.exceptions import InvalidTariffFile
from parking.models import UnusedTimeRule, VehicleType
from parking.tariffs import TariffRules, band_problems

Path = tuple[str | int, ...]
MAX_BYTES = 2_000_000
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9\-_]{0,31}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
_CLOCK = re.compile(r"^\d{1,2}:\d{2}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperatorSpec(Strict):
    """The operator as a merchant, used only when the loader is asked to create it."""

    name: Text
    fee_bps: StrictInt = Field(ge=0, le=10_000)
    payout_bank_bin: str = Field(pattern=r"^\d{6}$")
    payout_account: str = Field(pattern=r"^[0-9A-Za-z]{1,19}$")
    payout_account_name: str = Field(min_length=1, max_length=100)


class VersionSpec(TariffRules):
    """One version of a tariff: the decision that set it, its dates, and its rules."""

    decision: Text
    effective_from: date
    effective_to: date | None = None
    sample: StrictBool = False
    note: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self

    def rules(self) -> dict[str, Any]:
        """The pricing part, as stored on the version."""
        return TariffRules.model_validate(self.model_dump(include=set(TariffRules.model_fields))).model_dump(
            mode="json", exclude_none=True
        )


class TariffSpec(Strict):
    code: Code
    name: Text
    vehicle_type: VehicleType
    versions: list[VersionSpec] = Field(min_length=1, max_length=50)


class SpotSpec(Strict):
    code: Code
    vehicle_type: VehicleType
    position: tuple[Latitude, Longitude]


class GeometrySpec(Strict):
    """The zone's shape as (lat, lon) points: a street segment (LineString) or a lot (Polygon ring)."""

    type: Literal["LineString", "Polygon"]
    coordinates: list[tuple[Latitude, Longitude]] = Field(min_length=2, max_length=500)


class ZoneSpec(Strict):
    code: Code
    name: Text
    kind: Literal["street", "lot"] = "street"
    street: Text
    district: Text
    address: Text
    position: tuple[Latitude, Longitude]
    geometry: GeometrySpec
    max_duration_minutes: StrictInt = Field(default=480, ge=15, le=24 * 60)
    grace_minutes: StrictInt = Field(default=5, ge=0, le=60)
    reminder_minutes: StrictInt = Field(default=10, ge=1, le=120)
    unused_time_rule: UnusedTimeRule = UnusedTimeRule.RELEASE
    tariffs: dict[VehicleType, Code] = Field(min_length=1)
    spots: dict[VehicleType, Annotated[StrictInt, Field(ge=0, le=2_000)]] | list[SpotSpec] = Field(
        description="How many spots of each vehicle type, placed along the geometry, or each spot"
    )
    sample: StrictBool = False


class ParkingData(Strict):
    """A parking data file: an operator's tariffs and zones."""

    format: Literal[1] = 1
    operator: OperatorSpec | None = None
    tariffs: list[TariffSpec] = Field(default_factory=list, max_length=500)
    zones: list[ZoneSpec] = Field(default_factory=list, max_length=5_000)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '(document)'}: {self.message}"


def render_path(path: Path) -> str:
    """A path like `tariffs[0].versions[1].bands[2]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Lines:
    """The line of every value in the document, looked up by the nearest enclosing path."""

    def __init__(self) -> None:
        self.by_path: dict[Path, int] = {}

    def line(self, path: Path) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.by_path:
                return self.by_path[path[:end]]
        return None


def _to_python(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: _Lines) -> Any:
    lines.by_path[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in out:
                raise _Refused(
                    Problem(render_path(path), key_node.start_mark.line + 1, f"{key!r} appears twice")
                )
            out[key] = _to_python(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    if node.tag.endswith(":int") and _CLOCK.match(str(node.value)):
        return node.value  # YAML 1.1 would read 06:00 as the base-60 number 360
    return loader.construct_object(node, deep=True)


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def parse(text: str) -> tuple[Any, _Lines]:
    """The document and the line of each of its values; YAML and JSON alike."""
    lines = _Lines()
    if len(text) > MAX_BYTES:
        raise InvalidTariffFile(f"The file is larger than {MAX_BYTES} bytes.")
    if "\x00" in text:
        raise InvalidTariffFile("The file holds a NUL character.")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = _to_python(loader, node, (), lines) if node is not None else {}
    except _Refused as refused:
        raise _invalid([refused.problem]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        try:  # a JSON file PyYAML cannot read (tabs) is still JSON; only its lines are lost
            return json.loads(text), lines
        except ValueError:
            pass
        line = mark.line + 1 if mark is not None else None
        raise _invalid(
            [Problem("", line, f"not valid YAML or JSON: {getattr(error, 'problem', error)}")]
        ) from None
    finally:
        loader.dispose()
    return document, lines


def _invalid(problems: list[Problem]) -> InvalidTariffFile:
    shown = problems[:20]
    more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
    detail = "The parking data was refused whole, nothing was loaded: " + "; ".join(map(str, shown)) + more
    return InvalidTariffFile(
        detail, problems=[{"path": p.path, "line": p.line, "message": p.message} for p in shown]
    )


def check(text: str) -> ParkingData:
    """The parsed, fully checked data of a parking file, or InvalidTariffFile naming each fault and line."""
    raw, lines = parse(text)
    unstorable = [Problem(render_path(p), lines.line(p), m) for p, m in _unstorable(raw, ())]
    if unstorable:
        raise _invalid(unstorable)
    try:
        data = ParkingData.model_validate(raw)
    except ValidationError as error:
        problems: list[Problem] = []
        for e in error.errors(include_url=False):
            # Drop the names pydantic gives the branches of a union (`dict[...]`, `list[SpotSpec]`).
            path = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
            problem = Problem(render_path(path), lines.line(path), e["msg"])
            if problem not in problems:
                problems.append(problem)
        raise _invalid(problems) from None
    problems = _semantic_problems(data, lines)
    if problems:
        raise _invalid(problems)
    return data


def _unstorable(value: Any, path: Path) -> list[tuple[Path, str]]:
    """Every string PostgreSQL could not store (a NUL, an unpaired surrogate), by path."""
    if isinstance(value, str):
        return [] if is_storable(value) else [(path, "holds a NUL or an unpaired surrogate character")]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _unstorable(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _unstorable(item, (*path, i))]
    return []


def _semantic_problems(data: ParkingData, lines: _Lines) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: Path, message: str) -> None:
        problems.append(Problem(render_path(path), lines.line(path), message))

    tariffs: dict[str, TariffSpec] = {}
    for t, tariff in enumerate(data.tariffs):
        if tariff.code in tariffs:
            add(("tariffs", t, "code"), f"tariff {tariff.code} is defined twice")
        tariffs[tariff.code] = tariff
        for v, version in enumerate(tariff.versions):
            for b, message in band_problems(version.bands):
                add(("tariffs", t, "versions", v, "bands", b), message)
        problems.extend(
            Problem(render_path(p), lines.line(p), m)
            for p, m in version_overlaps(tariff.versions, ("tariffs", t, "versions"))
        )
    seen_zones: set[str] = set()
    for z, zone in enumerate(data.zones):
        if zone.code in seen_zones:
            add(("zones", z, "code"), f"zone {zone.code} is defined twice")
        seen_zones.add(zone.code)
        for vehicle, code in zone.tariffs.items():
            if code not in tariffs:
                add(("zones", z, "tariffs", vehicle.value), f"no tariff {code} in this file")
            elif tariffs[code].vehicle_type != vehicle:
                add(
                    ("zones", z, "tariffs", vehicle.value),
                    f"tariff {code} is for {tariffs[code].vehicle_type}",
                )
        if isinstance(zone.spots, list):
            codes = [s.code for s in zone.spots]
            for s, spot in enumerate(zone.spots):
                if codes.index(spot.code) != s:
                    add(("zones", z, "spots", s, "code"), f"spot {spot.code} is listed twice")
        for vehicle in _spot_types(zone):
            if vehicle not in zone.tariffs:
                add(("zones", z, "tariffs"), f"the zone has {vehicle} spots but no {vehicle} tariff")
    return problems


def _spot_types(zone: ZoneSpec) -> set[VehicleType]:
    if isinstance(zone.spots, list):
        return {s.vehicle_type for s in zone.spots}
    return {vehicle for vehicle, count in zone.spots.items() if count > 0}


def version_overlaps(versions: list[VersionSpec], base: Path) -> list[tuple[Path, str]]:
    """(path, message) for each version whose dates overlap an earlier-starting one."""
    order = sorted(range(len(versions)), key=lambda i: versions[i].effective_from)
    found = []
    for before, after in pairwise(order):
        earlier, later = versions[before], versions[after]
        if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
            found.append(
                (
                    (*base, after, "effective_from"),
                    f"version from {later.effective_from} overlaps the version from "
                    f"{earlier.effective_from} (give that one an effective_to before {later.effective_from})",
                )
            )
    return found
