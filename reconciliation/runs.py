"""Reconciliation runs: one per provider and business day, split into chunks that workers claim.

A run is created `queued` (a second active run of the same day is refused by a partial unique index),
then `start_run` loads the provider's lines, stages the ledger's side and creates its chunks, and
`work_on_run` (one job per worker) claims chunks with `FOR UPDATE SKIP LOCKED`, each in its own
transaction: a worker killed mid-chunk leaves nothing behind, and whoever claims the chunk next does it
whole. The worker that finds every chunk done settles the residue, opens the cases and completes the run.
"""

import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from hanoipay.auth.service import Principal, Role
from hanoipay.db import get_engine, job_session
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue, enqueue_after_commit
from hanoipay.localtime import HANOI
from hanoipay.pagination import Page, paginate
from hanoipay.settings import get_settings
from reconciliation import cases
from reconciliation.engine import ledger_side, matching
from reconciliation.engine.payouts import GROUP_MATCHERS
from reconciliation.exceptions import BusinessDayOutOfRange, RunInProgress, RunNotFound
from reconciliation.models import BUCKETS, Case, Chunk, ChunkAttempt, Provider, Run, RunStatus
from reconciliation.rules import Rules, RulesIn, rules_for
from reconciliation.sources import ParsedLine, stripe_api
from reconciliation.sources.store import store_lines

log = logging.getLogger(__name__)

START_JOB = "reconciliation.start_run"
WORK_JOB = "reconciliation.work_on_run"
DROP_STAGING_JOB = "reconciliation.drop_staging"
CHUNKS_PER_WORKER = 4
STAGE_SLICES_PER_WORKER = 2
# How long a worker waits for chunks other workers hold before leaving them to the watchdog.
WAIT_FOR_OTHERS_SECONDS = 600


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a business day in Hanoi starts and ends."""
    start = datetime(day.year, day.month, day.day, tzinfo=HANOI).astimezone(UTC)
    return start, start + timedelta(days=1)


def business_day_of(at: datetime) -> date:
    """The business day (Asia/Ho_Chi_Minh) an instant falls on."""
    return at.astimezone(HANOI).date()


def _check_day(day: date, now: datetime) -> None:
    today = business_day_of(now)
    if day > today:
        raise BusinessDayOutOfRange(f"{day} has not begun in Hanoi yet (today is {today}).")
    if day < today - timedelta(days=400):
        raise BusinessDayOutOfRange(f"{day} is more than 400 days ago.")


def create_run(
    session: Session,
    who: Principal,
    *,
    provider: str,
    business_day: date,
    rules: RulesIn | None = None,
    parallelism: int = 2,
    trigger: str = "manual",
    now: datetime | None = None,
) -> Run:
    """Queue a run of a provider's business day; refused with RunInProgress while one is active."""
    who.require(Role.FINANCE)
    _check_day(business_day, now or datetime.now(UTC))
    run = Run(
        id=new_id("rr"),
        provider=Provider(provider),
        business_day=business_day,
        status=RunStatus.QUEUED,
        trigger=trigger,
        requested_by=who.id,
        rules=rules_for(provider, rules).to_json(),
        parallelism=parallelism,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        raise RunInProgress(
            f"A {provider} run of {business_day} is already queued or running; wait for it to finish."
        ) from None
    enqueue_after_commit(session, START_JOB, run_id=run.id)
    return run


def get_run(session: Session, who: Principal, run_id: str) -> Run:
    """A run, for finance."""
    who.require(Role.FINANCE)
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFound(f"No reconciliation run {run_id}.")
    return run


def list_runs(
    session: Session,
    who: Principal,
    *,
    provider: str | None,
    business_day: date | None,
    limit: int,
    starting_after: str | None,
) -> Page[Run]:
    """Runs, newest first, optionally of one provider or day."""
    who.require(Role.FINANCE)
    query = select(Run)
    if provider:
        query = query.where(Run.provider == provider)
    if business_day:
        query = query.where(Run.business_day == business_day)
    return paginate(session, query, Run.id, limit=limit, starting_after=starting_after)


@dataclass(frozen=True)
class Progress:
    """Where a run stands: percent done and the count of each result written so far."""

    percent: int
    chunks_done: int
    chunks_total: int
    counts: dict[str, int]


def progress(session: Session, run: Run) -> Progress:
    """The run's progress from the chunks committed so far (the residue pass is the last step)."""
    if run.status == RunStatus.COMPLETED and run.summary is not None:
        counts = {name: int(v["count"]) for name, v in run.summary["results"].items()}
        return Progress(100, run.chunks_done, run.chunks_total, counts)
    totals: Counter[str] = Counter()
    for (chunk_counts,) in session.execute(
        select(Chunk.counts).where(Chunk.run_id == run.id, Chunk.done.is_(True), Chunk.phase == "match")
    ):
        totals.update({name: figures[0] for name, figures in (chunk_counts or {}).items()})
    percent = 100 * run.chunks_done // (run.chunks_total + 1) if run.chunks_total else 0
    return Progress(percent, run.chunks_done, run.chunks_total, dict(totals))


def _fetch_provider_lines(run: Run) -> list[ParsedLine]:
    """Lines to read from the provider's API for the run (Stripe, when a key is configured)."""
    if run.provider != Provider.STRIPE or not get_settings().stripe_api_key:
        return []
    rules = Rules.from_json(run.rules)
    start, end = day_window(run.business_day)
    margin = timedelta(days=rules.settle_days)
    return stripe_api.balance_transactions(start - margin, end + margin)


def start_run(run_id: str) -> bool:
    """Load the run's provider lines, stage the ledger side, create the chunks, and hand them to workers.

    Harmless to repeat: a run that is no longer queued is left alone. An unreadable provider fails the
    run with an engine error (never a data break).
    """
    with job_session() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.QUEUED:
            return False
    try:
        fetched = _fetch_provider_lines(run)
    except stripe_api.SourceUnavailable as error:
        fail_run(run_id, str(error))
        return False
    with job_session() as session:
        run = session.get(Run, run_id, with_for_update=True, populate_existing=True)
        if run is None or run.status != RunStatus.QUEUED:
            return False
        store_lines(session, run.provider, "stripe_api", fetched)
        _prepare(session, run)
        run.status, run.started_at = RunStatus.RUNNING, func.now()
    for worker in range(run.parallelism):
        enqueue(WORK_JOB, job_id=f"recon-{run_id}-w{worker}", run_id=run_id)
    return True


def _prepare(session: Session, run: Run) -> None:
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


def fail_run(run_id: str, error: str) -> None:
    """Mark a run failed with an engine error (a provider it could not read, a crash), apart from breaks."""
    with job_session() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .values(status=RunStatus.FAILED, error=error[:2000], finished_at=func.now())
        )
    log.error("reconciliation run %s failed: %s", run_id, error)


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
            _settle(session, run)
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


