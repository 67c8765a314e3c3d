"""Liveness stays cheap; readiness reports PostgreSQL, Redis, the outbox relay's lag and the queue depth."""

import gc
from datetime import UTC, datetime, timedelta

from hanoipay import jobs
from hanoipay.db import job_session
from hanoipay.jobs import OutboxMessage
from hanoipay.settings import get_settings


def test_liveness_answers_without_touching_the_database(api):
    assert api.get("/healthz").json() == {"status": "ok"}


def test_ready_when_every_check_passes(api):
    r = api.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "postgres",
        "outbox",
        "redis",
        "queue",
    }
    assert body["checks"]["outbox"]["oldest_unrelayed_seconds"] == 0
    assert body["checks"]["queue"]["depth"] == 0


def test_a_stalled_outbox_makes_it_not_ready(api):
    with job_session() as session:
        session.add(
            OutboxMessage(
                job="payments.deliver_event",
                kwargs={"event_id": "evt_stalled"},
                created_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    r = api.get("/readyz")
    assert r.status_code == 503
    outbox = r.json()["checks"]["outbox"]
    assert outbox["ok"] is False
    assert outbox["oldest_unrelayed_seconds"] >= 300
    assert outbox["max_seconds"] == get_settings().ready_max_outbox_lag_seconds


def test_an_unreachable_redis_makes_it_not_ready(api, redis_url, tmp_path):
    jobs.init_redis(f"unix://{tmp_path}/nothing-listens-here.sock")
    try:
        r = api.get("/readyz")
    finally:
        jobs.init_redis(redis_url)
    assert r.status_code == 503
    assert r.json()["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert r.json()["checks"]["postgres"]["ok"] is True


def test_a_deep_queue_makes_it_not_ready(api):
    depth = 3
    settings = get_settings()
    saved = settings.ready_max_queue_depth
    settings.ready_max_queue_depth = depth - 1
    try:
        for i in range(depth):
            jobs.enqueue("payments.deliver_event", event_id=f"evt_{i}")
        r = api.get("/readyz")
    finally:
        settings.ready_max_queue_depth = saved
    assert r.status_code == 503
    assert r.json()["checks"]["queue"] == {"ok": False, "depth": depth, "max_depth": depth - 1}


def test_the_server_freezes_what_it_built_at_start_up(api):
    # The live server runs the app in this process: its start-up froze the routes, models and modules, so
    # the collector's full passes (about 150 ms each on a busy 2-core machine) no longer walk them.
    assert api.get("/healthz").status_code == 200
    assert gc.get_freeze_count() > 100_000
