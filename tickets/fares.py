"""The fare engine: a card's legs of one service day priced from GTFS-Fares v2 rules, then capped.

Pure functions over a `FareModel` read from the active feed, so the same code prices a test table, a
late tap and a million taps. For each leg, in time order:

1. the fare leg rules that match it (network, from/to area, timeframe; an empty field matches any)
   give candidate products; a **pass** the card holds among them makes the leg free;
2. otherwise the **single fare**: the cheapest single product for the rider's category (the dearest when
   a distance-priced leg has no exit tap), a category's own row overriding the any-category row;
3. a **transfer** rule from the previous leg within its window changes it (A + AB + B, or A + AB);
4. **caps**, the platform's own rule (`hanoipay_caps.txt`): a product marked as a cap limits what the
   legs it covers cost in its period (day, or month to date: 'earn the pass') to its price.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

DAY = "day"
MONTH = "month"


@dataclass(frozen=True)
class LegRule:
    """One row of fare_leg_rules.txt."""

    leg_group_id: str
    network_id: str
    from_area_id: str
    to_area_id: str
    from_timeframe_group_id: str
    to_timeframe_group_id: str
    fare_product_id: str
    rule_priority: int


@dataclass(frozen=True)
class TransferRule:
    """One row of fare_transfer_rules.txt."""

    from_leg_group_id: str
    to_leg_group_id: str
    transfer_count: int
    duration_limit: int | None
    fare_transfer_type: int
    fare_product_id: str


@dataclass(frozen=True)
class CapRule:
    """The platform's own rule on a product: sold as a pass for a day or a month, and/or a cap."""

    fare_product_id: str
    validity: str
    sold_as_pass: bool
    caps: bool


@dataclass
class FareModel:
    """Everything the engine needs from a feed, indexed for pricing."""

    currency: str
    default_category: str
    prices: dict[tuple[str, str], int]
    product_names: dict[str, str]
    route_networks: dict[str, str]
    stop_areas: dict[str, frozenset[str]]
    leg_rules: dict[str, list[LegRule]]
    transfer_rules: dict[tuple[str, str], TransferRule]
    timeframes: dict[str, list[tuple[time, time]]]
    caps: dict[str, CapRule]
    categories: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_tables(
        cls,
        *,
        currency: str,
        categories: Sequence[Mapping[str, Any]],
        products: Sequence[Mapping[str, Any]],
        routes: Mapping[str, str | None],
        fares: Mapping[str, Any],
    ) -> "FareModel":
        """Index the feed's tables (as stored) for pricing."""
        default = next((c["category_id"] for c in categories if c["is_default"]), "")
        stop_areas: dict[str, set[str]] = defaultdict(set)
        for row in fares.get("stop_areas", []):
            stop_areas[row["stop_id"]].add(row["area_id"])
        leg_rules: dict[str, list[LegRule]] = defaultdict(list)
        for row in fares.get("fare_leg_rules", []):
            rule = LegRule(
                row.get("leg_group_id", ""),
                row.get("network_id", ""),
                row.get("from_area_id", ""),
                row.get("to_area_id", ""),
                row.get("from_timeframe_group_id", ""),
                row.get("to_timeframe_group_id", ""),
                row["fare_product_id"],
                int(row.get("rule_priority") or 0),
            )
            leg_rules[rule.network_id].append(rule)
        transfers = {}
        for row in fares.get("fare_transfer_rules", []):
            limit = row.get("duration_limit")
            transfer = TransferRule(
                row.get("from_leg_group_id", ""),
                row.get("to_leg_group_id", ""),
                int(row.get("transfer_count") or -1),
                int(limit) if limit not in (None, "") else None,
                int(row["fare_transfer_type"]),
                row.get("fare_product_id", ""),
            )
            transfers[(transfer.from_leg_group_id, transfer.to_leg_group_id)] = transfer
        timeframes: dict[str, list[tuple[time, time]]] = defaultdict(list)
        for row in fares.get("timeframes", []):
            timeframes[row["timeframe_group_id"]].append(
                (_clock(row.get("start_time") or "00:00:00"), _clock(row.get("end_time") or "24:00:00"))
            )
        caps = {
            row["fare_product_id"]: CapRule(
                row["fare_product_id"],
                row["validity"],
                str(row.get("sold_as_pass", "0")) == "1",
                str(row.get("caps", "0")) == "1",
            )
            for row in fares.get("hanoipay_caps", [])
        }
        return cls(
            currency=currency,
            default_category=default,
            prices={(p["product_id"], p["category_id"]): int(p["amount"]) for p in products},
            product_names=_names(products),
            route_networks={route: network or "" for route, network in routes.items()},
            stop_areas={stop: frozenset(areas) for stop, areas in stop_areas.items()},
            leg_rules=dict(leg_rules),
            transfer_rules=transfers,
            timeframes=dict(timeframes),
            caps=caps,
            categories={c["category_id"]: int(c["code"]) for c in categories},
        )

    def price(self, product_id: str, category: str) -> int | None:
        """The product's price for a category: its own row, else the any-category row, else the default's."""
        prices = self.prices
        for key in ((product_id, category), (product_id, ""), (product_id, self.default_category)):
            if key in prices:
                return prices[key]
        return None


