"""Reconciliation's jobs: thin, idempotent, each opening its own sessions through the run service."""

import logging

from hanoipay.jobs import job
from reconciliation import chunks, runs

log = logging.getLogger(__name__)


@job("reconciliation.start_run")
def start_run(run_id: str) -> bool:
    """Load a queued run's inputs and hand its chunks to workers; a run no longer queued is left alone."""
    try:
        return runs.start_run(run_id)
    except Exception as error:
        runs.fail_run(run_id, f"engine error while starting: {type(error).__name__}: {error}")
        raise


@job("reconciliation.work_on_run")
def work_on_run(run_id: str) -> int:
    """Match chunks of a running run until none is left, then complete it."""
    try:
        return chunks.work_on_run(run_id)
    except Exception as error:
        runs.fail_run(run_id, f"engine error while matching: {type(error).__name__}: {error}")
        raise


@job("reconciliation.resume_stalled_runs")
def resume_stalled_runs() -> int:
    """Hand runs whose workers died back to the queue."""
    return runs.resume_stalled_runs()


@job("reconciliation.reconcile_yesterday")
def reconcile_yesterday() -> list[str]:
    """Queue the nightly runs of yesterday (02:00 in Hanoi), one per provider."""
    return runs.reconcile_yesterday()


@job("reconciliation.drop_staging")
def drop_staging(run_id: str) -> int:
    """Delete a completed run's staged ledger items, off the run's critical path."""
    return chunks.drop_staging(run_id)
