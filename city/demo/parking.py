"""Parking's day: the Hanoi sample streets loaded through the operator API, a few hundred drivers parking
through the day (some extend, some overstay), attendants checking plates; occupancy and revenue per zone.

The day is played on a simulated clock through the parking services (they take `now`), over the last
hours up to the real present, so that the sessions still open at the end are live for the attendants,
who check plates and record violations over HTTP. Money moves through the payment core as always: each
session is a wallet hold captured at the real amount when it ends.
"""

import heapq
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from rich.console import RenderableType
from rich.table import Table

from city.demo.city import PASSWORD, City, console
from hanoipay.auth.service import Principal
from hanoipay.db import job_session
from hanoipay.errors import HanoiPayError
from hanoipay.localtime import HANOI
from parking.jobs import sweep_timers
from parking.service import quotes, sessions

SAMPLE = Path(__file__).resolve().parents[2] / "parking" / "data" / "hanoi.yaml"
HOURS = 8


@dataclass(order=True)
class _Event:
    at: datetime
    order: int
    action: str = field(compare=False)
    driver: int = field(compare=False)


@dataclass
class _Driver:
    who: Principal
    wallet_id: str
    plate: str
    vehicle: str
    minutes: int
    stay: int
    extend: int
    session_id: str | None = None
    parked_now: bool = False


class ParkingScenario:
    """Drivers park across the sample streets through the day; attendants check plates."""

    name = "parking"

    def __init__(self, *, drivers: int = 300, checks: int = 60) -> None:
        self.drivers = drivers
        self.checks = checks
        self.operator: dict[str, Any] = {}
        self.report: list[dict[str, Any]] = []
        self.window = (datetime.now(UTC), datetime.now(UTC))

    def play(self, city: City) -> None:
        """Load the streets, play the drivers' day, then let attendants walk the streets."""
        self.operator = next(m for m in city.merchants if m["kind"] == "parking_operator")
        staff = city.staff[self.operator["id"]]
        document = json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
        loaded = city.api.post(
            "/v1/parking/data", content=document, headers=staff | {"content-type": "application/json"}
        )
        loaded.raise_for_status()
        console.print(
            f"{self.operator['name']} loaded {loaded.json()['zones']} zones and "
            f"{loaded.json()['spots_added']} spots of the Hanoi sample through the operator API"
        )
        drivers = _drivers(city, self.drivers)
        self.window = _play_day(city, drivers)
        console.print(f"{len(drivers)} drivers parked over the last {HOURS} hours (simulated clock)")
        reminded, expired = sweep_timers()
        city.outcomes[f"parking: reminders sent by the sweep {reminded}, sessions expired {expired}"] += 1
        _patrol(city, staff, drivers, self.checks)
        first, last = (t.astimezone(HANOI).date() for t in self.window)
        self.report = city.api.get(
            "/v1/parking/reports/daily", params={"from": str(first), "to": str(last)}, headers=staff
        ).json()["data"]

    def summarize(self, city: City) -> list[RenderableType]:
        """Occupancy and revenue per zone (revenue from the ledger, through the report API)."""
        minutes = (self.window[1] - self.window[0]).total_seconds() / 60
        zones: dict[str, dict[str, int]] = {}
        for row in self.report:
            zone = zones.setdefault(
                row["zone_code"], {"spots": row["spots"], "sessions": 0, "occupied": 0, "gross": 0, "net": 0}
            )
            zone["sessions"] += row["sessions"]
            zone["occupied"] += row["occupied_minutes"]
            zone["gross"] += row["gross_amount"]
            zone["net"] += row["net_amount"]
        table = Table(
            "zone",
            "spots",
            "sessions",
            "occupancy",
            "paid by drivers (VND)",
            "owed to operator (VND)",
            title=f"Parking per zone over {HOURS} hours (revenue from the ledger)",
        )
        for code, z in sorted(zones.items()):
            occupancy = z["occupied"] / (z["spots"] * minutes) if z["spots"] and minutes else 0.0
            table.add_row(
                code,
                str(z["spots"]),
                str(z["sessions"]),
                f"{occupancy:.0%}",
                f"{z['gross']:,}",
                f"{z['net']:,}",
            )
        total, count = sum(z["gross"] for z in zones.values()), sum(z["sessions"] for z in zones.values())
        return [table, f"parking revenue in the ledger: {total:,} VND from {count} sessions"]


