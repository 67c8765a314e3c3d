"""Taps: validators' decisions uploaded in batches, applied once per tap id, then priced by a job.

A batch is checked tap by tap: a malformed tap is reported by its index and the rest are applied. The
server reads each code again (signatures and time window at the tap's time), so a validator cannot
invent a ride for a card; a code it cannot read is stored with the server's reason and never priced.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from tickets.credentials import from_b64url
from tickets.exceptions import UnknownRoute, UnknownStop
from tickets.models import TransitRoute, TransitStop, TransitTap, TransitValidator
from tickets.schemas import TapIn
from tickets.service.days import service_day_of
from tickets.service.network import active_feed
from tickets.service.validators import OnlineDecision, check_online, verifier
from tickets.validator import Reason

MAX_BATCH = 1_000
MAX_AGE = timedelta(days=35)
MAX_AHEAD = timedelta(minutes=5)


@dataclass
class UploadResult:
    """What a batch did: taps stored, taps already stored (same id), and the bad ones by index."""

    applied: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def upload_taps(
    session: Session, validator: TransitValidator, items: Sequence[Any], *, now: datetime | None = None
) -> UploadResult:
    """Apply a batch of taps from one validator, each once; report malformed ones by index."""
    moment = now or datetime.now(UTC)
    result = UploadResult()
    routes, stops = _network(session)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        problem, row = _read(item, validator, routes, stops, moment)
        if problem is None and row["id"] in seen:
            problem = {"code": "duplicate_in_batch", "detail": "This tap id appears earlier in the batch."}
        if problem is not None:
            result.errors.append({"index": index, **problem})
            continue
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        return result
    inserted = session.scalars(
        pg_insert(TransitTap)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(TransitTap.id)
    ).all()
    result.applied = len(inserted)
    result.duplicates = len(rows) - len(inserted)
    if inserted:
        _flag_two_vehicles(session, list(inserted))
        keys = sorted(
            {
                (r["card_id"], r["service_day"].isoformat())
                for r in rows
                if r["id"] in set(inserted) and r["card_id"]
            }
        )
        if keys:
            enqueue_after_commit(session, "tickets.price_card_days", keys=[list(k) for k in keys])
    return result


def _network(session: Session) -> tuple[set[str], set[str]]:
    feed = active_feed(session)
    routes = set(session.scalars(select(TransitRoute.route_id).where(TransitRoute.feed_id == feed.id)))
    stops = set(session.scalars(select(TransitStop.stop_id).where(TransitStop.feed_id == feed.id)))
    return routes, stops


def _read(
    item: Any, validator: TransitValidator, routes: set[str], stops: set[str], now: datetime
) -> tuple[dict[str, str] | None, dict[str, Any]]:
    try:
        tap = TapIn.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return {"code": "invalid_tap", "detail": f"{where}: {first.get('msg', 'invalid')}"}, {}
    if tap.route_id not in routes:
        return {"code": "unknown_route", "detail": f"No route {tap.route_id} in the network."}, {}
    if tap.stop_id is not None and tap.stop_id not in stops:
        return {"code": "unknown_stop", "detail": f"No stop {tap.stop_id} in the network."}, {}
    if not now - MAX_AGE <= tap.tapped_at <= now + MAX_AHEAD:
        return {
            "code": "tap_time_out_of_range",
            "detail": "tapped_at is too far in the past or the future.",
        }, {}
    try:
        payload = from_b64url(tap.payload)
    except ValueError:
        payload = b""
    vehicle = tap.vehicle_id or validator.vehicle_id
    decision = verifier().check(payload, tap.tapped_at.timestamp(), vehicle_id="")
    # The validator's own answer stands when the code is genuine; a code the server cannot verify is never
    # a ride, whatever the validator said.
    result = tap.result if decision.accepted else decision.reason.value
    return None, {
        "id": tap.id,
        "validator_id": validator.id,
        "vehicle_id": vehicle,
        "route_id": tap.route_id,
        "stop_id": tap.stop_id,
        "direction": tap.direction,
        "tapped_at": tap.tapped_at,
        "service_day": service_day_of(tap.tapped_at),
        "card_id": decision.card_id,
        "slot": decision.slot,
        "counter": decision.counter,
        "result": result,
    }


def _flag_two_vehicles(session: Session, tap_ids: list[str]) -> None:
    """Flag accepted taps of one card on two vehicles within a minute (a shared or copied code)."""
    session.execute(
        text(
            """
            UPDATE transit_tap t SET flag = 'two_vehicles'
            FROM transit_tap o, transit_tap n
            WHERE n.id = ANY(:ids) AND n.result = 'accepted' AND o.card_id = n.card_id
              AND o.service_day = n.service_day AND o.result = 'accepted' AND o.vehicle_id <> n.vehicle_id
              AND o.tapped_at BETWEEN n.tapped_at - interval '60 seconds'
                                  AND n.tapped_at + interval '60 seconds'
              AND t.id IN (n.id, o.id)
            """
        ),
        {"ids": tap_ids},
    )


def record_online_check(
    session: Session,
    validator: TransitValidator,
    payload: bytes,
    *,
    route_id: str,
    stop_id: str | None,
    direction: str,
    now: datetime,
) -> tuple[OnlineDecision, str]:
    """Run the online check and keep its decision as a tap, priced like an uploaded one."""
    routes, stops = _network(session)
    if route_id not in routes:
        raise UnknownRoute(f"No route {route_id} in the network.")
    if stop_id is not None and stop_id not in stops:
        raise UnknownStop(f"No stop {stop_id} in the network.")
    online = check_online(session, payload, vehicle_id=validator.vehicle_id, now=now)
    decision = online.decision
    tap_id = new_id("tap")
    day = service_day_of(now)
    session.execute(
        pg_insert(TransitTap).values(
            id=tap_id,
            validator_id=validator.id,
            vehicle_id=validator.vehicle_id,
            route_id=route_id,
            stop_id=stop_id,
            direction=direction,
            tapped_at=now,
            service_day=day,
            card_id=decision.card_id,
            slot=decision.slot,
            counter=decision.counter,
            result=decision.reason.value,
            flag=online.flag,
        )
    )
    if decision.reason is Reason.ACCEPTED and decision.card_id:
        enqueue_after_commit(session, "tickets.price_card_days", keys=[[decision.card_id, day.isoformat()]])
    return online, tap_id
