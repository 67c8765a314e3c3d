"""Search against a brute-force distance computation; the operator's data API and CLI; spot states from
sensors; attendants' look-ups and violations; the daily report read from the ledger."""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from city.cli import app as hanoipay
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.localtime import HANOI
from parking import loader
from parking.exceptions import InvalidTariffFile
from parking.geo import distance_m
from parking.models import ParkingSession, Spot, Zone
from parking.service.search import search
from tests.factories import ADMIN, auth, make_merchant, make_user
from tests.parking.conftest import Driver, load
from tests.parking.test_sessions import end_at

SAMPLE = Path("parking/data/hanoi.yaml")
CENTRE = (21.0285, 105.8542)


def scatter(merchant_id: str, zones: int, rng: random.Random) -> list[tuple[str, float, float, int]]:
    """Random zones within ~6 km of the centre, each with 0–3 free car spots; (code, lat, lon, free)."""
    made = []
    with job_session() as session:
        for i in range(zones):
            lat, lon = CENTRE[0] + rng.uniform(-0.05, 0.05), CENTRE[1] + rng.uniform(-0.05, 0.05)
            zone_id, free = new_id("pz"), rng.randrange(4)
            session.execute(
                insert(Zone).values(
                    id=zone_id,
                    merchant_id=merchant_id,
                    code=f"R{i:04d}",
                    name=f"Random {i}",
                    kind="street",
                    street="Random",
                    street_key="random",
                    district="Test",
                    address="Test",
                    lat=lat,
                    lon=lon,
                    geometry={"type": "LineString", "coordinates": [[lat, lon], [lat, lon]]},
                    max_duration_minutes=480,
                    grace_minutes=5,
                    reminder_minutes=10,
                    unused_time_rule="release",
                    sample=True,
                )
            )
            for s in range(free + 1):
                session.execute(
                    insert(Spot).values(
                        id=new_id("spt"),
                        zone_id=zone_id,
                        code=f"C{s}",
                        vehicle_type="car",
                        lat=lat,
                        lon=lon,
                        state="free" if s < free else "occupied",
                        state_source="test",
                        state_changed_at=datetime.now(UTC),
                    )
                )
            made.append((f"R{i:04d}", lat, lon, free))
    return made


