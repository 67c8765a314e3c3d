"""Transit's day: a thousand riders on the sample Hanoi network, priced and charged once per card and day.

The day played is yesterday's service day, so that it is closed and can be charged: phones are
registered with credentials issued that morning (the service takes `now`, as the tests do), every code
is signed on the rider's "phone" at its tap time, and validators upload their taps over HTTP. Riders
buy passes, students and seniors ride at their concessions, some change from the bus to the metro
within the hour, some reach the metro's daily cap; one phone is reported lost and revoked, and one bus
validator stays offline for an hour and uploads after the day was charged, so its taps re-price the day
and its riders get an adjustment, never a second charge.
"""

import base64
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from sqlalchemy import func, select

from city.demo.city import PASSWORD, City, console
from hanoipay.auth.service import Principal
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue
from hanoipay.localtime import HANOI
from tickets.credentials import b64url
from tickets.models import FareCharge, FareDay, TransitPass, TransitTap, TransitTrip
from tickets.rider import RiderDevice
from tickets.service.cards import register_device
from tickets.service.days import current_service_day
from tickets.service.passes import buy_pass

BUSES = ["09", "34", "90", "70", "107"]


@dataclass
class Rider:
    """A rider of the demo: who they are to the API, their card and their phone."""

    headers: dict[str, str]
    user_id: str
    card_id: str = ""
    device_id: str = ""
    phone: RiderDevice = field(default_factory=RiderDevice)
    category: str = "adult"


@dataclass
class Tap:
    validator: str
    body: dict[str, Any]


