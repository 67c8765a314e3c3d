"""Pricing: turn a card's accepted taps into priced trips and a day total, as soon as the taps arrive.

`price_card_days` re-prices whole service days, never single taps, so a late tap (uploaded hours
later by a validator that was offline) lands in its place: the day is priced again from all its taps,
and, because a month's caps carry from day to day, so is every later day of that month the card rode.
A day already charged then differs from what was charged, and the charge job adjusts it.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hanoipay.ids import new_id
from tickets.fares import FareModel, Leg, PricedLeg, price_day
from tickets.service.days import local_time_of, month_end, month_start
from tickets.service.network import fare_model

EXIT_WITHIN = timedelta(hours=3)
CHUNK = 5_000
TRIP_COLUMNS = (
    "id",
    "card_id",
    "service_day",
    "tap_id",
    "exit_tap_id",
    "route_id",
    "from_stop_id",
    "to_stop_id",
    "started_at",
    "product_id",
    "base_amount",
    "amount",
    "currency",
    "reasons",
)


@dataclass(frozen=True)
class _Card:
    category: str
    passes: list[tuple[str, date, date]]


def price_card_days(
    session: Session, keys: Iterable[tuple[str, date]], *, now: datetime | None = None
) -> int:
    """Price again the given (card, service day) pairs and the later days of their months; how many days."""
    starts: dict[tuple[str, date], date] = {}
    for card_id, day in keys:
        month = month_start(day)
        starts[(card_id, month)] = min(day, starts.get((card_id, month), day))
    ordered = sorted(starts.items())
    priced = 0
    for begin in range(0, len(ordered), CHUNK):
        priced += _price_chunk(session, dict(ordered[begin : begin + CHUNK]), now or datetime.now(UTC))
    return priced


def _price_chunk(session: Session, starts: dict[tuple[str, date], date], now: datetime) -> int:
    model = fare_model(session)
    cards = sorted({card for card, _ in starts})
    low = min(starts.values())
    high = max(month_end(month) for _, month in starts)
    taps = _taps(session, cards, low, high, starts)
    if not taps:
        return 0
    info = _cards(session, cards, low, high)
    caps_before = _caps_before(session, starts)
    trips: list[str] = []
    days: list[dict[str, Any]] = []
    by_card_month: dict[tuple[str, date], list[date]] = defaultdict(list)
    for card_id, day in taps:
        by_card_month[(card_id, month_start(day))].append(day)
    for (card_id, month), month_days in by_card_month.items():
        card = info.get(card_id)
        if card is None:
            continue
        month_caps = dict(caps_before.get((card_id, month), {}))
        for day in sorted(month_days):
            passes = frozenset(p for p, first, last in card.passes if first <= day <= last)
            legs = _legs(taps[(card_id, day)])
            result, month_caps, day_caps = price_day(
                model, card.category, legs, passes=passes, month_caps=month_caps
            )
            trips.extend(_trip_row(card_id, day, leg, model) for leg in result)
            days.append(
                {
                    "card_id": card_id,
                    "service_day": day,
                    "trips": len(result),
                    "total": sum(leg.amount for leg in result),
                    "caps": json.dumps({"month": month_caps, "day": day_caps}),
                }
            )
    _write(session, trips, days, model.currency, now)
    return len(days)


def _taps(
    session: Session, cards: list[str], low: date, high: date, starts: dict[tuple[str, date], date]
) -> dict[tuple[str, date], list[tuple[Any, ...]]]:
    rows = session.execute(
        text(
            """
            SELECT card_id, service_day, id, route_id, stop_id, direction, tapped_at FROM transit_tap
            WHERE card_id = ANY(:cards) AND service_day BETWEEN :low AND :high AND result = 'accepted'
            ORDER BY card_id, service_day, tapped_at, id
            """
        ),
        {"cards": cards, "low": low, "high": high},
    ).all()
    found: dict[tuple[str, date], list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        start = starts.get((row[0], month_start(row[1])))
        if start is not None and row[1] >= start:
            found[(row[0], row[1])].append(row)
    return found


def _cards(session: Session, cards: list[str], low: date, high: date) -> dict[str, _Card]:
    info = {
        row[0]: _Card(row[1], [])
        for row in session.execute(
            text("SELECT id, category_id FROM transit_card WHERE id = ANY(:cards)"), {"cards": cards}
        )
    }
    for card_id, product_id, first, last in session.execute(
        text(
            """
            SELECT card_id, product_id, starts_on, ends_on FROM transit_pass
            WHERE card_id = ANY(:cards) AND status = 'active' AND ends_on >= :low AND starts_on <= :high
            """
        ),
        {"cards": cards, "low": low, "high": high},
    ):
        info[card_id].passes.append((product_id, first, last))
    return info


def _caps_before(
    session: Session, starts: dict[tuple[str, date], date]
) -> dict[tuple[str, date], dict[str, int]]:
    """Month-to-date spending towards each monthly cap at the end of the day before each start."""
    keys = [(card, month, start) for (card, month), start in starts.items() if start > month]
    if not keys:
        return {}
    rows = session.execute(
        text(
            """
            SELECT DISTINCT ON (f.card_id, k.month) f.card_id, k.month, f.caps
            FROM transit_fare_day f
            JOIN unnest(CAST(:cards AS text[]), CAST(:months AS date[]), CAST(:starts AS date[]))
                 AS k(card_id, month, start)
              ON f.card_id = k.card_id AND f.service_day >= k.month AND f.service_day < k.start
            ORDER BY f.card_id, k.month, f.service_day DESC
            """
        ),
        {"cards": [k[0] for k in keys], "months": [k[1] for k in keys], "starts": [k[2] for k in keys]},
    )
    return {(row[0], row[1]): dict(row[2].get("month", {})) for row in rows}


def _legs(taps: list[tuple[Any, ...]]) -> list[Leg]:
    """Entries start legs; an exit tap on the same route within three hours ends the open one."""
    legs: list[Leg] = []
    for _card, _day, tap_id, route_id, stop_id, direction, tapped_at in taps:
        if direction == "out":
            last = legs[-1] if legs else None
            if (
                last is not None
                and last.exit_tap_id is None
                and last.route_id == route_id
                and tapped_at - last.started_at <= EXIT_WITHIN
            ):
                legs[-1] = Leg(
                    last.tap_id,
                    last.route_id,
                    last.from_stop_id,
                    last.started_at,
                    last.local_time,
                    tap_id,
                    stop_id,
                )
            continue
        legs.append(Leg(tap_id, route_id, stop_id, tapped_at, local_time_of(tapped_at)))
    return legs


@lru_cache(maxsize=65_536)
def _text(value: str | None) -> str:
    """A value in COPY's text format (feed ids repeat, so this is cached)."""
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _trip_row(card_id: str, day: date, priced: PricedLeg, model: FareModel) -> str:
    """One trip as a line of COPY text: formatting it here is several times cheaper than per-value dumping."""
    leg = priced.leg
    reasons = json.dumps(priced.reasons, ensure_ascii=False, separators=(",", ":"))
    return "\t".join(
        (
            new_id("trip"),
            card_id,
            day.isoformat(),
            _text(leg.tap_id),
            _text(leg.exit_tap_id),
            _text(leg.route_id),
            _text(leg.from_stop_id),
            _text(leg.to_stop_id),
            leg.started_at.isoformat(),
            _text(priced.product_id),
            str(priced.base_amount),
            str(priced.amount),
            model.currency,
            _text(reasons),
        )
    )


