"""Idempotency-Key: one object per key, the first response replayed, a different body refused."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from hanoipay.db import job_session
from payments import balances
from payments.jobs import purge_idempotency_keys
from payments.models import Hold, IdempotencyKey, JournalEntry, PaymentIntent
from tests.factories import make_merchant, make_user, make_wallet, pay


def counts():
    with job_session() as session:
        intents = session.scalar(
            select(func.count()).select_from(PaymentIntent).where(PaymentIntent.purpose == "merchant_payment")
        )
        entries = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .join(PaymentIntent, PaymentIntent.id == JournalEntry.intent_id)
            .where(PaymentIntent.purpose == "merchant_payment")
        )
        return intents, entries


class TestIdempotency:
    def test_retry_replays_first_response(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        first = pay(api, user, merchant, wallet, 8_000, idempotency_key="order-42")
        again = pay(api, user, merchant, wallet, 8_000, idempotency_key="order-42")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert counts() == (1, 1)

    def test_same_key_different_body_is_refused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        assert pay(api, user, merchant, wallet, 8_000, idempotency_key="k1").status_code == 201
        r = pay(api, user, merchant, wallet, 9_000, idempotency_key="k1")
        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_reused"
        assert counts() == (1, 1)

    def test_keys_are_scoped_per_caller(self, api):
        merchant = make_merchant()
        alice, bob = make_user(), make_user()
        wa, wb = make_wallet(alice, balance=10_000), make_wallet(bob, balance=10_000)
        assert pay(api, alice, merchant, wa, 1_000, idempotency_key="same").status_code == 201
        assert pay(api, bob, merchant, wb, 1_000, idempotency_key="same").status_code == 201
        assert counts() == (2, 2)

    def test_a_refusal_is_replayed_too(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=1_000)
        first = pay(api, user, merchant, wallet, 8_000, idempotency_key="too-much")
        assert first.status_code == 402
        again = pay(api, user, merchant, wallet, 8_000, idempotency_key="too-much")
        assert again.status_code == 402
        assert again.json()["code"] == "insufficient_funds"
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        # The failed attempt is kept on its intent (as Stripe does), once, and moved no money.
        assert counts() == (1, 0)

    def test_a_replay_sends_the_first_answer_byte_for_byte(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        metadata = {f"k{i:02d}": f"value {i}" for i in range(30)}
        first = pay(api, user, merchant, wallet, 1_000, idempotency_key="bytes", metadata=metadata)
        again = pay(api, user, merchant, wallet, 1_000, idempotency_key="bytes", metadata=metadata)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content

    def test_twenty_concurrent_identical_requests_make_one_intent_and_one_entry(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        with ThreadPoolExecutor(20) as pool:
            results = list(
                pool.map(lambda _: pay(api, user, merchant, wallet, 8_000, idempotency_key="race"), range(20))
            )
        assert {r.status_code for r in results} == {201}
        assert len({r.json()["id"] for r in results}) == 1
        assert counts() == (1, 1)

    def test_concurrent_retries_of_a_hold_reserve_once(self, api):
        # A hold is written once its outcome is known (hold first, intent after): duplicates racing on one
        # key still make one intent and one hold.
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        with ThreadPoolExecutor(10) as pool:
            results = list(
                pool.map(
                    lambda _: pay(
                        api, user, merchant, wallet, 30_000, capture_method="manual", idempotency_key="hold"
                    ),
                    range(10),
                )
            )
        assert {r.status_code for r in results} == {201}
        assert len({r.json()["id"] for r in results}) == 1
        assert {r.json()["status"] for r in results} == {"requires_capture"}
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(Hold)) == 1
            assert balances.balance(session, wallet.account_id).held == 30_000
        assert counts() == (1, 0)

    def test_invalid_key_is_refused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        r = pay(api, user, merchant, wallet, 8_000, idempotency_key="x" * 256)
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_idempotency_key"
        assert counts() == (0, 0)

    def test_expired_keys_are_purged_and_can_be_reused(self, api):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=50_000)
        pay(api, user, merchant, wallet, 1_000, idempotency_key="old")
        with job_session() as session:
            session.execute(
                update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        reused = pay(api, user, merchant, wallet, 2_000, idempotency_key="old")
        assert reused.status_code == 201
        assert reused.json()["amount"] == 2_000
        with job_session() as session:
            session.execute(
                update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert purge_idempotency_keys() == 1
        with job_session() as session:
            assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
