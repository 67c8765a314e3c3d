"""The network: GTFS + GTFS-Fares v2 import (the sample Hanoi feed, a zip over HTTP), refusals, keys."""

import base64
import io
import zipfile

import pytest

from hanoipay.settings import get_settings
from tests.factories import auth, make_merchant, make_user
from tests.tickets.conftest import make_gate, make_rider, new_seed
from tickets.credentials import b64url, parse_credential
from tickets.service.network import sample_feed_files


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{name}.txt", data)
    return out.getvalue()


def post_feed(api, admin, merchant, body: bytes):
    return api.post(
        "/v1/transit/feeds",
        params={"merchant_id": merchant.id, "name": "upload"},
        content=body,
        headers=auth(admin) | {"Content-Type": "application/zip"},
    )


class TestImport:
    def test_the_sample_feed_over_http_and_its_products(self, api, database_url):
        admin = make_user(["admin"])
        merchant = make_merchant(kind="transit_operator", fee_bps=0)
        answer = api.post("/v1/transit/feeds/sample", json={"merchant_id": merchant.id}, headers=auth(admin))
        assert answer.status_code == 201, answer.text
        assert answer.json()["counts"] == {
            "agencies": 2,
            "routes": 7,
            "stops": 30,
            "rider_categories": 7,
            "fare_products": 124,
            "fare_leg_rules": 205,
            "fare_transfer_rules": 4,
            "caps": 8,
        }
        products = {p["product_id"]: p for p in api.get("/v1/transit/products", headers=auth(admin)).json()}
        assert products["bus_8000"]["amount"] == 8_000
        assert products["bus_month_all"] == {
            "product_id": "bus_month_all",
            "name": "Vé tháng buýt liên tuyến",
            "amount": 280_000,
            "currency": "VND",
            "pass_validity": "month",
            "caps": True,
        }
        student = {
            p["product_id"]: p["amount"]
            for p in api.get(
                "/v1/transit/products", params={"category_id": "student"}, headers=auth(admin)
            ).json()
        }
        assert (student["m2a_15000"], student["bus_month_09"], student["bus_8000"]) == (7_500, 70_000, 8_000)
        group = {
            p["product_id"]: p["amount"]
            for p in api.get(
                "/v1/transit/products", params={"category_id": "group"}, headers=auth(admin)
            ).json()
        }
        assert (group["bus_month_09"], group["bus_month_all"]) == (100_000, 200_000)
        senior = {
            p["product_id"]: p["amount"]
            for p in api.get(
                "/v1/transit/products", params={"category_id": "senior"}, headers=auth(admin)
            ).json()
        }
        assert senior["bus_20000"] == senior["m2a_15000"] == 0
        second = post_feed(api, admin, merchant, zipped(sample_feed_files()))
        assert second.status_code == 201
        assert api.get("/v1/transit/feed", headers=auth(admin)).json()["id"] == second.json()["id"]

    @pytest.mark.parametrize(
        ("change", "detail"),
        [
            (lambda f: f.pop("routes"), "no routes.txt"),
            (
                lambda f: f.update(fare_products=f["fare_products"].replace(b",8000,", b",8k,", 1)),
                "not whole units",
            ),
            (
                lambda f: f.update(fare_leg_rules=f["fare_leg_rules"] + b"bus,bus_09,,,nothing\n"),
                "unknown fare product",
            ),
            (lambda f: f.update(routes=b"route_short_name\n09\n"), "lacks the column route_id"),
            (lambda f: f.update(stops=b"stop_id,stop_name\n,empty\n"), "stop_id is empty"),
            (lambda f: f.update(agency=b"\xff\xfe"), "not UTF-8"),
            (
                lambda f: f.update(rider_categories=f["rider_categories"].replace(b",1,", b",0,")),
                "exactly one",
            ),
            (lambda f: f.update(hanoipay_caps=b"fare_product_id,validity\nm2a_day,week\n"), "day or month"),
            (lambda f: f.update(stops=b"stop_id,stop_name\nx,a\x00b\n"), "NUL"),
        ],
    )
    def test_a_bad_feed_is_refused_whole_and_the_old_one_stays(self, api, database_url, change, detail):
        admin = make_user(["admin"])
        merchant = make_merchant(kind="transit_operator")
        first = post_feed(api, admin, merchant, zipped(sample_feed_files()))
        files = dict(sample_feed_files())
        change(files)
        answer = post_feed(api, admin, merchant, zipped(files))
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_feed")
        assert detail in answer.json()["detail"]
        assert api.get("/v1/transit/feed", headers=auth(admin)).json()["id"] == first.json()["id"]

    def test_refusals_of_the_import_itself(self, api, database_url):
        admin, customer = make_user(["admin"]), make_user()
        merchant = make_merchant(kind="transit_operator")
        assert post_feed(api, admin, merchant, b"not a zip").json()["code"] == "invalid_feed"
        assert (
            post_feed(api, customer, merchant, zipped(sample_feed_files())).json()["code"]
            == "role_not_allowed"
        )
        missing = api.post("/v1/transit/feeds/sample", json={"merchant_id": "mer_nope"}, headers=auth(admin))
        assert missing.json()["code"] == "merchant_not_found"
        assert api.get("/v1/transit/feed", headers=auth(admin)).json()["code"] == "no_active_feed"
        unknown = api.post(
            "/v1/transit/feeds/sample", json={"merchant_id": merchant.id, "x": 1}, headers=auth(admin)
        )
        assert unknown.status_code == 422