def _drivers(city: City, count: int) -> list[_Driver]:
    """The payments scenario's people, and new ones signing up, each with a wallet and a plate."""
    people = list(city.people)

    def sign_up(i: int) -> tuple[dict[str, str], str]:
        email = f"driver{i}@example.vn"
        city.post("/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": f"Tài xế {i}"}, {})
        who = city.login(email)
        wallet = city.post("/v1/wallets", {"currency": "VND"}, who).json()
        city.post(
            f"/v1/wallets/{wallet['id']}/manual_topups",
            {"amount": 1_000_000, "reason": "driver tops up at a kiosk"},
            city.finance,
            key=f"driver-topup-{i}",
        ).raise_for_status()
        return who, wallet["id"]

    def top_up(person: tuple[dict[str, str], str]) -> None:
        city.post(
            f"/v1/wallets/{person[1]}/manual_topups",
            {"amount": 300_000, "reason": "driver tops up at a kiosk"},
            city.finance,
            key=f"driver-topup-{person[1]}",
        ).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(top_up, people[:count]))
        people += list(pool.map(sign_up, range(max(0, count - len(people)))))
        ids = list(
            pool.map(lambda p: city.api.get("/v1/users/me", headers=p[0]).json()["id"], people[:count])
        )
    rng = city.rng
    drivers = []
    for i, ((_, wallet_id), user_id) in enumerate(zip(people[:count], ids, strict=True)):
        province, series = rng.choice(["29", "30", "51", "88"]), rng.choice("ABCDEFGHK")
        minutes = rng.choice([30, 60, 60, 120, 120, 180])
        kind = rng.random()
        extend = 60 if 0.15 <= kind < 0.35 else 0
        if kind < 0.15:  # overstays
            stay = minutes + rng.randrange(20, 90)
        elif extend:  # adds an hour ten minutes before the end, and leaves within it
            stay = minutes + rng.randrange(0, extend)
        else:
            stay = rng.randrange(10, minutes + 1)
        drivers.append(
            _Driver(
                who=Principal(id=user_id, kind="user", roles=frozenset({"customer"})),
                wallet_id=wallet_id,
                plate=f"{province}{series}-{100 + i:03d}.{rng.randrange(100):02d}",  # unique: one per driver
                vehicle="motorbike" if rng.random() < 0.2 else "car",
                minutes=minutes,
                stay=stay,
                extend=extend,
            )
        )
    return drivers


ZONES = {
    "car": [
        "HK-LTK-01",
        "HK-LTK-02",
        "HK-LTK-03",
        "HK-THD-01",
        "HK-THD-02",
        "HK-THD-03",
        "HK-TT-01",
        "HK-HB-01",
        "BD-DBP-01",
        "HBT-BT-01",
        "HK-LOT-TND",
    ],
    "motorbike": ["HK-LTK-02", "HK-THD-02", "HK-TT-01", "HBT-BT-01"],
}


def _play_day(city: City, drivers: list[_Driver]) -> tuple[datetime, datetime]:
    """Every arrival, extension and departure in time order, on the simulated clock."""
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(hours=HOURS)
    events: list[_Event] = []
    for i in range(len(drivers)):
        arrival = start + timedelta(minutes=city.rng.randrange(0, HOURS * 60 - 15))
        heapq.heappush(events, _Event(arrival, len(events), "start", i))
    while events:
        event = heapq.heappop(events)
        if event.at > end:
            drivers[event.driver].parked_now = event.action != "start"  # still parked: live for attendants
            continue
        driver = drivers[event.driver]
        outcome = _act(event, driver, city)
        city.outcomes[f"parking: {outcome}"] += 1
        if event.action == "start" and driver.session_id is not None:
            if driver.extend:
                extend_at = event.at + timedelta(minutes=driver.minutes - 10)
                heapq.heappush(events, _Event(extend_at, len(events), "extend", event.driver))
            heapq.heappush(
                events, _Event(event.at + timedelta(minutes=driver.stay), len(events), "end", event.driver)
            )
    return start, end


def _act(event: _Event, driver: _Driver, city: City) -> str:
    """One driver's action at its simulated time; what happened, for the day's outcomes."""
    try:
        with job_session() as session:
            if event.action == "start":
                for zone in city.rng.sample(ZONES[driver.vehicle], len(ZONES[driver.vehicle])):
                    try:
                        with session.begin_nested():
                            quote, _ = quotes.create_quote(
                                session,
                                driver.who,
                                zone_code=zone,
                                vehicle_type=driver.vehicle,
                                duration_minutes=driver.minutes,
                                now=event.at,
                            )
                            psn = sessions.start_session(
                                session,
                                driver.who,
                                quote_id=quote.id,
                                plate=driver.plate,
                                provider="wallet",
                                wallet_id=driver.wallet_id,
                                now=event.at,
                            )
                        driver.session_id = psn.id
                        return f"{driver.vehicle} parked"
                    except HanoiPayError as error:
                        if error.code not in ("spot_taken", "duration_out_of_range"):
                            return f"start refused: {error.code}"
                return "every zone full"
            assert driver.session_id is not None
            if event.action == "extend":
                sessions.extend_session(
                    session, driver.who, driver.session_id, minutes=driver.extend, now=event.at
                )
                return "extended by an hour"
            ended = sessions.end_session(session, driver.who, driver.session_id, now=event.at)
            if ended.unpaid_amount:
                return "overstay left unpaid"
            return "overstay charged" if ended.overstay_minutes else "ended and paid"
    except HanoiPayError as error:
        return f"{event.action} refused: {error.code}"


def _patrol(city: City, staff: dict[str, str], drivers: list[_Driver], checks: int) -> None:
    """Attendants look up the plates of cars parked now over HTTP (paying and not) and record violations."""
    strangers = [f"30{c}-{n:03d}.{n % 100:02d}" for c, n in zip("ABCDEFGHKL", range(311, 321), strict=True)]
    parked = [d.plate for d in drivers if d.parked_now]
    plates = city.rng.sample(parked, min(len(parked), checks - len(strangers))) + strangers
    for i, plate in enumerate(plates):
        found = city.api.get(f"/v1/parking/enforcement/plates/{plate}", headers=staff).json()
        city.outcomes[f"parking: plate check {found['status']}"] += 1
        if found["status"] in ("no_session", "expired"):
            zone = found.get("zone_code") or "HK-LTK-02"
            violation = {
                "plate": plate,
                "zone_code": zone,
                "kind": found["status"],
                "photo_ref": f"photos/patrol/{i:03d}.jpg",
            }
            answer = city.post("/v1/parking/violations", violation, staff)
            city.outcomes[
                f"parking: violation {'recorded' if answer.status_code == 201 else answer.json()['code']}"
            ] += 1
