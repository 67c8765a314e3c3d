"""The chunks of a reconciliation run: how a run is laid out, and the jobs that stage and match them.

`prepare` lays a run out as slices of the day to stage, then buckets to match. `work_on_run` (one job
per worker) claims chunks with `FOR UPDATE SKIP LOCKED`, each in its own transaction: a worker killed
mid-chunk leaves nothing behind, and whoever claims the chunk next does it whole. The worker that finds
every chunk done settles the residue, opens the cases and completes the run.
"""

import os
import socket
import time

from sqlalchemy import exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from hanoipay.db import get_engine, job_session
from hanoipay.jobs import enqueue_after_commit
from reconciliation import cases
from reconciliation.days import day_window
from reconciliation.engine import ledger_side, matching
from reconciliation.engine.payouts import GROUP_MATCHERS
from reconciliation.models import BUCKETS, Case, Chunk, ChunkAttempt, Run, RunStatus
from reconciliation.rules import Rules

DROP_STAGING_JOB = "reconciliation.drop_staging"
CHUNKS_PER_WORKER = 4
STAGE_SLICES_PER_WORKER = 2
# How long a worker waits for chunks other workers hold before leaving them to the watchdog.
WAIT_FOR_OTHERS_SECONDS = 600


def prepare(session: Session, run: Run) -> None:
    """Count the day's provider lines and lay out the chunks: slices of the day to stage, then buckets."""
    start, end = day_window(run.business_day)
    run.provider_lines = int(
        session.scalar(
            text("SELECT count(*) FROM recon_provider_line WHERE provider = :p AND business_day = :d"),
            {"p": run.provider, "d": run.business_day},
        )
        or 0
    )
    session.execute(text("DELETE FROM recon_ledger_item WHERE run_id = :run"), {"run": run.id})
    session.execute(text("DELETE FROM recon_chunk WHERE run_id = :run"), {"run": run.id})
    slices = max(1, run.parallelism * STAGE_SLICES_PER_WORKER)
    step = (end - start) / slices
    matches = max(1, min(BUCKETS, run.parallelism * CHUNKS_PER_WORKER))
    chunks = [
        {
            "phase": "stage",
            "bucket_lo": 0,
            "bucket_hi": 0,
            "slice_from": start + n * step,
            "slice_to": end if n == slices - 1 else start + (n + 1) * step,
        }
        for n in range(slices)
    ] + [
        {
            "phase": "match",
            "bucket_lo": n * BUCKETS // matches,
            "bucket_hi": (n + 1) * BUCKETS // matches - 1,
            "slice_from": None,
            "slice_to": None,
        }
        for n in range(matches)
    ]
    session.execute(insert(Chunk), [{"run_id": run.id, "no": no, **chunk} for no, chunk in enumerate(chunks)])
    run.chunks_total, run.chunks_done, run.ledger_items = len(chunks), 0, 0