class TestIssuerKeys:
    def test_rotation_keeps_credentials_signed_by_the_old_key_valid_until_their_end(
        self, api, operator, issuer_keys
    ):
        gate = make_gate(api)
        before = make_rider(api)
        assert parse_credential(before.device.credential)[0].kid == "k1"
        settings = get_settings()
        settings.transit_issuer_keys = {"k1": issuer_keys["k1"], "k2": new_seed()}
        settings.transit_issuer_active_kid = "k2"
        keys = api.get("/v1/transit/keys").json()["keys"]
        assert [(k["kid"], k["active"]) for k in keys] == [("k1", False), ("k2", True)]
        after = make_rider(api)
        assert parse_credential(after.device.credential)[0].kid == "k2"
        for rider, route in ((before, "09"), (after, "34")):
            answer = api.post(
                "/v1/transit/validate",
                json={"payload": b64url(rider.device.code()), "route_id": route},
                headers=gate.headers,
            )
            assert answer.json()["accepted"] is True
        refreshed = api.post(
            f"/v1/transit/devices/{before.device_id}/credential", headers=before.headers
        ).json()
        assert refreshed["credential_kid"] == "k2"
        settings.transit_issuer_keys = {"k2": settings.transit_issuer_keys["k2"]}
        stale = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(before.device.code()), "route_id": "90"},
            headers=make_gate(api, "bus-9").headers,
        )
        assert stale.json()["reason"] == "unknown_key"
        before.device.credential = base64.urlsafe_b64decode(refreshed["credential"] + "==")
        fresh = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(before.device.code()), "route_id": "90"},
            headers=make_gate(api, "bus-10").headers,
        )
        assert fresh.json()["accepted"] is True

    def test_a_png_of_the_current_code_only(self, api, operator):
        rider = make_rider(api)
        url = f"/v1/transit/devices/{rider.device_id}/qr.png"
        png = api.get(url, params={"code": b64url(rider.device.code())}, headers=rider.headers)
        assert (png.status_code, png.headers["content-type"], png.content[:4]) == (
            200,
            "image/png",
            b"\x89PNG",
        )
        import time

        old = api.get(
            url, params={"code": b64url(rider.device.code(time.time() - 300))}, headers=rider.headers
        )
        assert old.json()["code"] == "code_not_current"
        assert (
            api.get(url, params={"code": "garbage"}, headers=rider.headers).json()["code"]
            == "code_not_current"
        )
        other = make_rider(api)
        foreign = api.get(url, params={"code": b64url(other.device.code())}, headers=rider.headers)
        assert foreign.json()["code"] == "code_not_current"
        assert (
            api.get(url, params={"code": b64url(rider.device.code())}, headers=other.headers).status_code
            == 404
        )


def test_the_embedded_local_issuer_key_is_made_once_even_by_threads_racing(tmp_path, issuer_keys):
    from concurrent.futures import ThreadPoolExecutor

    from tickets.service.keys import issuer_keys as load_keys

    settings = get_settings()
    saved = (
        settings.transit_issuer_keys,
        settings.transit_issuer_active_kid,
        settings.data_dir,
        settings.database_url,
    )
    settings.transit_issuer_keys, settings.transit_issuer_active_kid, settings.data_dir = {}, None, tmp_path
    settings.database_url = None  # embedded, as `hanoipay serve` runs with nothing configured
    try:
        with ThreadPoolExecutor(8) as pool:
            published = list(pool.map(lambda _: load_keys().public(), range(16)))
        assert len({tuple(sorted(p.items())) for p in published}) == 1
        assert (tmp_path / "transit_issuer_keys.json").stat().st_mode & 0o777 == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["transit_issuer_keys.json"]
    finally:
        (
            settings.transit_issuer_keys,
            settings.transit_issuer_active_kid,
            settings.data_dir,
            settings.database_url,
        ) = saved
