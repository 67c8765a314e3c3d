"""The driver's and the attendant's pages in headless Chromium, as a person uses them; a screenshot each."""

from itertools import combinations

from playwright.sync_api import expect

from tests.conftest import screenshot, sign_in
from tests.factories import PASSWORD, make_user, make_wallet
from tests.parking.conftest import Driver


def test_a_driver_searches_parks_extends_ends_and_reads_the_receipt(page, operator):
    driver = make_user(email="an@example.vn")
    make_wallet(driver, balance=200_000)
    sign_in(page, driver.email, PASSWORD, "/parking")
    expect(page.get_by_role("heading", name="Tìm chỗ đỗ xe", level=1)).to_be_visible()
    expect(page.locator("#map .zone")).to_have_count(3)  # the streets, drawn with no map server
    labels = page.locator("#map .zone-label")
    expect(labels).to_have_count(3)  # one per zone, none left out: there is room near each
    boxes = [box for i in range(3) if (box := labels.nth(i).bounding_box()) is not None]
    assert len(boxes) == 3
    for a, b in combinations(boxes, 2):
        apart = (
            a["x"] + a["width"] <= b["x"]
            or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"]
            or b["y"] + b["height"] <= a["y"]
        )
        assert apart, (a, b)  # no label covers another
    page.get_by_label("Tên phố").fill("Lý Thường Kiệt")
    page.get_by_role("button", name="Tìm theo tên phố").click()
    results = page.locator(".result")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Main street")
    expect(results.first).to_contain_text("5 chỗ trống")
    screenshot(page, "parking-driver-search")
    page.get_by_role("button", name="Đỗ ở đây").click()
    page.get_by_label("Biển số xe").fill("30a 123.45")
    page.get_by_role("button", name="Xem giá").click()
    expect(page.locator("#quote")).to_contain_text("10.000 ₫")
    page.get_by_role("button", name="Thanh toán và bắt đầu").click()
    session = page.locator("article.session")
    expect(session).to_contain_text("30A-123.45")
    expect(session).to_contain_text("Đã trả tiền")
    expect(session).to_contain_text("10.000 ₫")
    screenshot(page, "parking-driver-session")
    page.get_by_label("Thêm giờ").select_option("60")
    page.get_by_role("button", name="Gia hạn").click()
    expect(session).to_contain_text("20.000 ₫")
    page.get_by_role("button", name="Kết thúc đỗ xe ngay").click()
    expect(page.locator("article.session")).to_have_count(0)
    page.get_by_role("link", name="30A-123.45").click()
    expect(page.get_by_role("heading", name="Biên lai đỗ xe")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Main street")
    expect(page.locator("dl.facts")).to_contain_text("TEST-1")
    screenshot(page, "parking-driver-receipt")


def test_the_driver_page_in_english_and_a_refusal_said_on_the_page(page, operator):
    driver = make_user(email="binh@example.vn")
    make_wallet(driver, balance=5_000)
    sign_in(page, driver.email, PASSWORD, "/parking?lang=en")
    expect(page.get_by_role("heading", name="Find parking", level=1)).to_be_visible()
    page.get_by_label("Licence plate").fill("30A-555.55")
    page.get_by_role("button", name="Get a price").click()
    page.get_by_role("button", name="Pay and start").click()
    expect(page.get_by_role("alert")).to_contain_text("available balance")  # 5 000 ₫ cannot hold 10 000
    screenshot(page, "parking-driver-en-refused")


def test_an_attendant_checks_plates_and_records_a_violation(page, api, operator, attendant):
    Driver(api).park(plate="30A-123.45")
    sign_in(page, attendant.email, PASSWORD, "/parking/attendant")
    lookup = page.get_by_role("textbox", name="Biển số xe").first
    lookup.fill("30a12345")
    page.get_by_role("button", name="Kiểm tra").click()
    expect(page.locator(".standing")).to_contain_text("Đã trả tiền")
    expect(page.get_by_role("status").last).to_contain_text("Đã trả đến")
    screenshot(page, "parking-attendant-paid")
    expect(page.locator("#v-zone")).to_have_value("Z-MAIN")  # the zone the look-up found
    page.locator("#v-plate").fill("30A-123.45")
    page.get_by_label("Mã ảnh chụp").fill("IMG_0931.jpg")
    page.get_by_role("button", name="Ghi nhận vi phạm này").click()
    expect(page.get_by_role("alert")).to_contain_text("không ghi nhận vi phạm")
    page.locator("#v-plate").fill("51G-888.88")
    page.locator("#v-zone").select_option("Z-MAIN")
    page.get_by_label("Mã ảnh chụp").fill("IMG_0932.jpg")
    page.get_by_role("button", name="Ghi nhận vi phạm này").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã ghi nhận vi phạm.")
    expect(page.get_by_role("heading", name="Vi phạm gần đây").locator("..")).to_contain_text("51G-888.88")
    screenshot(page, "parking-attendant-violation")
    other = make_user()
    sign_in(page, other.email, PASSWORD, "/")
    page.goto("/parking/attendant")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Kiểm tra biển số")  # a 403 page