def worker_name() -> str:
    """Who is working: host and process id, as recorded with each chunk attempt."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _record_attempt(run_id: str, no: int, worker: str) -> None:
    # Its own autocommitted connection: the attempt stays on record even if the chunk's work is undone.
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(insert(ChunkAttempt).values(run_id=run_id, no=no, worker=worker))


def _claim_and_match(run_id: str, worker: str) -> str:
    """Do one unclaimed chunk of the run: 'done' one, 'waiting' (others hold the rest) or 'none' left.

    Match chunks are claimable only once every stage chunk is done.
    """
    with job_session() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.RUNNING:
            return "none"
        staging = aliased(Chunk)
        still_staging = exists().where(
            staging.run_id == run_id, staging.phase == "stage", staging.done.is_(False)
        )
        chunk = session.scalars(
            select(Chunk)
            .where(Chunk.run_id == run_id, Chunk.done.is_(False))
            .where(or_(Chunk.phase == "stage", ~still_staging))
            .order_by(Chunk.no)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if chunk is None:
            pending = session.scalar(
                select(func.count()).where(Chunk.run_id == run_id, Chunk.done.is_(False))
            )
            return "waiting" if pending else "none"
        _record_attempt(run_id, chunk.no, worker)
        if chunk.phase == "stage":
            assert chunk.slice_from is not None
            assert chunk.slice_to is not None
            staged = ledger_side.stage(session, run.id, run.provider, chunk.slice_from, chunk.slice_to)
            chunk.counts = {"staged": [staged, 0, 0, 0, 0]}
            session.execute(
                update(Run).where(Run.id == run_id).values(ledger_items=Run.ledger_items + staged)
            )
        else:
            bound = matching.params(run.id, run.provider, run.business_day, Rules.from_json(run.rules))
            chunk.counts = matching.match_chunk(session, bound, chunk.bucket_lo, chunk.bucket_hi)
        chunk.done, chunk.worker, chunk.done_at = True, worker, func.clock_timestamp()
        session.execute(update(Run).where(Run.id == run_id).values(chunks_done=Run.chunks_done + 1))
        return "done"


def work_on_run(run_id: str, *, worker: str | None = None) -> int:
    """Match chunks of the run until none is left, then complete it; returns how many chunks this did.

    While other workers hold the last chunks it waits, so a chunk freed by a worker that died is taken
    over at once; the watchdog (`resume_stalled_runs`) covers the rest.
    """
    worker = worker or worker_name()
    done = 0
    deadline = time.monotonic() + WAIT_FOR_OTHERS_SECONDS
    while True:
        state = _claim_and_match(run_id, worker)
        if state == "done":
            done += 1
        elif state == "waiting" and time.monotonic() < deadline:
            time.sleep(0.2)
        else:
            break
    complete_run(run_id)
    return done


def complete_run(run_id: str) -> bool:
    """Settle the residue, open the cases and complete the run, once every chunk is done."""
    with job_session() as session:
        run = session.scalars(select(Run).where(Run.id == run_id).with_for_update(skip_locked=True)).first()
        if run is None or run.status != RunStatus.RUNNING or run.chunks_done < run.chunks_total:
            return False
        if not _all_paired(session, run):
            settle(session, run)
        run.summary = matching.summarize(session, run.id, _chunk_figures(session, run.id))
        if run.summary["exceptions"] or _has_unresolved_cases(session, run):
            cases.open_cases(session, run)
        run.status, run.finished_at = RunStatus.COMPLETED, func.clock_timestamp()
        enqueue_after_commit(session, DROP_STAGING_JOB, run_id=run.id)
    return True


def _has_unresolved_cases(session: Session, run: Run) -> bool:
    return bool(
        session.scalar(
            select(func.count()).where(
                Case.provider == run.provider,
                Case.business_day == run.business_day,
                Case.status != "resolved",
            )
        )
    )


def _chunk_figures(session: Session, run_id: str) -> list[dict[str, list[int]]]:
    return [
        counts or {}
        for counts in session.scalars(
            select(Chunk.counts).where(Chunk.run_id == run_id, Chunk.phase == "match")
        )
    ]


def _all_paired(session: Session, run: Run) -> bool:
    """True when the chunks paired every line of the day with a ledger item: no residue to settle."""
    paired = sum(figures[0] for counts in _chunk_figures(session, run.id) for figures in counts.values())
    return paired == run.provider_lines == run.ledger_items


def drop_staging(run_id: str) -> int:
    """Delete a finished run's staged ledger items (the results keep the journal line ids)."""
    with job_session() as session:
        deleted = session.execute(text("DELETE FROM recon_ledger_item WHERE run_id = :run"), {"run": run_id})
        return int(deleted.rowcount or 0)  # type: ignore[attr-defined]


def settle(session: Session, run: Run) -> None:
    """Settle what the run's chunks left unpaired: fuzzy pairs, duplicates, other days, groups, missing."""
    bound = matching.params(run.id, run.provider, run.business_day, Rules.from_json(run.rules))
    matching.settle_residue(session, bound, GROUP_MATCHERS[run.provider])
