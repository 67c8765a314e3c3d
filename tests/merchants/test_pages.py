"""The vendor's, the parent's and the school accountant's pages in headless Chromium: a payment made by
the bank's webhook appears on an open vendor page and is announced aloud; a parent links a child and
pays; an accountant reads collection by class and imports a file with bad rows."""

import re
import time

from playwright.sync_api import expect

from tests.conftest import screenshot, sign_in
from tests.factories import PASSWORD, make_merchant, make_staff, make_user, make_wallet
from tests.merchants.conftest import drain, transfer
from tests.merchants.helpers import make_stall
from tests.merchants.tuition_helpers import generate, make_school

# The browser's speech is recorded, not played: what the page asked to say, and in which language.
RECORD_SPEECH = """
window.__spoken = [];
window.speechSynthesis.speak = (utterance) => window.__spoken.push([utterance.text, utterance.lang]);
"""


def wait_until_loaded(image) -> None:
    """Wait until the image has arrived (the page's CSP forbids the eval that wait_for_function uses)."""
    for _ in range(100):
        if image.evaluate("img => img.complete && img.naturalWidth > 0"):
            return
        time.sleep(0.05)
    raise AssertionError("the image did not load")


def wait_for_feed(page) -> None:
    expect(page.locator("#feed-status")).to_have_text(re.compile("Đã kết nối"))


class TestVendorPage:
    def test_a_payment_by_the_banks_webhook_appears_and_is_announced_on_the_open_page(self, page, api):
        vendor = make_merchant(fee_bps=50)
        stall = make_stall(vendor)
        cashier = make_staff(vendor, "cashier", email="thu.ngan@example.vn")
        page.add_init_script(RECORD_SPEECH)
        sign_in(page, cashier.email, PASSWORD, "/vendor")
        expect(page.get_by_role("heading", level=1)).to_have_text("Rau sạch cô Lan")
        wait_for_feed(page)
        page.get_by_role("button", name="Bật đọc thông báo").click()
        expect(page.get_by_role("button", name="Đang bật đọc thông báo")).to_have_attribute(
            "aria-pressed", "true"
        )

        page.get_by_label("Số tiền (đồng)").fill("45000")
        page.get_by_role("button", name="Hiện mã").click()
        note = page.locator("#sale-text")
        expect(note).to_contain_text("45.000 ₫")
        reference = re.search(r"HP[0-9A-Z]{16}", note.inner_text()).group(0)
        code = page.get_by_role("img", name="Mã VietQR của lần bán này")
        expect(code).to_be_visible()
        wait_until_loaded(code)
        screenshot(page, "merchants-vendor-sale-code")

        assert transfer(api, 45_000, f"MBVCB.1 {reference} mua rau").json()["status"] == "applied"
        drain()
        expect(page.locator("#announcement")).to_have_text("Đã nhận 45.000 đồng")
        expect(page.locator("#today-total")).to_have_text("45.000 ₫")
        expect(page.locator("#today-count")).to_have_text("1")
        expect(page.locator("#feed li").first).to_contain_text("45.000 ₫")
        assert page.evaluate("window.__spoken") == [["Đã nhận 45.000 đồng", "vi-VN"]]

        transfer(api, 30_000, "chuyen khoan", account=stall.collection_account)
        drain()
        expect(page.locator("#announcement")).to_have_text("Có chuyển khoản 30.000 đồng, chờ xác nhận")
        waiting = page.locator("#waiting li")
        expect(waiting).to_have_count(1)
        screenshot(page, "merchants-vendor-transfer-waiting")
        waiting.get_by_role("button", name="Xác nhận").click()
        expect(page.locator("#waiting li")).to_have_count(0)
        drain()
        expect(page.locator("#today-total")).to_have_text("75.000 ₫")
        expect(page.locator("#announcement")).to_have_text("Đã nhận 30.000 đồng")
        screenshot(page, "merchants-vendor-feed")

    def test_the_page_is_for_stall_staff_only(self, page):
        customer = make_user(email="khach@example.vn")
        sign_in(page, customer.email, PASSWORD, "/")
        response = page.goto("/vendor")
        assert response is not None
        assert response.status == 403
        accountant = make_staff(make_merchant(), "accountant", email="ke.toan@example.vn")
        page.context.clear_cookies()
        sign_in(page, accountant.email, PASSWORD, "/")
        response = page.goto("/vendor")
        assert response is not None
        assert response.status == 403


