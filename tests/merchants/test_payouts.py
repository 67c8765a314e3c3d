"""Settlement turns a merchant's matured balance into one payout, through the core's payout path: bank
file, bank confirmation, failure returning the money; never the same balance twice, even at once."""

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hanoipay.db import job_session
from merchants import jobs
from merchants.exceptions import MerchantNotVerified
from merchants.models import Settlement
from merchants.service import settlement
from payments import balances, intents
from payments.models import Payout
from payments.payouts import payout_clearing_account
from tests.factories import auth, make_merchant, make_staff, make_user, make_wallet, principal
from tests.merchants.conftest import drain, signed


def pay_wallet(merchant, amount: int) -> None:
    payer = make_user()
    wallet = make_wallet(payer, balance=amount)
    with job_session() as session:
        intents.create_intent(
            session,
            principal(payer),
            amount=amount,
            currency="VND",
            purpose="merchant_payment",
            merchant_id=merchant.id,
            provider="wallet",
            wallet_id=wallet.id,
            confirm=True,
        )


def posted(account_id: str) -> int:
    with job_session() as session:
        return balances.balance(session, account_id).posted


def in_transit() -> int:
    with job_session() as session:
        return balances.balance(session, payout_clearing_account(session, "VND").id).posted


def payouts_of(merchant) -> list[Payout]:
    with job_session() as session:
        return list(
            session.scalars(select(Payout).where(Payout.merchant_id == merchant.id).order_by(Payout.id))
        )


def tomorrow() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def assert_ledger_sound() -> None:
    with job_session() as session:
        assert balances.verify(session).ok


class TestSettlement:
    def test_t_plus_one_pays_yesterdays_money_and_the_bank_confirms_it(self, api):
        merchant = make_merchant(fee_bps=100, verified=True)
        pay_wallet(merchant, 100_000)
        with job_session() as session:
            today = settlement.settle(session, merchant.id)
        assert (today.status, today.amount) == ("nothing_due", 0)
        with job_session() as session:
            next_day = settlement.settle(session, merchant.id, now=tomorrow())
        assert (next_day.status, next_day.amount) == ("paid_out", 99_000)
        assert (posted(merchant.account_id), in_transit()) == (0, 99_000)
        finance = make_user(["finance"])
        file = api.get("/v1/payouts/bank_file.csv", headers=auth(finance))
        assert file.headers["x-payout-count"] == "1"
        [row] = list(csv.DictReader(io.StringIO(file.text)))
        assert row == {
            "payout_id": next_day.payout_id,
            "bank_bin": "970436",
            "account": "0011002233445",
            "account_name": "NGUYEN THI LAN",
            "amount": "99000",
            "currency": "VND",
            "description": row["description"],
        }
        assert api.get("/v1/payouts/bank_file.csv", headers=auth(finance)).headers["x-payout-count"] == "0"
        report = {"results": [{"payout_id": next_day.payout_id, "status": "paid"}]}
        assert signed(api, "/v1/webhooks/bank/payouts", report).json()["payouts"] == {
            next_day.payout_id: "paid"
        }
        again = signed(api, "/v1/webhooks/bank/payouts", report).json()["payouts"]
        assert again == {next_day.payout_id: "already_paid"}
        assert (posted(merchant.account_id), in_transit()) == (0, 0)
        owner = make_staff(merchant)
        [listed] = api.get(f"/v1/merchants/{merchant.id}/payouts", headers=auth(owner)).json()
        assert (listed["status"], listed["amount"]) == ("paid", 99_000)
        assert_ledger_sound()

    def test_a_failed_payout_returns_the_money_and_the_next_run_pays_it(self, api):
        merchant = make_merchant(fee_bps=0, verified=True)
        pay_wallet(merchant, 50_000)
        with job_session() as session:
            first = settlement.settle(session, merchant.id, now=tomorrow())
        report = {"results": [{"payout_id": first.payout_id, "status": "failed", "reason": "account closed"}]}
        assert signed(api, "/v1/webhooks/bank/payouts", report).json()["payouts"] == {
            first.payout_id: "failed"
        }
        assert (posted(merchant.account_id), in_transit()) == (50_000, 0)
        finance = make_user(["finance"])
        r = api.post(f"/v1/payouts/{first.payout_id}/mark_paid", headers=auth(finance))
        assert (r.status_code, r.json()["code"]) == (409, "payout_already_failed")
        with job_session() as session:
            second = settlement.settle(session, merchant.id, now=tomorrow() + timedelta(days=1))
        assert (second.amount, posted(merchant.account_id)) == (50_000, 0)
        assert_ledger_sound()

    def test_an_unverified_merchant_is_not_paid_out(self, api):
        merchant = make_merchant()
        pay_wallet(merchant, 10_000)
        finance = make_user(["finance"])
        r = api.post(f"/v1/merchants/{merchant.id}/settlements", headers=auth(finance))
        assert (r.status_code, r.json()["code"]) == (409, "merchant_not_verified")
        assert jobs.settle_merchant(merchant.id) is None
        assert payouts_of(merchant) == []
        owner = make_staff(merchant)
        r = api.post(f"/v1/merchants/{merchant.id}/settlements", headers=auth(owner))
        assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")

    def test_four_runs_at_once_pay_the_balance_once(self, api):
        merchant = make_merchant(fee_bps=0, verified=True)
        finance = make_user(["finance"])
        api.patch(
            f"/v1/merchants/{merchant.id}/terms", json={"settlement_delay_days": 0}, headers=auth(finance)
        )
        pay_wallet(merchant, 70_000)
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: api.post(f"/v1/merchants/{merchant.id}/settlements", headers=auth(finance)),
                    range(4),
                )
            )
        assert {r.status_code for r in results} == {200}
        assert len({r.json()["id"] for r in results}) == 1
        assert [p.amount for p in payouts_of(merchant)] == [70_000]
        assert posted(merchant.account_id) == 0

    def test_the_job_on_two_days_at_once_never_pays_the_same_balance_twice(self, api):
        merchant = make_merchant(fee_bps=0, verified=True)
        pay_wallet(merchant, 40_000)
        days = [tomorrow(), tomorrow() + timedelta(days=1)] * 2
        barrier = threading.Barrier(len(days))
        errors: list[BaseException] = []

        def run(moment: datetime) -> None:
            barrier.wait()
            try:
                with job_session() as session:
                    settlement.settle(session, merchant.id, now=moment)
            except BaseException as error:  # a unique violation would show a double run
                errors.append(error)

        threads = [threading.Thread(target=run, args=(d,)) for d in days]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(p.amount for p in payouts_of(merchant)) == 40_000
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(Settlement)) == 2
        assert_ledger_sound()

    def test_the_daily_job_fans_out_to_verified_merchants(self, api):
        verified, unverified = make_merchant(fee_bps=0, verified=True), make_merchant(fee_bps=0)
        for m in (verified, unverified):
            pay_wallet(m, 5_000)
        assert jobs.run_settlements() == 1
        drain()
        with job_session() as session:
            [run] = session.scalars(select(Settlement)).all()
        assert run.merchant_id == verified.id

    def test_service_refuses_an_unverified_merchant(self, database_url):
        merchant = make_merchant()
        with job_session() as session, pytest.raises(MerchantNotVerified):
            settlement.settle(session, merchant.id)
