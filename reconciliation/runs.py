"""Reconciliation runs: one per provider and business day, split into chunks that workers claim.

A run is created `queued` (a second active run of the same day is refused by a partial unique index),
then `start_run` loads the provider's lines, stages the ledger's side and creates its chunks, and
`work_on_run` (one job per worker, in `reconciliation.chunks`) works on them until the run completes.
A run that stalls is handed to workers again by `resume_stalled_runs`; `reconcile_yesterday` queues the
nightly runs.
"""

import logging
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue, enqueue_after_commit
from hanoipay.settings import get_settings
from reconciliation.chunks import prepare
from reconciliation.days import business_day_of, check_day, day_window
from reconciliation.exceptions import RunInProgress
from reconciliation.models import Chunk, Provider, Run, RunStatus
from reconciliation.rules import Rules, RulesIn, rules_for
from reconciliation.sources import ParsedLine, stripe_api
from reconciliation.sources.store import store_lines

log = logging.getLogger(__name__)

START_JOB = "reconciliation.start_run"
WORK_JOB = "reconciliation.work_on_run"


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
    check_day(business_day, now or datetime.now(UTC))
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
        prepare(session, run)
        run.status, run.started_at = RunStatus.RUNNING, func.now()
    for worker in range(run.parallelism):
        enqueue(WORK_JOB, job_id=f"recon-{run_id}-w{worker}", run_id=run_id)
    return True


def fail_run(run_id: str, error: str) -> None:
    """Mark a run failed with an engine error (a provider it could not read, a crash), apart from breaks."""
    with job_session() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .values(status=RunStatus.FAILED, error=error[:2000], finished_at=func.now())
        )
    log.error("reconciliation run %s failed: %s", run_id, error)


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