class TicketsScenario:
    """A thousand riders through a day of buses and metro, with every fare rule and a late upload."""

    name = "tickets"

    def __init__(self, *, riders: int = 1_000) -> None:
        self.riders = riders
        self.day = date.min
        self.outcomes: Counter[str] = Counter()

    def play(self, city: City) -> None:
        """Set up the network, riders and validators, play the day, charge it, then the late upload."""
        self.day = current_service_day(datetime.now(UTC)) - timedelta(days=1)
        operator = next(m for m in city.merchants if m["kind"] == "transit_operator")
        city.post("/v1/transit/feeds/sample", {"merchant_id": operator["id"]}, city.admin).raise_for_status()
        riders = self._riders(city)
        console.print(f"{len(riders)} riders with cards and phones; {self.outcomes['passes']} bought passes")
        staff = city.staff[operator["id"]]
        gates = {
            name: city.post("/v1/transit/validators", {"name": name, "vehicle_id": name}, staff).json()[
                "secret"
            ]
            for name in [f"bus-{r}" for r in BUSES] + ["bus-09-offline", "gate-2A", "gate-3"]
        }
        taps = self._rides(city, riders)
        late = [t for t in taps if t.validator == "bus-09-offline"]
        self._upload(city, gates, [t for t in taps if t.validator != "bus-09-offline"])
        self._lost_phone(city, riders[7], gates["bus-34"])
        city.drain()  # pricing
        enqueue("tickets.charge_closed_days")
        city.drain()
        charged = self._charged()
        console.print(
            f"{len(taps) - len(late)} taps uploaded and priced; the day charged once per card: {charged:,} ₫"
        )
        self._upload(city, gates, late)
        city.drain()
        enqueue("tickets.charge_closed_days")
        city.drain()
        console.print(
            f"an offline validator uploaded {len(late)} taps late; the day was re-priced and"
            f" {self._charged() - charged:,} ₫ more charged (adjustments to days already charged, never a"
            " second charge)"
        )

    def _riders(self, city: City) -> list[Rider]:
        people = [who for who, _ in city.people][: self.riders]
        start = len(people)

        def sign_up(i: int) -> dict[str, str]:
            email = f"rider{i}@example.vn"
            city.post(
                "/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": f"Hành khách {i}"}, {}
            )
            who = city.login(email)
            wallet = city.post("/v1/wallets", {"currency": "VND"}, who).json()
            amount = 6_000 if i % 97 == 0 else city.rng.choice([100_000, 200_000, 400_000])
            city.post(
                f"/v1/wallets/{wallet['id']}/manual_topups",
                {"amount": amount, "reason": "cash at a metro station counter"},
                city.finance,
                key=f"transit-topup-{i}",
            ).raise_for_status()
            return who

        with ThreadPoolExecutor(8) as pool:
            people += list(pool.map(sign_up, range(start, self.riders)))
            riders = list(pool.map(lambda who: self._card(city, who), people))
        return riders

    def _card(self, city: City, who: dict[str, str]) -> Rider:
        me = city.api.get("/v1/users/me", headers=who).json()
        wallet = city.api.get("/v1/wallets", headers=who).json()[0]
        rider = Rider(who, me["id"])
        card = city.post("/v1/transit/cards", {"wallet_id": wallet["id"]}, who, key=f"card-{me['id']}").json()
        rider.card_id = card["id"]
        roll = city.rng.random()
        rider.category = "student" if roll < 0.12 else "senior" if roll < 0.18 else "adult"
        if rider.category != "adult":
            city.post(
                f"/v1/transit/cards/{rider.card_id}/category", {"category_id": rider.category}, city.admin
            ).raise_for_status()
        morning = _at(self.day, 4, 30)
        principal = Principal(id=rider.user_id, kind="user", roles=frozenset({"customer"}))
        with job_session() as session:
            device = register_device(
                session,
                principal,
                rider.card_id,
                public_key=rider.phone.public_key,
                name="Phone",
                now=morning,
            )
            rider.phone.credential, rider.device_id = device.credential, device.id
            if rider.category == "adult" and city.rng.random() < 0.05 and wallet["available"] >= 280_000:
                buy_pass(session, principal, rider.card_id, product_id="bus_month_all", now=morning)
                self.outcomes["passes"] += 1
        return rider

    def _rides(self, city: City, riders: list[Rider]) -> list[Tap]:
        taps: list[Tap] = []
        for i, rider in enumerate(riders):
            start = _at(self.day, 6, 0) + timedelta(minutes=city.rng.randrange(0, 13 * 60))
            pattern = city.rng.choices(["bus", "bus+metro", "metro-cap", "two-buses"], [50, 25, 10, 15])[0]
            if i == 3:  # one rider rides route 09 in the hour the offline validator holds
                start, pattern = _at(self.day, 8, 10), "bus"
            if pattern == "metro-cap":
                for n in range(3):  # three end-to-end rides on 2A: the third is free under the day cap
                    moment = start + timedelta(hours=2 * n)
                    a, b = ("m2a_01", "m2a_12") if n % 2 == 0 else ("m2a_12", "m2a_01")
                    taps += self._metro(rider, "2A", a, b, moment)
                continue
            route = "09" if i == 3 else city.rng.choice(BUSES)
            taps.append(self._bus(rider, route, start))
            if pattern == "bus+metro":
                line, prefix, count = city.rng.choice([("2A", "m2a", 12), ("3", "m3", 8)])
                first, last = city.rng.sample(range(1, count + 1), 2)
                moment = start + timedelta(minutes=city.rng.randrange(20, 55))
                taps += self._metro(rider, line, f"{prefix}_{first:02d}", f"{prefix}_{last:02d}", moment)
            elif pattern == "two-buses":
                taps.append(self._bus(rider, city.rng.choice(BUSES), start + timedelta(hours=8)))
        return taps

    def _bus(self, rider: Rider, route: str, moment: datetime) -> Tap:
        offline = route == "09" and _at(self.day, 8, 0) <= moment < _at(self.day, 9, 0)
        return Tap("bus-09-offline" if offline else f"bus-{route}", _tap(rider, route, None, "in", moment))

    def _metro(self, rider: Rider, line: str, a: str, b: str, moment: datetime) -> list[Tap]:
        gate = f"gate-{line}"
        later = moment + timedelta(minutes=25)
        return [Tap(gate, _tap(rider, line, a, "in", moment)), Tap(gate, _tap(rider, line, b, "out", later))]

    def _upload(self, city: City, gates: dict[str, str], taps: list[Tap]) -> None:
        by_gate: dict[str, list[dict[str, Any]]] = {}
        for tap in taps:
            by_gate.setdefault(tap.validator, []).append(tap.body)
        for gate, bodies in by_gate.items():
            for start in range(0, len(bodies), 1_000):
                answer = city.post(
                    "/v1/transit/taps/batch",
                    {"taps": bodies[start : start + 1_000]},
                    {"Authorization": f"Bearer {gates[gate]}"},
                ).json()
                self.outcomes["taps applied"] += answer["applied"]
                self.outcomes["taps refused"] += len(answer["errors"])

    def _lost_phone(self, city: City, rider: Rider, gate: str) -> None:
        city.post(f"/v1/transit/devices/{rider.device_id}/revoke", {}, rider.headers).raise_for_status()
        screenshot = rider.phone.code(datetime.now(UTC).timestamp() - 120)
        for payload, route in ((rider.phone.code(), "34"), (screenshot, "34")):
            answer = city.post(
                "/v1/transit/validate",
                {"payload": b64url(payload), "route_id": route},
                {"Authorization": f"Bearer {gate}"},
            ).json()
            self.outcomes[f"online check: {answer['reason']}"] += 1

    def _charged(self) -> int:
        with job_session() as session:
            return int(session.scalar(select(func.coalesce(func.sum(FareDay.charged_amount), 0))) or 0)

    def summarize(self, city: City) -> list[RenderableType]:
        """The day's rides, what they cost and why, and how the money moved."""
        with job_session() as session:
            trips = session.scalar(select(func.count()).select_from(TransitTrip))
            reasons: Counter[str] = Counter()
            for (found,) in session.execute(select(TransitTrip.reasons)):
                reasons.update({r["kind"] for r in found} - {"fare"})
            charges = session.execute(
                select(FareCharge.kind, func.count(), func.sum(FareCharge.amount)).group_by(FareCharge.kind)
            ).all()
            owed = session.scalar(
                select(func.coalesce(func.sum(FareDay.total_amount - FareDay.charged_amount), 0)).where(
                    FareDay.closed, FareDay.total_amount > FareDay.charged_amount
                )
            )
            rejected = session.execute(
                select(TransitTap.result, func.count())
                .where(TransitTap.result != "accepted")
                .group_by(TransitTap.result)
            ).all()
            passes = session.scalar(select(func.count()).select_from(TransitPass))
        table = Table("transit", "count", "amount (VND)", title=f"Transit on {self.day.isoformat()}")
        table.add_row("trips priced", str(trips), "")
        for kind in ("concession", "transfer", "cap", "pass"):
            table.add_row(f"trips with a {kind}", str(reasons[kind]), "")
        for kind, count, amount in charges:
            table.add_row(f"fare {kind}s", str(count), f"{int(amount):,}")
        table.add_row("passes sold", str(passes), "")
        table.add_row("owed (wallets short)", "", f"{int(owed or 0):,}")
        for result, count in rejected:
            table.add_row(f"taps rejected: {result}", str(count), "")
        for outcome, count in sorted(self.outcomes.items()):
            if outcome != "passes":
                table.add_row(outcome, str(count), "")
        return [table]


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HANOI)


def _tap(rider: Rider, route: str, stop: str | None, direction: str, moment: datetime) -> dict[str, Any]:
    code = rider.phone.code(moment.timestamp())
    return {
        "id": new_id("tap"),
        "route_id": route,
        "stop_id": stop,
        "direction": direction,
        "tapped_at": moment.astimezone(UTC).isoformat(),
        "payload": base64.urlsafe_b64encode(code).rstrip(b"=").decode(),
        "result": "accepted",
    }
