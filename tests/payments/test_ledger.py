"""The ledger: every entry balances, every balance equals its lines, hot accounts roll up exactly."""

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from hanoipay.db import job_session
from hanoipay.errors import HanoiPayError
from payments import balances, intents, refunds
from payments.jobs import roll_up_balances
from payments.models import BalanceDelta, JournalLine
from payments.topups import record_manual_topup
from tests.factories import FINANCE, auth, make_merchant, make_user, make_wallet, pay, principal

operation = st.one_of(
    st.tuples(st.just("topup"), st.integers(1, 50_000)),
    st.tuples(st.just("pay"), st.integers(1, 60_000), st.booleans(), st.integers(0, 1)),
    st.tuples(st.just("capture"), st.integers(0, 9), st.integers(1, 60_000)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 60_000)),
    st.tuples(st.just("rollup")),
)


class TestLedgerProperties:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(operation, min_size=1, max_size=25))
    def test_random_sequences_keep_the_ledger_sound(self, database_url, ops):
        payer = make_user()
        who = principal(payer)
        shops = [make_merchant(fee_bps=175), make_merchant(fee_bps=0, name="School")]
        staff = principal(make_user(["finance"]))
        wallet = make_wallet(payer)
        made: list[str] = []
        for op in ops:
            try:
                with job_session() as session:
                    if op[0] == "topup":
                        record_manual_topup(session, FINANCE, wallet.id, amount=op[1], reason="property test")
                    elif op[0] == "pay":
                        intent = intents.create_intent(
                            session,
                            who,
                            amount=op[1],
                            currency="VND",
                            purpose="merchant_payment",
                            merchant_id=shops[op[3]].id,
                            provider="wallet",
                            wallet_id=wallet.id,
                            confirm=True,
                            capture_method="manual" if op[2] else "automatic",
                        )
                        made.append(intent.id)
                    elif op[0] == "capture" and made:
                        intents.capture_intent(session, staff, made[op[1] % len(made)], amount=op[2])
                    elif op[0] == "cancel" and made:
                        intents.cancel_intent(session, staff, made[op[1] % len(made)])
                    elif op[0] == "refund" and made:
                        refunds.create_refund(session, staff, made[op[1] % len(made)], amount=op[2])
                    elif op[0] == "rollup":
                        balances.roll_up(session)
            except HanoiPayError:
                pass
        with job_session() as session:
            report = balances.verify(session)
            assert report.ok, report
            assert balances.balance(session, wallet.account_id).available >= 0
            per_currency = session.execute(
                select(JournalLine.currency, func.sum(JournalLine.amount)).group_by(JournalLine.currency)
            ).all()
            assert all(total == 0 for _, total in per_currency)


class TestVerify:
    def test_detects_a_tampered_balance_and_an_unbalanced_entry(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10_000)
        pay(api, user, merchant, wallet, 4_000)
        with job_session() as session:
            assert balances.verify(session).ok
            session.execute(
                text("UPDATE account_balance SET posted = posted + 1 WHERE account_id = :a"),
                {"a": wallet.account_id},
            )
            first_line = session.scalar(select(func.min(JournalLine.id)))
            session.execute(
                text("UPDATE journal_line SET amount = amount + 5 WHERE id = :id"), {"id": first_line}
            )
        with job_session() as session:
            report = balances.verify(session)
        assert not report.ok
        assert [m[0] for m in report.balance_mismatches if m[0] == wallet.account_id] == [wallet.account_id]
        assert len(report.unbalanced_entries) == 1


class TestBalances:
    def test_hot_account_rolls_up_to_the_same_balance(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        wallet = make_wallet(user, balance=100_000)
        for amount in (1_000, 2_000, 3_000):
            pay(api, user, merchant, wallet, amount)
        with job_session() as session:
            before = balances.balance(session, merchant.account_id)
            pending = session.scalar(select(func.count()).select_from(BalanceDelta))
        assert before.posted == 6_000
        assert pending > 0
        assert roll_up_balances() == pending
        with job_session() as session:
            assert balances.balance(session, merchant.account_id).posted == 6_000
            assert session.scalar(select(func.count()).select_from(BalanceDelta)) == 0
            assert balances.verify(session).ok

    def test_balance_as_of_a_time(self, api):
        user, merchant = make_user(), make_merchant(fee_bps=0)
        wallet = make_wallet(user, balance=100_000)
        pay(api, user, merchant, wallet, 1_000)
        with job_session() as session:
            cut = session.scalar(select(func.now()))
        pay(api, user, merchant, wallet, 2_000)
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        now = api.get(f"/v1/merchants/{merchant.id}/balance", headers=auth(vendor)).json()
        then = api.get(
            f"/v1/merchants/{merchant.id}/balance", params={"as_of": cut.isoformat()}, headers=auth(vendor)
        ).json()
        assert now["posted"] == 3_000
        assert then["posted"] == 1_000
        epoch = api.get(
            f"/v1/merchants/{merchant.id}/balance",
            params={"as_of": datetime(2020, 1, 1, tzinfo=UTC).isoformat()},
            headers=auth(vendor),
        ).json()
        assert epoch["posted"] == 0


class TestLedgerApi:
    def test_merchant_sees_only_its_own_entries_and_finance_sees_all(self, api):
        user = make_user()
        mine, theirs = (
            make_merchant(fee_bps=200),
            make_merchant(name="Trường Tiểu học Ba Đình", kind="school"),
        )
        wallet = make_wallet(user, balance=100_000)
        pay(api, user, mine, wallet, 10_000)
        pay(api, user, theirs, wallet, 5_000)
        vendor = make_user(["vendor"], merchant_id=mine.id)
        entries = api.get(f"/v1/merchants/{mine.id}/ledger_entries", headers=auth(vendor)).json()
        assert len(entries["data"]) == 1
        lines = entries["data"][0]["lines"]
        assert sum(line["amount"] for line in lines) == 0
        assert {line["amount"] for line in lines} == {10_000, -9_800, -200}
        foreign = api.get(f"/v1/merchants/{theirs.id}/ledger_entries", headers=auth(vendor))
        assert foreign.status_code == 404
        assert api.get(f"/v1/merchants/{theirs.id}/balance", headers=auth(vendor)).status_code == 404
        assert api.get("/v1/ledger/accounts", headers=auth(vendor)).status_code == 403
        finance = make_user(["finance"])
        accounts = api.get("/v1/ledger/accounts", headers=auth(finance)).json()
        by_code = {a["code"]: a for a in accounts}
        assert by_code["platform_fee_revenue:VND"]["posted"] == 200 + 50  # 2 % of 10 000 and 1 % of 5 000
        assert by_code["provider_clearing:manual:VND"]["posted"] == 100_000
        all_entries = api.get("/v1/ledger/entries", params={"limit": 100}, headers=auth(finance)).json()
        assert len(all_entries["data"]) == 3
