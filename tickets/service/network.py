"""The transit network: GTFS import (agency, routes, stops) with GTFS-Fares v2 and the platform's caps.

A feed is a set of CSV files (a zip, or a directory such as the sample Hanoi feed shipped in
`tickets/feeds/hanoi/`). Importing one checks every file it needs, stores it, and makes it the active
feed in the same transaction: a feed with a problem is refused whole (422 `invalid_feed`, naming the
file, the line and the column) and the feed before it stays active.
"""

import csv
import io
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from payments.merchants import get_merchant
from tickets.exceptions import InvalidFeed, NoActiveFeed
from tickets.fares import FareModel
from tickets.models import (
    TransitAgency,
    TransitFareProduct,
    TransitFeed,
    TransitRiderCategory,
    TransitRoute,
    TransitStop,
)

SAMPLE_FEED = Path(__file__).resolve().parent.parent / "feeds" / "hanoi"
REQUIRED = {
    "agency": ("agency_id", "agency_name", "agency_url", "agency_timezone"),
    "routes": ("route_id", "route_type"),
    "stops": ("stop_id",),
    "rider_categories": ("rider_category_id", "rider_category_name"),
    "fare_products": ("fare_product_id", "amount", "currency"),
    "fare_leg_rules": ("fare_product_id",),
}
OPTIONAL = {
    "networks": ("network_id",),
    "areas": ("area_id",),
    "stop_areas": ("area_id", "stop_id"),
    "fare_media": ("fare_media_id", "fare_media_type"),
    "fare_transfer_rules": ("fare_transfer_type",),
    "timeframes": ("timeframe_group_id",),
    "hanoipay_caps": ("fare_product_id", "validity"),
    "trips": ("route_id", "trip_id"),
}
MAX_ROWS = 200_000
MAX_FEED_BYTES = 50 * 1024 * 1024
Tables = dict[str, list[dict[str, str]]]


def read_directory(path: Path) -> dict[str, bytes]:
    """The feed files of a directory, by name without `.txt`."""
    return {file.stem: file.read_bytes() for file in sorted(path.glob("*.txt"))}