class TestSearch:
    def test_results_equal_a_brute_force_distance_computation(self, database_url):
        operator = make_merchant(kind="parking_operator")
        load(operator)  # the flat tariff, so every random zone can be priced
        zones = scatter(operator.id, 400, random.Random(7))
        with job_session() as session:
            tariffs, links = (
                ParkingSession.metadata.tables["parking_tariff"],
                ParkingSession.metadata.tables["parking_zone_tariff"],
            )
            car = session.scalar(select(tariffs.c.id).where(tariffs.c.code == "T-CAR"))
            randoms = session.scalars(select(Zone.id).where(Zone.code.like("R%"))).all()
            session.execute(
                insert(links), [{"zone_id": z, "vehicle_type": "car", "tariff_id": car} for z in randoms]
            )

        with job_session() as session:  # the flat test zones too: the search must not tell them apart
            free = func.count().filter(Spot.state == "free", Spot.vehicle_type == "car")
            every_zone = session.execute(
                select(Zone.code, Zone.lat, Zone.lon, free)
                .join(Spot, Spot.zone_id == Zone.id)
                .group_by(Zone.id)
            ).all()
        assert len(every_zone) == len(zones) + 3

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            lat=st.floats(CENTRE[0] - 0.05, CENTRE[0] + 0.05),
            lon=st.floats(CENTRE[1] - 0.05, CENTRE[1] + 0.05),
            radius=st.integers(1, 5_000),
            limit=st.integers(1, 50),
        )
        def agrees(lat, lon, radius, limit):
            expected = sorted(
                (distance_m(lat, lon, zlat, zlon), code)
                for code, zlat, zlon, free in every_zone
                if free > 0 and distance_m(lat, lon, zlat, zlon) <= radius
            )[:limit]
            with job_session() as session:
                hits = search(
                    session,
                    vehicle_type="car",
                    duration_minutes=60,
                    lat=lat,
                    lon=lon,
                    radius_m=radius,
                    limit=limit,
                )
            assert [h.zone["code"] for h in hits] == [code for _, code in expected]
            for hit, (distance, _) in zip(hits, expected, strict=True):
                assert abs(hit.distance_m - distance) < 1e-6
            assert all(h.priced.amount == 10_000 for h in hits)

        agrees()

    def test_search_by_street_and_zone_code_and_the_limits(self, api, operator):
        driver = Driver(api)
        by_street = driver.get("/v1/parking/search", street="lý thường kiệt").json()["data"]
        assert [h["zone"]["code"] for h in by_street] == ["Z-MAIN"]
        by_code = driver.get("/v1/parking/search", zone_code="Z-ONE", duration_minutes=90).json()["data"]
        assert (by_code[0]["free_spots"], by_code[0]["quote"]["amount"], by_code[0]["distance_m"]) == (
            1,
            20_000,
            None,
        )
        driver.park("Z-ONE")
        assert driver.get("/v1/parking/search", zone_code="Z-ONE").json()["data"] == []  # live availability
        too_long = driver.get("/v1/parking/search", zone_code="Z-MAIN", duration_minutes=300).json()["data"]
        assert too_long == []  # Z-MAIN takes at most 240 minutes
        for params, code in (
            ({"lat": 91, "lon": 105.85}, "validation_error"),
            ({"lat": 21.02, "lon": 181}, "validation_error"),
            ({"lat": 21.02, "lon": 105.85, "radius_m": 5_001}, "validation_error"),
            ({"lat": 21.02}, "invalid_search"),
            ({}, "invalid_search"),
            ({"street": "x", "duration_minutes": 0}, "validation_error"),
        ):
            answer = driver.get("/v1/parking/search", **params)
            assert (answer.status_code, answer.json()["code"]) == (422, code), params


