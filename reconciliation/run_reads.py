"""Reading reconciliation runs: one run, a page of them, its progress, and a dry run that saves nothing."""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from reconciliation.chunks import prepare, settle
from reconciliation.days import check_day, day_window
from reconciliation.engine import ledger_side, matching
from reconciliation.exceptions import RunInProgress, RunNotFound
from reconciliation.models import Chunk, Provider, Run, RunStatus
from reconciliation.rules import Rules, RulesIn, rules_for


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
    check_day(business_day, now or datetime.now(UTC))
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
        prepare(session, run)
        start, end = day_window(run.business_day)
        run.ledger_items = ledger_side.stage(session, run.id, run.provider, start, end)
        bound = matching.params(run.id, run.provider, run.business_day, Rules.from_json(run.rules))
        chunk_figures = [
            matching.match_chunk(session, bound, chunk.bucket_lo, chunk.bucket_hi)
            for chunk in session.scalars(select(Chunk).where(Chunk.run_id == run.id, Chunk.phase == "match"))
        ]
        settle(session, run)
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
