"""Many wallet payments in one transaction: each once per key, never below zero, one balanced entry."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hanoipay.db import job_session
from hanoipay.errors import InvalidRequest
from hanoipay.ids import new_id
from payments import balances, ledger
from payments.batch import WalletPayment, pay_from_wallets
from payments.exceptions import CurrencyMismatch, InsufficientFunds, MerchantNotFound, WalletNotFound
from payments.merchants import payable_account
from payments.models import JournalEntry, PaymentIntent
from payments.purposes import Purpose, register_purpose
from payments.refunds import create_refund
from payments.wallets import wallet_account
from tests.factories import ADMIN, make_merchant, make_user, make_wallet, principal

# A purpose of this test's own, paid to a merchant from wallets, like the transit fares.
register_purpose(Purpose(name="test_batch_fare", providers=frozenset({"wallet"})))


def pay(payments, merchant, *, who=ADMIN, allow_partial=False):
    with job_session() as session:
        return pay_from_wallets(
            session,
            who,
            payments,
            purpose="test_batch_fare",
            currency="VND",
            merchant_id=merchant.id,
            allow_partial=allow_partial,
        )


def available(wallet) -> int:
    with job_session() as session:
        return balances.balance(session, wallet.account_id).available


def verify() -> balances.VerifyReport:
    with job_session() as session:
        balances.roll_up(session)
    with job_session() as session:
        return balances.verify(session)


class TestBatch:
    def test_a_batch_pays_each_wallet_posts_one_balanced_entry_and_an_intent_each(self):
        merchant = make_merchant(fee_bps=150)
        wallets = [make_wallet(make_user(), balance=50_000) for _ in range(3)]
        payments = [
            WalletPayment(f"day-{i}", w.id, 10_001 * (i + 1), purpose_ref=f"ref-{i}")
            for i, w in enumerate(wallets)
        ]
        results = pay(payments, merchant)
        assert [(r.outcome, r.amount) for r in results] == [
            ("succeeded", 10_001),
            ("succeeded", 20_002),
            ("succeeded", 30_003),
        ]
        assert [available(w) for w in wallets] == [39_999, 29_998, 19_997]
        with job_session() as session:
            intents = session.scalars(
                select(PaymentIntent).where(PaymentIntent.purpose == "test_batch_fare")
            ).all()
            assert sorted((i.amount_received, i.fee_amount, i.status) for i in intents) == [
                (10_001, 150, "succeeded"),
                (20_002, 300, "succeeded"),
                (30_003, 450, "succeeded"),
            ]
            entries = session.scalars(select(JournalEntry).where(JournalEntry.kind == "payment_batch")).all()
            assert len(entries) == 1
            payable = balances.balance(session, merchant.account_id).posted
        assert payable == 60_006 - 900
        report = verify()
        assert report.ok, report

    def test_a_retry_with_the_same_keys_pays_nothing_twice(self):
        merchant = make_merchant()
        wallet = make_wallet(make_user(), balance=30_000)
        payments = [WalletPayment("k-1", wallet.id, 8_000), WalletPayment("k-2", wallet.id, 7_000)]
        first = pay(payments, merchant)
        again = pay(payments, merchant)
        assert [r.outcome for r in again] == ["duplicate", "duplicate"]
        assert [r.intent_id for r in again] == [r.intent_id for r in first]
        assert [r.amount for r in again] == [8_000, 7_000]
        assert available(wallet) == 15_000

    def test_not_enough_money_is_refused_and_the_key_can_be_paid_later(self):
        merchant = make_merchant()
        poor, rich = make_wallet(make_user(), balance=5_000), make_wallet(make_user(), balance=20_000)
        payments = [WalletPayment("p", poor.id, 8_000), WalletPayment("r", rich.id, 8_000)]
        assert [r.outcome for r in pay(payments, merchant)] == ["insufficient_funds", "succeeded"]
        assert available(poor) == 5_000
        with job_session() as session:
            from payments.topups import record_manual_topup
            from tests.factories import FINANCE

            record_manual_topup(session, FINANCE, poor.id, amount=3_000, reason="top-up")
        assert [r.outcome for r in pay(payments[:1], merchant)] == ["succeeded"]
        assert available(poor) == 0
        assert verify().ok

    def test_partial_takes_what_the_wallet_holds_across_its_payments(self):
        merchant = make_merchant()
        wallet = make_wallet(make_user(), balance=10_000)
        payments = [
            WalletPayment("a", wallet.id, 6_000),
            WalletPayment("b", wallet.id, 6_000),
            WalletPayment("c", wallet.id, 6_000),
        ]
        results = pay(payments, merchant, allow_partial=True)
        assert [(r.outcome, r.amount) for r in results] == [
            ("succeeded", 6_000),
            ("succeeded", 4_000),
            ("insufficient_funds", 0),
        ]
        assert available(wallet) == 0
        assert verify().ok

    def test_a_batch_payment_can_be_refunded_on_its_own(self):
        merchant = make_merchant(fee_bps=100)
        wallet = make_wallet(make_user(), balance=20_000)
        result = pay([WalletPayment("r-1", wallet.id, 10_000)], merchant)[0]
        with job_session() as session:
            refund = create_refund(session, ADMIN, result.intent_id, amount=4_000)
            assert refund.fee_refunded == 40
        assert available(wallet) == 14_000
        assert verify().ok

    def test_bad_input_changes_nothing(self):
        merchant, other_currency = make_merchant(), None
        wallet = make_wallet(make_user(), balance=20_000)
        cases = [
            ([WalletPayment("x", wallet.id, 0)], InvalidRequest),
            ([WalletPayment("x", wallet.id, -5)], InvalidRequest),
            ([WalletPayment("x", wallet.id, 10**13)], InvalidRequest),
            ([WalletPayment("x", wallet.id, 1), WalletPayment("x", wallet.id, 1)], InvalidRequest),
            ([WalletPayment("x", "wal_nope", 1)], WalletNotFound),
        ]
        for payments, error in cases:
            with pytest.raises(error):
                pay(payments, merchant)
        with pytest.raises(MerchantNotFound), job_session() as session:
            pay_from_wallets(
                session, ADMIN, [WalletPayment("x", wallet.id, 1)], purpose="test_batch_fare", currency="VND"
            )
        with pytest.raises(CurrencyMismatch), job_session() as session:
            pay_from_wallets(
                session,
                ADMIN,
                [WalletPayment("x", wallet.id, 1)],
                purpose="test_batch_fare",
                currency="USD",
                merchant_id=merchant.id,
            )
        customer = principal(make_user())
        with pytest.raises(Exception, match="roles"):
            pay([WalletPayment("x", wallet.id, 1)], merchant, who=customer)
        assert other_currency is None
        assert available(wallet) == 20_000
        with job_session() as session:
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(PaymentIntent)
                    .where(PaymentIntent.purpose == "test_batch_fare")
                )
                == 0
            )

    def test_two_batches_racing_over_the_same_keys_and_wallets_pay_each_key_once(self):
        merchant = make_merchant()
        wallets = [make_wallet(make_user(), balance=100_000) for _ in range(20)]
        payments = [WalletPayment(f"race-{i}", w.id, 9_000) for i, w in enumerate(wallets)]
        start = threading.Barrier(2)

        def run(order: int):
            start.wait()
            return pay(payments if order == 0 else list(reversed(payments)), merchant)

        with ThreadPoolExecutor(2) as pool:
            outcomes = [r.outcome for results in pool.map(run, range(2)) for r in results]
        assert outcomes.count("succeeded") == 20
        assert outcomes.count("duplicate") == 20
        assert {available(w) for w in wallets} == {91_000}
        assert verify().ok

    def test_two_batches_racing_for_the_last_money_of_a_wallet(self):
        merchant = make_merchant()
        wallet = make_wallet(make_user(), balance=10_000)
        start = threading.Barrier(2)

        def run(i: int):
            start.wait()
            return pay([WalletPayment(f"last-{i}", wallet.id, 7_000)], merchant)[0].outcome

        with ThreadPoolExecutor(2) as pool:
            assert sorted(pool.map(run, range(2))) == ["insufficient_funds", "succeeded"]
        assert available(wallet) == 3_000


def test_an_entry_over_many_wallets_refuses_to_take_any_below_zero():
    merchant = make_merchant()
    rich, poor = make_wallet(make_user(), balance=9_000), make_wallet(make_user(), balance=1_000)
    lines = [
        (wallet_account(rich), 5_000),
        (wallet_account(poor), 5_000),
        (payable_account(merchant), -10_000),
    ]
    with pytest.raises(InsufficientFunds), job_session() as session:
        ledger.post_entry(session, kind="payment_batch", dedupe_key="many-1", description="x", lines=lines)
    assert (available(rich), available(poor)) == (9_000, 1_000)
    lines[1] = (wallet_account(poor), 1_000)
    lines[2] = (payable_account(merchant), -6_000)
    with job_session() as session:
        ledger.post_entry(session, kind="payment_batch", dedupe_key="many-2", description="x", lines=lines)
    assert (available(rich), available(poor)) == (4_000, 0)
    assert verify().ok


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    funds=st.lists(st.integers(0, 30_000), min_size=1, max_size=4),
    amounts=st.lists(st.integers(1, 20_000), min_size=1, max_size=8),
    partial=st.booleans(),
)
def test_property_never_negative_and_balanced(database_url, funds, amounts, partial):
    merchant = make_merchant(fee_bps=75)
    wallets = [make_wallet(make_user(), balance=f) for f in funds]
    payments = [WalletPayment(new_id("h"), wallets[i % len(wallets)].id, a) for i, a in enumerate(amounts)]
    results = pay(payments, merchant, allow_partial=partial)
    for wallet, fund in zip(wallets, funds, strict=True):
        spent = sum(r.amount for p, r in zip(payments, results, strict=True) if p.wallet_id == wallet.id)
        assert available(wallet) == fund - spent >= 0
    assert all(r.amount <= p.amount for p, r in zip(payments, results, strict=True))
    assert verify().ok
