"""Statements: opening balance, each payment, fee, refund and payout, closing balance, always equal to the
ledger; as JSON pages, CSV and PDF; a property test over random activity."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pypdfium2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hanoipay.db import job_session
from merchants.service import settlement, statements
from merchants.service.markets import business_day
from payments import balances, intents, refunds
from payments.payouts import mark_failed, mark_paid
from tests.factories import ADMIN, FINANCE, auth, make_merchant, make_staff, make_user, make_wallet, principal


def today() -> date:
    return business_day(datetime.now(UTC))


def pay(merchant, amount: int) -> str:
    payer = make_user()
    wallet = make_wallet(payer, balance=amount)
    with job_session() as session:
        return intents.create_intent(
            session,
            principal(payer),
            amount=amount,
            currency="VND",
            purpose="merchant_payment",
            merchant_id=merchant.id,
            provider="wallet",
            wallet_id=wallet.id,
            confirm=True,
        ).id


def refund(intent_id: str, amount: int) -> None:
    with job_session() as session:
        refunds.create_refund(session, ADMIN, intent_id, amount=amount)


def move_to_yesterday(entry_ids: list[str]) -> None:
    """Backdate entries by a day, as if they were posted yesterday (lines are otherwise never changed)."""
    with job_session() as session:
        session.execute(
            text(
                "UPDATE journal_line SET posted_at = posted_at - interval '1 day' WHERE entry_id = ANY(:ids)"
            ),
            {"ids": entry_ids},
        )


def ledger_balance_at(account_id: str, at: datetime) -> int:
    with job_session() as session:
        return -int(
            session.scalar(
                text(
                    "SELECT coalesce(sum(amount), 0) FROM journal_line "
                    "WHERE account_id = :a AND posted_at < :t"
                ),
                {"a": account_id, "t": at},
            )
        )


class TestStatement:
    def test_each_payment_fee_refund_and_payout_with_hand_computed_balances(self, api):
        merchant = make_merchant(fee_bps=200, verified=True)
        first = pay(merchant, 100_000)  # fee 2 000
        second = pay(merchant, 50_000)  # fee 1 000
        refund(second, 20_000)  # fee returned 400
        finance = make_user(["finance"])
        api.patch(
            f"/v1/merchants/{merchant.id}/terms", json={"settlement_delay_days": 0}, headers=auth(finance)
        )
        with job_session() as session:
            run = settlement.settle(session, merchant.id)
        assert run.amount == 98_000 + 49_000 - 19_600
        accountant = make_staff(merchant, "accountant")
        day = today().isoformat()
        r = api.get(
            f"/v1/merchants/{merchant.id}/statement",
            params={"from": day, "to": day},
            headers=auth(accountant),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [(row["type"], row["amount"], row["balance"]) for row in body["data"]] == [
            ("payment", 100_000, 100_000),
            ("fee", -2_000, 98_000),
            ("payment", 50_000, 148_000),
            ("fee", -1_000, 147_000),
            ("refund", -20_000, 127_000),
            ("fee", 400, 127_400),
            ("payout", -127_400, 0),
        ]
        assert body["data"][0]["intent_id"] == first
        assert (body["opening_balance"], body["closing_balance"]) == (0, 0)
        assert body["totals"] == {"payment": 150_000, "fee": -2_600, "refund": -20_000, "payout": -127_400}
        page = api.get(
            f"/v1/merchants/{merchant.id}/statement",
            params={"from": day, "to": day, "limit": 2},
            headers=auth(accountant),
        ).json()
        assert (len(page["data"]), page["has_more"]) == (4, True)
        rest = api.get(
            f"/v1/merchants/{merchant.id}/statement",
            params={"from": day, "to": day, "starting_after": page["next_cursor"]},
            headers=auth(accountant),
        ).json()
        assert [row["balance"] for row in rest["data"]] == [127_000, 127_400, 0]
        csv_rows = list(
            csv.reader(
                io.StringIO(
                    api.get(
                        f"/v1/merchants/{merchant.id}/statement.csv",
                        params={"from": day, "to": day},
                        headers=auth(accountant),
                    ).text
                )
            )
        )
        assert csv_rows[0][:2] == ["posted_at", "type"]
        assert [row[1] for row in csv_rows[1:]] == [
            "opening_balance",
            "payment",
            "fee",
            "payment",
            "fee",
            "refund",
            "fee",
            "payout",
            "closing_balance",
        ]
        pdf = api.get(
            f"/v1/merchants/{merchant.id}/statement.pdf",
            params={"from": day, "to": day},
            headers=auth(accountant),
        )
        page_text = pypdfium2.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
        assert "Sao kê tài khoản" in page_text
        assert "127.400 ₫" in page_text

    def test_who_may_read_it_and_bad_periods(self, api):
        merchant, other = make_merchant(), make_merchant(name="Another")
        cashier, stranger = make_staff(merchant, "cashier"), make_staff(other)
        day = today()
        path = f"/v1/merchants/{merchant.id}/statement"
        r = api.get(path, params={"from": day.isoformat(), "to": day.isoformat()}, headers=auth(cashier))
        assert (r.status_code, r.json()["code"]) == (403, "staff_role_required")
        r = api.get(path, params={"from": day.isoformat(), "to": day.isoformat()}, headers=auth(stranger))
        assert (r.status_code, r.json()["code"]) == (404, "merchant_not_found")
        owner = make_staff(merchant)
        for params, code in (
            (
                {"from": day.isoformat(), "to": (day - timedelta(days=1)).isoformat()},
                "statement_period_invalid",
            ),
            ({"from": "2020-01-01", "to": "2026-01-01"}, "statement_period_invalid"),
            ({"from": "yesterday", "to": day.isoformat()}, "validation_error"),
            (
                {"from": day.isoformat(), "to": day.isoformat(), "starting_after": "abc"},
                "statement_period_invalid",
            ),
        ):
            r = api.get(path, params=params, headers=auth(owner))
            assert (r.status_code, r.json()["code"]) == (422, code), params


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["pay", "refund", "settle", "fail_payout", "pay_out"]),
        st.integers(min_value=1, max_value=500_000),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


class TestStatementEqualsLedger:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(actions=ACTIONS, fee_bps=st.integers(min_value=0, max_value=500))
    def test_over_random_activity(self, database_url, redis_url, actions, fee_bps):
        merchant = make_merchant(fee_bps=fee_bps, verified=True)
        with job_session() as session:
            session.execute(
                text("UPDATE merchant_profile SET settlement_delay_days = 0 WHERE merchant_id = :m"),
                {"m": merchant.id},
            )
        paid: list[tuple[str, int]] = []
        backdated: list[str] = []
        moment = datetime.now(UTC)
        for step, (action, amount, yesterday) in enumerate(actions):
            with job_session() as session:
                before = set(session.scalars(text("SELECT id FROM journal_entry")).all())
            if action == "pay":
                paid.append((pay(merchant, amount), amount))
            elif action == "refund" and paid:
                intent_id, left = paid[-1]
                part = min(left, amount)
                refund(intent_id, part)
                paid[-1] = (intent_id, left - part)
                if left - part == 0:
                    paid.pop()
            elif action in ("settle", "fail_payout", "pay_out"):
                with job_session() as session:
                    run = settlement.settle(session, merchant.id, now=moment + timedelta(days=step))
                    if run.payout_id and action == "fail_payout":
                        mark_failed(session, FINANCE, run.payout_id, reason="closed")
                    elif run.payout_id and action == "pay_out":
                        mark_paid(session, FINANCE, run.payout_id)
            with job_session() as session:
                new = set(session.scalars(text("SELECT id FROM journal_entry")).all()) - before
            if yesterday:
                backdated.extend(new)
        move_to_yesterday(backdated)
        day = today()
        start_at, end_at = statements.day_bounds(day)
        with job_session() as session:
            found = statements.statement(session, ADMIN, merchant.id, day, day, limit=None)
            now_balance = balances.balance(session, merchant.account_id).posted
        assert found.opening_balance == ledger_balance_at(merchant.account_id, start_at)
        assert found.closing_balance == ledger_balance_at(merchant.account_id, end_at) == now_balance
        assert found.opening_balance + sum(row.amount for row in found.rows) == found.closing_balance
        assert sum(found.totals.values()) == found.closing_balance - found.opening_balance
        if found.rows:
            assert found.rows[-1].balance == found.closing_balance