def _write(
    session: Session, trips: list[str], days: list[dict[str, Any]], currency: str, now: datetime
) -> None:
    """Replace the days' trips (COPY) and upsert their totals, in the caller's transaction."""
    cards = [d["card_id"] for d in days]
    service_days = [d["service_day"] for d in days]
    session.execute(
        text(
            """
            DELETE FROM transit_trip t
            USING unnest(CAST(:cards AS text[]), CAST(:days AS date[])) AS k(card_id, day)
            WHERE t.card_id = k.card_id AND t.service_day = k.day
            """
        ),
        {"cards": cards, "days": service_days},
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY transit_trip ({', '.join(TRIP_COLUMNS)}) FROM STDIN") as copy,
    ):
        for start in range(0, len(trips), 5_000):
            copy.write("\n".join(trips[start : start + 5_000]) + "\n")
    session.execute(
        text(
            """
            INSERT INTO transit_fare_day (card_id, service_day, trips, total_amount, charged_amount, currency,
                                          caps, closed, priced_at)
            SELECT k.card_id, k.day, k.trips, k.total, 0, :currency, k.caps, false, :now
            FROM unnest(CAST(:cards AS text[]), CAST(:days AS date[]), CAST(:trips AS int[]),
                        CAST(:totals AS bigint[]), CAST(:caps AS jsonb[]))
                 AS k(card_id, day, trips, total, caps)
            ON CONFLICT (card_id, service_day) DO UPDATE
               SET trips = excluded.trips, total_amount = excluded.total_amount, caps = excluded.caps,
                   priced_at = excluded.priced_at
            """
        ),
        {
            "cards": cards,
            "days": service_days,
            "trips": [d["trips"] for d in days],
            "totals": [d["total"] for d in days],
            "caps": [d["caps"] for d in days],
            "currency": currency,
            "now": now,
        },
    )