def _settle(session: Session, run: Run) -> None:
    bound = matching.params(run.id, run.provider, run.business_day, Rules.from_json(run.rules))
    matching.settle_residue(session, bound, GROUP_MATCHERS[run.provider])


def dry_run(
    session: Session,
    who: Principal,
    *,
    provider: str,
    business_day: date,
    rules: RulesIn | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a run of the day would find, computed in full and then rolled back: nothing is saved."""
    who.require(Role.FINANCE)
    _check_day(business_day, now or datetime.now(UTC))
    run = Run(
        id=new_id("rr"),
        provider=Provider(provider),
        business_day=business_day,
        status=RunStatus.RUNNING,
        trigger="dry_run",
        requested_by=who.id,
        rules=rules_for(provider, rules).to_json(),
        parallelism=1,
    )
    savepoint = session.begin_nested()
    try:
        session.add(run)
        session.flush()
        _prepare(session, run)
        start, end = day_window(run.business_day)
        run.ledger_items = ledger_side.stage(session, run.id, run.provider, start, end)
        bound = matching.params(run.id, run.provider, run.business_day, Rules.from_json(run.rules))
        chunk_figures = [
            matching.match_chunk(session, bound, chunk.bucket_lo, chunk.bucket_hi)
            for chunk in session.scalars(select(Chunk).where(Chunk.run_id == run.id, Chunk.phase == "match"))
        ]
        _settle(session, run)
        summary = matching.summarize(session, run.id, chunk_figures)
        exceptions = [
            dict(row._mapping)
            for row in session.execute(
                text(
                    """SELECT r.result, r.rule, r.kind, p.external_id AS provider_line, r.ledger_object,
                              r.provider_amount, r.ledger_amount, r.reason
                       FROM recon_result r LEFT JOIN recon_provider_line p ON p.id = r.provider_line_id
                       WHERE r.run_id = :run AND r.result <> 'matched' ORDER BY r.id LIMIT 200"""
                ),
                {"run": run.id},
            )
        ]
        figures = {"provider_lines": run.provider_lines, "ledger_items": run.ledger_items}
    except IntegrityError:
        savepoint.rollback()
        raise RunInProgress(
            f"A {provider} run of {business_day} is in progress; try again when it ends."
        ) from None
    savepoint.rollback()
    return {
        "provider": provider,
        "business_day": business_day,
        "dry_run": True,
        **figures,
        "summary": summary,
        "exceptions": exceptions,
    }


def resume_stalled_runs(*, queued_after_seconds: int = 120) -> int:
    """Hand stalled runs to workers again: queued ones never started, running ones nobody works on."""
    with job_session() as session:
        queued = session.scalars(
            select(Run.id).where(
                Run.status == RunStatus.QUEUED,
                Run.created_at < func.now() - timedelta(seconds=queued_after_seconds),
            )
        ).all()
        # A chunk nobody holds a lock on is one no live worker is matching.
        stalled = session.scalars(
            select(Chunk.run_id)
            .join(Run, Run.id == Chunk.run_id)
            .where(Run.status == RunStatus.RUNNING, Chunk.done.is_(False))
            .with_for_update(of=Chunk, skip_locked=True)
        ).all()
        finished = session.scalars(
            select(Run.id).where(Run.status == RunStatus.RUNNING, Run.chunks_done >= Run.chunks_total)
        ).all()
    minute = int(time.time() // 60)
    for run_id in queued:
        enqueue(START_JOB, job_id=f"recon-{run_id}-start-{minute}", run_id=run_id)
    for run_id in {*stalled, *finished}:
        enqueue(WORK_JOB, job_id=f"recon-{run_id}-resume-{minute}", run_id=run_id)
    resumed = len(queued) + len({*stalled, *finished})
    if resumed:
        log.warning("resumed %d stalled reconciliation runs", resumed)
    return resumed


SYSTEM = Principal(id="system:cron", kind="system", roles=frozenset({Role.FINANCE}))


def reconcile_yesterday(now: datetime | None = None) -> list[str]:
    """Queue a run of yesterday (in Hanoi) for every provider; one already active is left to finish."""
    day = business_day_of(now or datetime.now(UTC)) - timedelta(days=1)
    queued = []
    for provider in Provider:
        try:
            with job_session() as session:
                queued.append(
                    create_run(session, SYSTEM, provider=provider, business_day=day, trigger="cron").id
                )
        except RunInProgress:
            log.warning("a %s run of %s is already active; the scheduled run was not queued", provider, day)
    return queued
