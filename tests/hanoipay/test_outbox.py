"""The outbox: events are queued after commit and delivered by a real RQ worker; Redis down loses nothing."""

import tempfile
import time
from pathlib import Path

import redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from hanoipay import jobs
from hanoipay.db import job_session
from hanoipay.embedded import EmbeddedRedis
from hanoipay.jobs import OutboxMessage, Relayer, enqueue_after_commit, relay
from payments.models import Event
from tests.factories import make_merchant, make_user, make_wallet, pay


def unrelayed() -> int:
    with job_session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.relayed_at.is_(None))
            )
            or 0
        )


def drain(connection: redis.Redis) -> None:
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)


class TestOutbox:
    def test_payment_events_are_relayed_after_commit_and_delivered_by_a_worker(self, api, redis_url):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10_000)
        listener = redis.Redis.from_url(redis_url).pubsub()
        listener.subscribe(f"hanoipay:events:merchant:{merchant.id}")
        relayer = Relayer()
        relayer.start()
        try:
            relay(older_than_seconds=0)  # the wallet's funding
            intent = pay(api, user, merchant, wallet, 3_000).json()
            paid_at = time.monotonic()
            while unrelayed() and time.monotonic() < paid_at + 5:
                time.sleep(0.01)
            woken_after = time.monotonic() - paid_at
        finally:
            relayer.stop()
        assert unrelayed() == 0
        assert woken_after < 0.9, "the relayer should find the committed row on its next look (every 200 ms)"
        connection = redis.Redis.from_url(redis_url)
        assert Queue("default", connection=connection).count >= 1
        drain(connection)
        with job_session() as session:
            events = session.scalars(select(Event).where(Event.object_id == intent["id"])).all()
            assert [e.type for e in events] == ["payment_intent.succeeded"]
            assert events[0].delivered_at is not None
        messages = [listener.get_message(timeout=1) for _ in range(3)]
        payloads = [m["data"] for m in messages if m and m["type"] == "message"]
        assert any(intent["id"].encode() in p for p in payloads)

    def test_nothing_is_enqueued_when_the_transaction_rolls_back(self, database_url, redis_url):
        try:
            with job_session() as session:
                enqueue_after_commit(session, "payments.deliver_event", event_id="evt_never")
                raise RuntimeError("the money transaction fails")
        except RuntimeError:
            pass
        assert unrelayed() == 0
        assert Queue("default", connection=redis.Redis.from_url(redis_url)).count == 0

    def test_with_redis_stopped_payments_succeed_and_their_events_reach_the_queue_once_it_is_back(
        self, api, live_server, redis_url
    ):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10_000)
        own = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="hanoipay-down-")), persist=False)
        own.start()
        jobs.init_redis(own.url)
        try:
            own.stop()
            results = [pay(api, user, merchant, wallet, 1_000) for _ in range(3)]
            assert [r.json()["status"] for r in results] == ["succeeded"] * 3
            assert unrelayed() == 3
            own.start()
            assert relay(older_than_seconds=0) == 3
            assert unrelayed() == 0
            connection = redis.Redis.from_url(own.url)
            assert Queue("default", connection=connection).count == 3
            drain(connection)
            with job_session() as session:
                delivered = session.scalar(
                    select(func.count()).select_from(Event).where(Event.delivered_at.is_not(None))
                )
            assert delivered == 3
        finally:
            own.stop()
            jobs.init_redis(redis_url)

    def test_sweeper_relays_only_rows_older_than_its_grace_period(self, database_url, redis_url):
        with job_session() as session:
            session.add(OutboxMessage(job="payments.deliver_event", kwargs={"event_id": "evt_x"}))
        assert (
            jobs.sweep_outbox() == 0
        )  # younger than the grace period: the after-commit relay may still take it
        assert relay(older_than_seconds=0) == 1
        assert relay(older_than_seconds=0) == 0