class TestOperatorData:
    def test_the_sample_loads_through_the_api_and_a_bad_file_changes_nothing(self, api):
        operator = make_merchant(kind="parking_operator")
        staff = auth(make_user(["operator"], merchant_id=operator.id))
        document = json.dumps({"tariffs": [], "zones": []})
        assert (
            api.post(
                "/v1/parking/data", content=document, headers=staff | {"content-type": "application/json"}
            ).json()["zones"]
            == 0
        )
        sample = json.dumps(__import__("yaml").safe_load(SAMPLE.read_text()), default=str, indent=2)
        loaded = api.post(
            "/v1/parking/data", content=sample, headers=staff | {"content-type": "application/json"}
        )
        assert loaded.status_code == 200, loaded.text
        assert (loaded.json()["zones"], loaded.json()["spots_added"]) == (11, 284)
        again = api.post(
            "/v1/parking/data", content=sample, headers=staff | {"content-type": "application/json"}
        )
        assert (again.json()["versions_added"], again.json()["spots_added"]) == (
            0,
            0,
        )  # loading twice is harmless
        broken = sample.replace(
            '"end": "06:00",\n              "turn": 8000', '"end": "05:00",\n              "turn": 8000'
        )
        assert broken != sample
        refused = api.post(
            "/v1/parking/data", content=broken, headers=staff | {"content-type": "application/json"}
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_parking_data"
        assert refused.json()["problems"][0]["path"] == "tariffs[3].versions[0].bands[0]"
        assert isinstance(refused.json()["problems"][0]["line"], int)
        customer = api.post(
            "/v1/parking/data",
            content=document,
            headers=auth(make_user()) | {"content-type": "application/json"},
        )
        assert customer.json()["code"] == "role_not_allowed"
        zones = api.get("/v1/parking/zones", headers=staff).json()
        ltk = next(z for z in zones if z["code"] == "HK-LTK-02")
        assert ltk["total_spots"] == {"car": 16, "motorbike": 20}
        assert ltk["geometry"]["type"] == "LineString"

    def test_prices_follow_the_version_in_force_when_the_stay_starts(self, api):
        operator = make_merchant(kind="parking_operator")
        with job_session() as session:
            from parking import loader
            from parking.service import catalog

            catalog.load_data(session, ADMIN, loader.check(SAMPLE.read_text()), operator.id)
        with job_session() as session:

            def price_at(text):
                hits = search(
                    session,
                    vehicle_type="car",
                    duration_minutes=180,
                    zone_code="HK-LTK-01",
                    arrival=datetime.fromisoformat(text).replace(tzinfo=HANOI),
                )
                return hits[0].priced.amount, hits[0].version.decision_ref

            assert price_at("2026-12-30 10:00") == (55_000, "44/2017/QĐ-UBND")
            assert price_at("2027-01-04 10:00") == (
                65_000,
                "SAMPLE-2027 (a made-up later decision, to show versions)",
            )

    def test_the_cli_loads_a_file_and_refuses_a_broken_one_naming_the_line(self, tmp_path):
        runner = CliRunner()
        ok = runner.invoke(hanoipay, ["parking", "load", str(SAMPLE), "--check"])
        assert ok.exit_code == 0
        assert "11 zones" in ok.output
        broken = tmp_path / "broken.yaml"
        broken.write_text(SAMPLE.read_text().replace('end: "06:00", turn: 8000', 'end: "05:00", turn: 8000'))
        refused = runner.invoke(hanoipay, ["parking", "load", str(broken), "--check"])
        line = (
            SAMPLE.read_text()
            .splitlines()
            .index('          - {name: day, start: "06:00", end: "18:00", turn: 5000}')
            + 1
        )
        assert refused.exit_code == 1
        assert (
            f"broken.yaml:line {line}: tariffs[3].versions[0].bands[0]: gap from 05:00 to 06:00"
            in refused.output.replace("\n", "")
        )


class TestSpotsAndEnforcement:
    def test_sensor_events_change_availability_at_once_but_never_end_a_session(
        self, api, operator, attendant
    ):
        driver = Driver(api)
        spot = api.get("/v1/parking/zones/Z-ONE/spots", headers=driver.headers).json()[0]["id"]
        sensor = lambda state: api.post(  # noqa: E731
            f"/v1/parking/spots/{spot}/state",
            json={"state": state, "source": "sensor"},
            headers=auth(attendant),
        )
        assert sensor("occupied").json()["state"] == "occupied"
        assert driver.get("/v1/parking/search", zone_code="Z-ONE").json()["data"] == []
        sensor("free")
        started = driver.park("Z-ONE")
        said = sensor("free").json()
        assert (said["state"], said["open_session_id"]) == ("occupied", started["id"])
        other = auth(make_user(["operator"], merchant_id=make_merchant(kind="parking_operator").id))
        assert (
            api.post(
                f"/v1/parking/spots/{spot}/state", json={"state": "free", "source": "sensor"}, headers=other
            ).status_code
            == 404
        )
        assert sensor("sideways").json()["code"] == "validation_error"

    def test_lookups_violations_and_other_operators(self, api, operator, attendant):
        driver = Driver(api)

        def look(plate, who=attendant):
            return api.get(f"/v1/parking/enforcement/plates/{plate}", headers=auth(who))

        assert look("30A-123.45").json()["status"] == "no_session"
        started = driver.park(minutes=60)
        paid = look("30a 123.45").json()
        assert (paid["status"], paid["paid_until"], paid["zone_code"]) == (
            "paid",
            started["covered_until"],
            "Z-MAIN",
        )
        violation = {
            "plate": "30A-123.45",
            "zone_code": "Z-MAIN",
            "kind": "no_session",
            "photo_ref": "s3://photos/1.jpg",
        }
        refused = api.post("/v1/parking/violations", json=violation, headers=auth(attendant))
        assert (refused.status_code, refused.json()["code"]) == (409, "session_paid")
        recorded = api.post(
            "/v1/parking/violations", json=violation | {"plate": "51G-888.88"}, headers=auth(attendant)
        )
        assert recorded.status_code == 201
        assert recorded.json()["plate"] == "51G-888.88"
        assert [
            v["id"] for v in api.get("/v1/parking/violations", headers=auth(attendant)).json()["data"]
        ] == [recorded.json()["id"]]
        stranger = make_user(["operator"], merchant_id=make_merchant(kind="parking_operator").id)
        assert look("30A-123.45", stranger).json()["status"] == "no_session"  # not their zone: nothing leaks
        assert look("30A-123.45", make_user()).json()["code"] == "role_not_allowed"
        assert look("not-a-plate").json()["code"] == "invalid_plate"
        bad = api.post("/v1/parking/violations", json=violation | {"photo_ref": ""}, headers=auth(attendant))
        assert bad.json()["code"] == "validation_error"


class TestReports:
    def test_occupancy_and_revenue_per_zone_per_day_from_the_ledger(self, api, operator, attendant):
        driver = Driver(api)
        one = driver.park("Z-MAIN", minutes=120, plate="30A-100.01")
        end_at(driver, one["id"], 50)  # 10 000 captured
        two = driver.park("Z-KEEP", minutes=120, plate="30A-100.02")
        end_at(driver, two["id"], 30)  # keeps the prepayment: 20 000
        driver.park("Z-MAIN", minutes=60, plate="30A-100.03")  # still held: no revenue yet
        today = datetime.now(UTC).astimezone(HANOI).date()
        report = api.get(
            "/v1/parking/reports/daily",
            params={"from": str(today - timedelta(days=1)), "to": str(today)},
            headers=auth(attendant),
        ).json()["data"]
        rows = {(r["zone_code"], r["day"]): r for r in report}
        main, keep = rows["Z-MAIN", str(today)], rows["Z-KEEP", str(today)]
        assert (main["sessions"], main["gross_amount"], main["net_amount"]) == (2, 10_000, 10_000 - 150)
        assert (keep["sessions"], keep["gross_amount"], keep["net_amount"]) == (1, 20_000, 20_000 - 300)
        assert main["spots"] == 8
        assert 0 < main["occupancy"] < 1
        assert rows["Z-ONE", str(today)]["sessions"] == 0
        assert rows["Z-MAIN", str(today - timedelta(days=1))]["gross_amount"] == 0
        too_long = api.get(
            "/v1/parking/reports/daily",
            params={"from": "2026-01-01", "to": "2026-12-31"},
            headers=auth(attendant),
        )
        assert too_long.json()["code"] == "invalid_search"


class TestUnstorableText:
    def test_nul_and_unpaired_surrogates_are_refused_before_they_reach_postgresql(
        self, api, operator, attendant
    ):
        violation = {"plate": "51G-888.88", "zone_code": "Z-MAIN", "kind": "other", "photo_ref": "p/1.jpg"}
        for field, value in (
            ("note", "a\u0000b"),
            ("photo_ref", "p/\ud800.jpg"),
            ("plate", "30A-123.4\udc00"),
        ):
            answer = api.post(  # json.dumps escapes a surrogate as \\udXXX, as a client would send it
                "/v1/parking/violations",
                content=json.dumps(violation | {field: value}),
                headers=auth(attendant) | {"content-type": "application/json"},
            )
            assert (answer.status_code, answer.json()["code"]) == (422, "invalid_characters"), field
        driver = Driver(api)
        assert driver.get("/v1/parking/search", street="Tr\u0000").json()["code"] == "invalid_characters"
        assert api.get("/v1/parking/violations", headers=auth(attendant)).json()["data"] == []

    def test_a_data_file_with_unstorable_text_is_refused_naming_the_path_and_line(self):
        text = '{"tariffs": [],\n "operator": {"name": "x\\ud800", "fee_bps": 1}}'
        with pytest.raises(InvalidTariffFile) as refused:
            loader.check(text)
        assert refused.value.extra["problems"] == [
            {"path": "operator.name", "line": 2, "message": "holds a NUL or an unpaired surrogate character"}
        ]
