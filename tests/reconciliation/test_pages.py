"""The finance page in headless Chromium: upload a statement, watch the run finish, resolve a case."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from hanoipay.db import job_session
from payments.models import PaymentIntent
from payments.providers.vietqr import reference_for
from tests.conftest import screenshot, sign_in
from tests.factories import PASSWORD, make_user, start_worker, stop_worker
from tests.reconciliation.conftest import bank_says, statement_csv, vietqr_intent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(database_url, redis_url):
    """A real `hanoipay worker` process, as the finance page's runs are done in production."""
    process = start_worker(database_url, redis_url)
    yield process
    stop_worker(process)


def test_finance_uploads_a_statement_watches_the_run_finish_and_resolves_a_case(
    page, live_server, worker, merchant, tmp_path
):
    paid = vietqr_intent(merchant, 85_000)
    lost = vietqr_intent(merchant, 120_000)
    now = datetime.now(UTC)
    bank_says("FT-PAGE-1", 85_000, f"MBVCB {reference_for(paid.id)} CT")
    statement = tmp_path / "vcb.csv"
    statement.write_bytes(
        statement_csv(
            [
                ("FT-PAGE-1", now, "85000", "VND", 1_100, f"MBVCB {reference_for(paid.id)} CT"),
                ("FT-PAGE-2", now, "120000", "VND", 1_100, f"MBVCB {reference_for(lost.id)} CT"),
            ]
        )
    )
    finance = make_user(["finance"])
    sign_in(page, finance.email, PASSWORD, "/finance/reconciliation")
    expect(page.get_by_role("heading", name="Đối soát", exact=True)).to_be_visible()

    page.get_by_label("Định dạng").select_option("bank_csv")
    page.get_by_label("Tệp sao kê").set_input_files(str(statement))
    page.get_by_role("button", name="Tải lên").click()
    expect(page.get_by_text("Đã tải sao kê lên.")).to_be_visible()

    page.get_by_role("button", name="Đối soát vietqr").click()
    expect(page.get_by_text("Lượt đối soát đã được xếp hàng; tiến độ hiển thị bên dưới.")).to_be_visible()
    # The page's script polls the run and shows the finished page once the worker is done.
    expect(page.locator(".run-status").first).to_have_text("hoàn tất", timeout=30_000)
    expect(page.get_by_text("2 dòng, 1 ngoại lệ")).to_be_visible()
    expect(page.get_by_role("cell", name="no ledger entry for FT-PAGE-2")).to_be_visible()
    screenshot(page, "reconciliation-finance-day")

    page.get_by_role("link", name=re.compile(r"^vietqr · ")).first.click()
    expect(page.get_by_role("heading", name="Dòng của đơn vị cung cấp")).to_be_visible()
    expect(page.get_by_text("FT-PAGE-2", exact=True)).to_be_visible()
    screenshot(page, "reconciliation-finance-case")

    page.get_by_label("Cách giải quyết").select_option("manual_match")
    page.get_by_label("Lý do").fill("Ngân hàng không gửi thông báo cho giao dịch FT-PAGE-2")
    page.get_by_role("button", name="Giải quyết").click()
    expect(page.get_by_role("heading", name=re.compile("đã giải quyết"))).to_be_visible()
    expect(page.get_by_role("button", name="Giải quyết")).to_have_count(0)
    # Who resolved it, by name in the heading's line and in the trail, never by user id.
    expect(page.get_by_text(f"{finance.full_name} đã giải quyết")).to_be_visible()
    expect(page.locator("li", has_text=finance.full_name).first).to_be_visible()
    expect(page.get_by_text(finance.id)).to_have_count(0)
    screenshot(page, "reconciliation-finance-case-resolved")
    with job_session() as session:
        assert session.get(PaymentIntent, lost.id).status == "succeeded"