def read_zip(data: bytes) -> dict[str, bytes]:
    """The feed files of a zip archive, by name without `.txt`; InvalidFeed if it is not one."""
    if len(data) > MAX_FEED_BYTES:
        raise InvalidFeed(f"A feed is at most {MAX_FEED_BYTES} bytes.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = {}
            for info in archive.infolist():
                name = Path(info.filename).name
                if name.endswith(".txt") and info.file_size <= MAX_FEED_BYTES:
                    files[name[:-4]] = archive.read(info)
            return files
    except (zipfile.BadZipFile, ValueError):
        raise InvalidFeed("The feed is not a readable zip archive of GTFS .txt files.") from None


def parse_feed(files: Mapping[str, bytes]) -> Tables:
    """Each known file as rows of column → value, checked for the columns GTFS requires."""
    tables: Tables = {}
    for name, required in {**REQUIRED, **OPTIONAL}.items():
        if name not in files:
            if name in REQUIRED:
                raise InvalidFeed(f"The feed has no {name}.txt.")
            continue
        tables[name] = _rows(name, files[name], required)
    _check_references(tables)
    return tables


def _rows(name: str, data: bytes, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidFeed(f"{name}.txt is not UTF-8.") from None
    if "\x00" in text:
        raise InvalidFeed(f"{name}.txt contains a NUL character.")
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise InvalidFeed(f"{name}.txt lacks the column {missing[0]}.")
    rows: list[dict[str, str]] = []
    try:
        for line, row in enumerate(reader, start=2):
            if len(rows) >= MAX_ROWS:
                raise InvalidFeed(f"{name}.txt has more than {MAX_ROWS} rows.")
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for column in required:
                if not clean.get(column):
                    raise InvalidFeed(f"{name}.txt line {line}: {column} is empty.")
            rows.append(clean)
    except csv.Error as error:
        raise InvalidFeed(f"{name}.txt is not valid CSV: {error}.") from None
    return rows


def _check_references(tables: Tables) -> None:
    products = {row["fare_product_id"] for row in tables["fare_products"]}
    for row in tables["fare_products"]:
        try:
            int(row["amount"])
        except ValueError:
            raise InvalidFeed(
                f"fare_products.txt: {row['fare_product_id']} amount {row['amount']!r} is not whole units."
            ) from None
    categories = {row["rider_category_id"] for row in tables["rider_categories"]}
    if len(categories) > 255:
        raise InvalidFeed("rider_categories.txt: at most 255 categories fit a credential.")
    if sum(row.get("is_default_fare_category") == "1" for row in tables["rider_categories"]) != 1:
        raise InvalidFeed("rider_categories.txt needs exactly one is_default_fare_category = 1.")
    for row in tables["fare_products"]:
        if row.get("rider_category_id") and row["rider_category_id"] not in categories:
            raise InvalidFeed(
                f"fare_products.txt names an unknown rider category {row['rider_category_id']}."
            )
    for file in ("fare_leg_rules", "fare_transfer_rules", "hanoipay_caps"):
        for row in tables.get(file, []):
            if row.get("fare_product_id") and row["fare_product_id"] not in products:
                raise InvalidFeed(f"{file}.txt names an unknown fare product {row['fare_product_id']}.")
    for row in tables.get("hanoipay_caps", []):
        if row["validity"] not in ("day", "month"):
            raise InvalidFeed(f"hanoipay_caps.txt: validity must be day or month, not {row['validity']!r}.")
    agencies = {row["agency_id"] for row in tables["agency"]}
    for row in tables["routes"]:
        if row.get("agency_id", "") and row["agency_id"] not in agencies:
            raise InvalidFeed(f"routes.txt: route {row['route_id']} names an unknown agency.")
        if not row["route_type"].isdigit():
            raise InvalidFeed(f"routes.txt: route {row['route_id']} has a route_type that is not a number.")


def import_feed(
    session: Session, who: Principal, files: Mapping[str, bytes], *, name: str, merchant_id: str
) -> TransitFeed:
    """Check and store a feed, paid to `merchant_id`, and make it the active one (admin)."""
    who.require(Role.ADMIN)
    merchant = get_merchant(session, merchant_id)
    tables = parse_feed(files)
    currencies = {row["currency"] for row in tables["fare_products"]}
    if currencies != {merchant.currency}:
        raise InvalidFeed(
            f"The feed's fares are in {sorted(currencies)}; the merchant is paid in {merchant.currency}."
        )
    fares = {
        file: tables.get(file, [])
        for file in (
            "fare_media",
            "fare_leg_rules",
            "fare_transfer_rules",
            "timeframes",
            "networks",
            "areas",
            "stop_areas",
            "hanoipay_caps",
        )
    }
    session.execute(update(TransitFeed).where(TransitFeed.active).values(active=False))
    feed = TransitFeed(
        id=new_id("feed"),
        name=name,
        merchant_id=merchant.id,
        currency=merchant.currency,
        active=True,
        fares=fares,
    )
    session.add(feed)
    session.flush()
    _store(session, feed.id, tables)
    return feed


def _store(session: Session, feed_id: str, tables: Tables) -> None:
    agency_tz = {row["agency_id"]: row["agency_timezone"] for row in tables["agency"]}
    session.execute(
        insert(TransitAgency),
        [
            {
                "feed_id": feed_id,
                "agency_id": row["agency_id"],
                "name": row["agency_name"],
                "url": row["agency_url"],
                "timezone": agency_tz[row["agency_id"]],
            }
            for row in tables["agency"]
        ],
    )
    only_agency = next(iter(agency_tz))
    session.execute(
        insert(TransitRoute),
        [
            {
                "feed_id": feed_id,
                "route_id": row["route_id"],
                "agency_id": row.get("agency_id") or only_agency,
                "short_name": row.get("route_short_name", ""),
                "long_name": row.get("route_long_name", ""),
                "route_type": int(row["route_type"]),
                "network_id": row.get("network_id") or None,
            }
            for row in tables["routes"]
        ],
    )
    session.execute(
        insert(TransitStop),
        [
            {
                "feed_id": feed_id,
                "stop_id": row["stop_id"],
                "name": row.get("stop_name", ""),
                "lat": _float(row.get("stop_lat")),
                "lon": _float(row.get("stop_lon")),
            }
            for row in tables["stops"]
        ],
    )
    session.execute(
        insert(TransitRiderCategory),
        [
            {
                "feed_id": feed_id,
                "category_id": row["rider_category_id"],
                "name": row["rider_category_name"],
                "code": code,
                "is_default": row.get("is_default_fare_category") == "1",
                "eligibility_url": row.get("eligibility_url") or None,
            }
            for code, row in enumerate(tables["rider_categories"])
        ],
    )
    seen: set[tuple[str, str]] = set()
    products = []
    for row in tables["fare_products"]:
        key = (row["fare_product_id"], row.get("rider_category_id", ""))
        if key in seen:
            raise InvalidFeed(f"fare_products.txt repeats {key[0]} for rider category {key[1] or '(any)'}.")
        seen.add(key)
        products.append(
            {
                "feed_id": feed_id,
                "product_id": key[0],
                "category_id": key[1],
                "name": row.get("fare_product_name", key[0]),
                "amount": int(row["amount"]),
                "currency": row["currency"],
                "fare_media_id": row.get("fare_media_id") or None,
            }
        )
    session.execute(insert(TransitFareProduct), products)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        raise InvalidFeed(f"A stop coordinate {value!r} is not a number.") from None


def active_feed(session: Session) -> TransitFeed:
    """The feed that prices trips now; 409 no_active_feed before any import."""
    feed = session.scalar(select(TransitFeed).where(TransitFeed.active))
    if feed is None:
        raise NoActiveFeed("No transit feed has been imported yet.")
    return feed


def fare_model(session: Session) -> FareModel:
    """The active feed's fare model (built once per feed and process)."""
    feed = active_feed(session)
    return _model_for(feed.id, session)


def _model_for(feed_id: str, session: Session) -> FareModel:
    cached = _models.get(feed_id)
    if cached is not None:
        return cached
    feed = session.get(TransitFeed, feed_id)
    assert feed is not None
    categories = [
        {"category_id": c.category_id, "is_default": c.is_default, "code": c.code}
        for c in session.scalars(select(TransitRiderCategory).where(TransitRiderCategory.feed_id == feed_id))
    ]
    products = [
        {"product_id": p.product_id, "category_id": p.category_id, "amount": p.amount, "name": p.name}
        for p in session.scalars(select(TransitFareProduct).where(TransitFareProduct.feed_id == feed_id))
    ]
    routes = dict(
        session.execute(
            select(TransitRoute.route_id, TransitRoute.network_id).where(TransitRoute.feed_id == feed_id)
        ).all()
    )
    model = FareModel.from_tables(
        currency=feed.currency, categories=categories, products=products, routes=routes, fares=feed.fares
    )
    _models[feed_id] = model
    return model


_models: dict[str, FareModel] = {}


def model_from_files(files: Mapping[str, bytes], currency: str = "VND") -> FareModel:
    """A fare model straight from feed files, without storing them (fare tables, tools)."""
    tables = parse_feed(files)
    return FareModel.from_tables(
        currency=currency,
        categories=[
            {
                "category_id": row["rider_category_id"],
                "is_default": row.get("is_default_fare_category") == "1",
                "code": code,
            }
            for code, row in enumerate(tables["rider_categories"])
        ],
        products=[
            {
                "product_id": row["fare_product_id"],
                "category_id": row.get("rider_category_id", ""),
                "amount": int(row["amount"]),
                "name": row.get("fare_product_name", row["fare_product_id"]),
            }
            for row in tables["fare_products"]
        ],
        routes={row["route_id"]: row.get("network_id") or None for row in tables["routes"]},
        fares={
            name: tables.get(name, [])
            for name in ("fare_leg_rules", "fare_transfer_rules", "timeframes", "stop_areas", "hanoipay_caps")
        },
    )


@lru_cache(maxsize=1)
def sample_feed_files() -> dict[str, bytes]:
    """The sample Hanoi feed shipped with the package."""
    return read_directory(SAMPLE_FEED)


def feed_summary(session: Session, feed: TransitFeed) -> dict[str, Any]:
    """Counts of what a feed holds, for the API."""

    def count(model: Any) -> int:
        return len(session.scalars(select(model).where(model.feed_id == feed.id)).all())

    return {
        "agencies": count(TransitAgency),
        "routes": count(TransitRoute),
        "stops": count(TransitStop),
        "rider_categories": count(TransitRiderCategory),
        "fare_products": count(TransitFareProduct),
        "fare_leg_rules": len(feed.fares.get("fare_leg_rules", [])),
        "fare_transfer_rules": len(feed.fares.get("fare_transfer_rules", [])),
        "caps": len(feed.fares.get("hanoipay_caps", [])),
    }
