"""A worker killed mid-run: its chunk is taken over and the run completes, nothing lost or doubled.

Real `hanoipay worker` processes (RQ's forking worker) run the jobs. The test holds a lock on the results
table so that both workers stop inside a chunk, SIGKILLs one worker and the work horse running its job (as
when a machine dies), then lets go.
"""

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from hanoipay.db import get_engine, job_session
from payments.providers.vietqr import reference_for
from reconciliation.models import Chunk, ChunkAttempt, ResultLine, Run
from tests.factories import start_worker, stop_worker
from tests.reconciliation.conftest import (
    bank_says,
    reconcile,
    results,
    statement_csv,
    today,
    upload,
    vietqr_intent,
)
from tests.reconciliation.test_runs import _outcome

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the workers")
        time.sleep(0.1)


def _scalar(query):
    with job_session() as session:
        return session.scalar(query)


def test_a_killed_worker_s_chunk_is_redone_and_the_run_completes_exactly(
    api, finance_headers, database_url, redis_url, merchant
):
    from datetime import UTC, datetime

    rows = []
    for n in range(120):
        intent = vietqr_intent(merchant, 10_000 + n)
        text_ = f"CT {reference_for(intent.id)} tu 1010"
        bank_says(f"FT-K{n}", intent.amount, text_)
        rows.append((f"FT-K{n}", datetime.now(UTC), str(intent.amount), "VND", 1_100, text_))
    rows.append(("FT-LOST", datetime.now(UTC), "5000", "VND", 1_100, "no webhook for this one"))
    assert upload(api, finance_headers, statement_csv(rows), "bank_csv").status_code == 201

    workers = [start_worker(database_url, redis_url) for _ in range(2)]
    blocker = get_engine().connect()
    try:
        blocker.execute(text("LOCK TABLE recon_result IN SHARE MODE"))  # no chunk can write its results yet
        r = api.post(
            "/v1/reconciliation/runs",
            json={"provider": "vietqr", "business_day": today().isoformat(), "parallelism": 2},
            headers=finance_headers,
        )
        run_id = r.json()["id"]
        _wait_for(lambda: len(_match_attempts(run_id)) == 2)  # both workers inside a match chunk
        first = _match_attempts(run_id)[0]
        running = int(first.worker.rsplit(":", 1)[1])  # the worker process running the chunk's job
        victim = next(w for w in workers if w.pid == running)
        stop_worker(victim, signal.SIGKILL)  # a crash mid-chunk: no cleanup, no chance to say goodbye
        blocker.commit()  # let go: the survivor finishes its chunk, then takes over the dead one's
        _wait_for(lambda: _scalar(select(Run.status).where(Run.id == run_id)) == "completed")
    finally:
        blocker.close()
        for w in workers:
            stop_worker(w)

    with job_session() as session:
        run = session.get(Run, run_id)
        found = session.execute(
            select(ResultLine.provider_line_id, ResultLine.ledger_item_id, ResultLine.result).where(
                ResultLine.run_id == run_id
            )
        ).all()
    provider_lines = [p for p, _, _ in found if p is not None]
    ledger_items = [item for _, item, _ in found if item is not None]
    assert len(provider_lines) == len(set(provider_lines)) == run.provider_lines == 121
    assert len(ledger_items) == len(set(ledger_items)) == run.ledger_items == 120
    assert sorted(r for _, _, r in found) == ["matched"] * 120 + ["missing_in_ledger"]
    redone = [a for a in _attempts(run_id) if a.no == first.no]
    assert len(redone) == 2
    assert redone[0].worker != redone[1].worker, "the survivor took the chunk over"
    # The same day again, by one worker in this process, gives the same results.
    again = reconcile(api, finance_headers, redis_url, "vietqr", today())
    assert _outcome(results(api, finance_headers, again["id"])) == _outcome(
        results(api, finance_headers, run_id)
    )


def _match_attempts(run_id):
    with job_session() as session:
        return session.scalars(
            select(ChunkAttempt)
            .join(Chunk, (Chunk.run_id == ChunkAttempt.run_id) & (Chunk.no == ChunkAttempt.no))
            .where(ChunkAttempt.run_id == run_id, Chunk.phase == "match")
            .order_by(ChunkAttempt.id)
        ).all()


def _attempts(run_id):
    with job_session() as session:
        return session.scalars(
            select(ChunkAttempt).where(ChunkAttempt.run_id == run_id).order_by(ChunkAttempt.id)
        ).all()
