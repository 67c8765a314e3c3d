"""The rider's page and the validator's page in headless Chromium: a code the rider page shows (signed in
the browser with a WebCrypto Ed25519 key that cannot be exported) is accepted by the validator page,
offline from what it synced, and the same code again is rejected as already scanned."""

import time
from datetime import timedelta

from sqlalchemy import select

from hanoipay.db import job_session
from tests.conftest import screenshot, sign_in
from tests.factories import ADMIN, PASSWORD, make_user, make_wallet
from tests.tickets.conftest import at, drain, make_gate, make_rider, tap, today, upload
from tickets.credentials import from_b64url
from tickets.models import TransitDevice, TransitTap
from tickets.service.validators import register_validator
from tickets.validator import Reason, Validator


def test_a_code_from_the_rider_page_is_accepted_by_the_validator_page_once(
    page, browser, live_server, operator
):
    rider = make_user(email="mai@example.vn")
    make_wallet(rider, balance=200_000)
    sign_in(page, rider.email, PASSWORD, "/transit")
    screenshot(page, "tickets-rider-no-card")
    page.get_by_role("button", name="Mở thẻ").click()
    page.get_by_role("button", name="Dùng điện thoại này cho thẻ").click()
    code_text = page.get_by_label("Mã dạng chữ (để dán vào máy soát vé)")
    code_text.wait_for()
    page.wait_for_function("() => document.getElementById('code-text').value.length > 200")
    page.wait_for_function("() => document.getElementById('code-image').complete")
    code = code_text.input_value()
    assert page.get_by_role("img", name="Mã QR vé của bạn, thay đổi sau vài giây").is_visible()
    # The key pair was made in the browser and its private half cannot leave it.
    extractable = page.evaluate(
        """async () => {
            const db = await new Promise((ok) => {
                const r = indexedDB.open("hanoipay-transit", 1);
                r.onsuccess = () => ok(r.result);
            });
            const all = await new Promise((ok) => {
                const r = db.transaction("devices").objectStore("devices").getAll();
                r.onsuccess = () => ok(r.result);
            });
            return all.map((d) => [d.key.algorithm.name, d.key.extractable, d.key.type]);
        }"""
    )
    assert extractable == [["Ed25519", False, "private"]]
    with job_session() as session:
        device = session.scalars(select(TransitDevice)).one()
        issuer = {
            k: v for k, v in __import__("tickets.service.keys", fromlist=["x"]).issuer_keys().public().items()
        }

    assert Validator(issuer).check(from_b64url(code), time.time()).reason == Reason.ACCEPTED
    assert device.status == "active"
    screenshot(page, "tickets-rider-live-code")

    with job_session() as session:
        _, secret = register_validator(session, ADMIN, name="Bus 09 front door", vehicle_id="bus-29B-10001")
    gate = browser.new_context(
        base_url=live_server.url, locale="vi-VN", viewport={"width": 390, "height": 844}
    )
    validator = gate.new_page()
    try:
        validator.goto("/transit/validator")
        validator.get_by_label("Thông tin xác thực máy soát vé").fill(secret)
        validator.get_by_role("button", name="Đồng bộ khóa và danh sách chặn").click()
        validator.get_by_text("Đã đồng bộ 1 khóa").wait_for()
        validator.context.set_offline(True)  # what it synced is enough
        validator.get_by_label("Dán mã").fill(code)
        validator.get_by_role("button", name="Kiểm tra").click()
        decision = validator.locator("#decision")
        validator.wait_for_function("() => document.getElementById('decision').dataset.reason !== undefined")
        assert decision.get_attribute("data-reason") == "accepted"
        assert decision.inner_text() == "Hợp lệ"
        screenshot(validator, "tickets-validator-accepted")
        validator.get_by_role("button", name="Kiểm tra").click()
        validator.wait_for_function(
            "document.getElementById('decision').dataset.reason === 'already_scanned'"
        )
        assert decision.inner_text() == "Từ chối: Đã quét trên xe này"
        screenshot(validator, "tickets-validator-already-scanned")
        validator.get_by_label("Dán mã").fill(code[:-8] + "AAAAAAAA")
        validator.get_by_role("button", name="Kiểm tra").click()
        validator.wait_for_function(
            "() => document.getElementById('decision').dataset.reason === 'bad_signature'"
        )
        validator.context.set_offline(False)
        validator.get_by_role("button", name="Gửi lượt quẹt").click()
        validator.get_by_text("Đã gửi 3 lượt quẹt").wait_for()
    finally:
        gate.close()
    with job_session() as session:
        results = sorted(session.scalars(select(TransitTap.result)).all())
    assert results == ["accepted", "already_scanned", "bad_signature"]


def test_a_lost_phone_is_revoked_from_the_rider_page(page, operator):
    rider = make_user(email="hoa@example.vn")
    make_wallet(rider, balance=50_000)
    sign_in(page, rider.email, PASSWORD, "/transit")
    page.get_by_role("button", name="Mở thẻ").click()
    page.get_by_role("button", name="Dùng điện thoại này cho thẻ").click()
    page.wait_for_function("() => document.getElementById('code-text').value.length > 200")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Mất điện thoại: thu hồi").click()
    page.get_by_text("đã thu hồi").wait_for()
    with job_session() as session:
        assert session.scalars(select(TransitDevice.status)).all() == ["revoked"]
    screenshot(page, "tickets-rider-phone-revoked")


def test_the_rider_page_in_english_with_a_pass_on_sale(page, operator):
    rider = make_user(email="lan.en@example.vn")
    make_wallet(rider, balance=300_000)
    sign_in(page, rider.email, PASSWORD, "/transit?lang=en")
    page.get_by_role("button", name="Open a card").click()
    page.get_by_label("Buy a pass").select_option("bus_month_all")
    page.get_by_role("button", name="Buy from my wallet").click()
    page.get_by_text("bus_month_all ·").wait_for()
    assert page.get_by_role("heading", name="Trips and what each cost").is_visible()
    screenshot(page, "tickets-rider-pass-bought-en")


def test_the_rider_page_explains_each_priced_trip(page, api, operator, redis_url):
    """A bus ride then a metro ride within the transfer window: each trip, its fare and why."""
    day = today() - timedelta(days=1)
    rider = make_rider(api, issued_at=at(day, "06:00"))
    gate = make_gate(api)
    taps = [
        tap(rider, "09", at(day, "08:00"), "b09_boho"),
        tap(rider, "2A", at(day, "08:30"), "m2a_01"),
        tap(rider, "2A", at(day, "08:50"), "m2a_05", "out"),
    ]
    assert upload(api, gate, taps).json()["applied"] == 3
    drain(redis_url)
    sign_in(page, rider.user.email, PASSWORD, "/transit?lang=en")
    trips = page.locator("ul.trips > li")
    assert trips.count() == 2
    assert "Single fare: bus_8000" in trips.nth(0).inner_text() + trips.nth(1).inner_text()
    assert page.get_by_text("Transfer discount").is_visible()
    screenshot(page, "tickets-rider-trips-en")