class TestParentPage:
    def test_a_parent_links_a_child_pays_from_the_wallet_and_gets_the_receipt(self, page, api):
        school = make_school(api, students=1)
        generate(api, school)
        parent = make_user(email="me.an@example.vn")
        make_wallet(parent, balance=3_000_000)
        sign_in(page, parent.email, PASSWORD, "/tuition")
        expect(page.get_by_role("heading", name="Học phí", level=1)).to_be_visible()
        page.get_by_label("Mã học sinh").fill("HS0000")
        page.get_by_label("Ngày sinh").fill("2014-03-01")
        page.get_by_role("button", name="Thêm", exact=True).click()
        expect(page.get_by_role("heading", name="Nguyễn Văn An")).to_be_visible()
        expect(page.locator(".badge")).to_have_text("Chưa trả")
        page.get_by_role("button", name="Chuyển khoản ngân hàng (VietQR)").click()
        qr = page.get_by_role("img", name=re.compile("Mã VietQR của hóa đơn HD"))
        expect(qr).to_be_visible()
        wait_until_loaded(qr)
        screenshot(page, "merchants-parent-invoice")
        page.get_by_role("button", name="Trả 2.250.000 ₫ từ ví của tôi").click()
        expect(page.locator(".badge")).to_have_text("Đã trả đủ")
        receipt = page.get_by_role("link", name="Biên lai (PDF)")
        href = receipt.get_attribute("href")
        assert href is not None
        assert page.request.get(href).headers["content-type"] == "application/pdf"
        screenshot(page, "merchants-parent-paid")

    def test_a_wrong_birth_date_is_said_in_vietnamese(self, page, api):
        make_school(api, students=1)
        parent = make_user(email="bo.an@example.vn")
        sign_in(page, parent.email, PASSWORD, "/tuition")
        page.get_by_label("Mã học sinh").fill("HS0000")
        page.get_by_label("Ngày sinh").fill("2014-03-02")
        page.get_by_role("button", name="Thêm", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("Không thực hiện được")


class TestSchoolPage:
    def test_the_accountant_sees_collection_by_class_and_imports_a_file_with_bad_rows(
        self, page, api, tmp_path
    ):
        school = make_school(api, students=4)
        generate(api, school)
        accountant = make_staff(school.merchant, "accountant", email="ketoan@thcs.edu.vn")
        sign_in(page, accountant.email, PASSWORD, "/school")
        table = page.get_by_role("table", name="Tình hình thu theo lớp, 2026-2027 HK1")
        expect(table.get_by_role("row")).to_have_count(3)
        expect(table.get_by_role("row", name=re.compile("6A1"))).to_contain_text("4.500.000 ₫")
        export = page.get_by_role("link", name="Xuất tệp CSV").get_attribute("href")
        assert export is not None
        assert page.request.get(export).text().startswith("class,students,paid")
        bad = tmp_path / "hoc-sinh.csv"
        bad.write_text(
            "student_code,full_name,class,date_of_birth,guardian_name,guardian_phone,guardian_email\n"
            "HS0100,Phạm Thị Hoa,7A1,2013-02-03,,,\n"
            "HS0100,Vũ Minh Khôi,7A1,2013-13-03,,,\n",
            encoding="utf-8",
        )
        page.get_by_label("Tệp CSV", exact=True).set_input_files(str(bad))
        page.get_by_role("button", name="Nhập", exact=True).click()
        errors = page.get_by_role("table", name="Các dòng cần sửa")
        expect(errors.get_by_role("row")).to_have_count(3)
        expect(errors).to_contain_text("HS0100 đã có ở dòng 2")
        expect(page.locator("#import-result")).to_have_text("Tệp chưa được nhập: có 2 lỗi cần sửa.")
        screenshot(page, "merchants-school-import-refused")
        good = tmp_path / "hoc-sinh-dung.csv"
        good.write_text(
            "student_code,full_name,class,date_of_birth,guardian_name,guardian_phone,guardian_email\n"
            "HS0100,Phạm Thị Hoa,7A1,2013-02-03,,,\n",
            encoding="utf-8",
        )
        page.get_by_label("Tệp CSV", exact=True).set_input_files(str(good))
        page.get_by_role("button", name="Nhập", exact=True).click()
        expect(page.locator("#import-result")).to_have_text("Đã nhập: 1 dòng.")
        screenshot(page, "merchants-school-collection")