def _names(products: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each product's name as its any-category row gives it (else its first row)."""
    names: dict[str, str] = {}
    for row in sorted(products, key=lambda p: p["category_id"] != ""):
        names.setdefault(row["product_id"], row["name"])
    return names


def _clock(text: str) -> time:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return time(23, 59, 59, 999_999) if hours >= 24 else time(hours, minutes, seconds)


@dataclass(frozen=True)
class Leg:
    """A ride to price: its entry (and exit, for distance fares) and when it started, local time."""

    tap_id: str
    route_id: str
    from_stop_id: str | None
    started_at: datetime
    local_time: time
    exit_tap_id: str | None = None
    to_stop_id: str | None = None


@dataclass
class PricedLeg:
    """A leg with its single-fare product, the fare before and after passes, transfers and caps, and why."""

    leg: Leg
    product_id: str | None
    base_amount: int
    amount: int
    leg_group_id: str
    reasons: list[dict[str, Any]]
    caps: list[str] = field(default_factory=list)


def _matching(model: FareModel, leg: Leg) -> list[LegRule]:
    network = model.route_networks.get(leg.route_id, "")
    from_areas = model.stop_areas.get(leg.from_stop_id or "", frozenset())
    to_areas = model.stop_areas.get(leg.to_stop_id or "", frozenset()) if leg.to_stop_id else None
    found = []
    for rule in model.leg_rules.get(network, ()):
        if rule.from_area_id and rule.from_area_id not in from_areas:
            continue
        if rule.to_area_id and to_areas is not None and rule.to_area_id not in to_areas:
            continue
        if rule.from_timeframe_group_id and not _within(model, rule.from_timeframe_group_id, leg.local_time):
            continue
        found.append(rule)
    if found and any(r.rule_priority for r in found):
        top = max(r.rule_priority for r in found)
        found = [r for r in found if r.rule_priority == top]
    return found


def _within(model: FareModel, group: str, moment: time) -> bool:
    return any(start <= moment < end for start, end in model.timeframes.get(group, ()))


@dataclass
class _Journey:
    last: PricedLeg | None = None
    transfers: int = 0


def price_day(
    model: FareModel,
    category: str,
    legs: Iterable[Leg],
    *,
    passes: frozenset[str] = frozenset(),
    month_caps: Mapping[str, int] | None = None,
) -> tuple[list[PricedLeg], dict[str, int], dict[str, int]]:
    """Price one card's legs of one service day, in time order.

    Returns the priced legs, what was spent towards each monthly cap by the end of the day, and towards
    each daily cap.

    `passes` are the products the card holds for this day; `month_caps` is what the card spent towards
    each monthly cap earlier in the month.
    """
    spent: dict[str, int] = dict(month_caps or {})
    day_spent: dict[str, int] = defaultdict(int)
    journey = _Journey()
    priced = []
    for leg in sorted(legs, key=lambda item: item.started_at):
        result = _price_leg(model, category, leg, passes, journey)
        for product_id in result.caps:
            cap = model.caps[product_id]
            limit = model.price(product_id, category)
            if limit is None:
                continue
            used = day_spent[product_id] if cap.validity == DAY else spent.get(product_id, 0)
            remaining = max(0, limit - used)
            if result.amount > remaining:
                result.reasons.append(
                    {
                        "kind": "cap",
                        "product": product_id,
                        "period": cap.validity,
                        "saved": result.amount - remaining,
                    }
                )
                result.amount = remaining
        for product_id in result.caps:
            if model.caps[product_id].validity == DAY:
                day_spent[product_id] += result.amount
            else:
                spent[product_id] = spent.get(product_id, 0) + result.amount
        priced.append(result)
    return priced, spent, dict(day_spent)


def _price_leg(
    model: FareModel, category: str, leg: Leg, passes: frozenset[str], journey: _Journey
) -> PricedLeg:
    rules = _matching(model, leg)
    covering = sorted({r.fare_product_id for r in rules if r.fare_product_id in model.caps})
    singles = [
        (price, r.fare_product_id)
        for r in rules
        if r.fare_product_id not in model.caps
        and (price := model.price(r.fare_product_id, category)) is not None
    ]
    group = rules[0].leg_group_id if rules else ""
    caps = [p for p in covering if model.caps[p].caps]
    fare: dict[str, Any] = {"kind": "fare"}
    if not singles:
        fare["detail"] = "no_fare_rule"
        result = PricedLeg(leg, None, 0, 0, group, [fare], caps)
        journey.last, journey.transfers = result, 0
        return result
    no_exit = leg.to_stop_id is None and any(r.to_area_id for r in rules)
    base, product_id = max(singles) if no_exit else min(singles)
    fare["product"] = product_id
    if no_exit:
        fare["detail"] = "no_exit_tap"
    result = PricedLeg(leg, product_id, base, base, group, [fare], caps)
    default = model.price(product_id, model.default_category)
    if default is not None and base < default:
        result.reasons.append({"kind": "concession", "category": category, "full_amount": default})
    held = [p for p in covering if p in passes]
    if held:
        result.reasons.append({"kind": "pass", "product": held[0]})
        result.amount = 0
        journey.last, journey.transfers = result, 0
        return result
    _apply_transfer(model, category, result, journey)
    return result


def _apply_transfer(model: FareModel, category: str, result: PricedLeg, journey: _Journey) -> None:
    previous = journey.last
    rule = model.transfer_rules.get((previous.leg_group_id, result.leg_group_id)) if previous else None
    if previous is None or rule is None:
        journey.last, journey.transfers = result, 0
        return
    elapsed = (result.leg.started_at - previous.leg.started_at).total_seconds()
    within = rule.duration_limit is None or elapsed <= rule.duration_limit
    if not within or (rule.transfer_count >= 0 and journey.transfers >= rule.transfer_count):
        journey.last, journey.transfers = result, 0
        return
    transfer_fee = model.price(rule.fare_product_id, category) or 0 if rule.fare_product_id else 0
    before = result.amount
    if rule.fare_transfer_type == 0:  # A + AB + B
        result.amount = max(0, before + transfer_fee)
    else:  # A + AB (and AB for the pair, where the first leg already paid A)
        fee = transfer_fee if rule.fare_transfer_type == 1 else transfer_fee - previous.amount
        result.amount = max(0, min(before, fee))
    result.reasons.append(
        {
            "kind": "transfer",
            "from": previous.leg_group_id,
            "product": rule.fare_product_id,
            "saved": before - result.amount,
        }
    )
    journey.last, journey.transfers = result, journey.transfers + 1
