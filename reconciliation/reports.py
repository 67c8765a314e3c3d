"""Reports for finance: the daily close, and CSV exports of a run's lines and of cases (by COPY)."""

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.db import get_engine
from reconciliation.models import Provider, Run, RunStatus


def daily_close(session: Session, who: Principal, day: date) -> dict[str, Any]:
    """Whether every provider is reconciled for the day, with the open cases and their amounts."""
    who.require(Role.FINANCE)
    providers = []
    for provider in Provider:
        latest = session.scalars(
            select(Run)
            .where(Run.provider == provider, Run.business_day == day, Run.trigger != "dry_run")
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
        completed = session.scalars(
            select(Run)
            .where(Run.provider == provider, Run.business_day == day, Run.status == RunStatus.COMPLETED)
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
        open_cases = session.execute(
            text(
                """SELECT count(*),
                          coalesce(sum(abs(coalesce(provider_amount, 0) - coalesce(ledger_amount, 0))), 0)
                   FROM recon_case WHERE provider = :p AND business_day = :d AND status <> 'resolved'"""
            ),
            {"p": provider, "d": day},
        ).one()
        summary = completed.summary if completed is not None and completed.summary else None
        providers.append(
            {
                "provider": provider.value,
                "latest_run": None if latest is None else {"id": latest.id, "status": latest.status},
                "completed_run_id": None if completed is None else completed.id,
                "reconciled": completed is not None and int(open_cases[0]) == 0,
                "matched": summary["results"].get("matched", {}).get("count", 0) if summary else 0,
                "exceptions": summary["exceptions"] if summary else 0,
                "open_cases": int(open_cases[0]),
                "open_amount": int(open_cases[1]),
            }
        )
    return {
        "business_day": day,
        "closed": all(p["reconciled"] for p in providers),
        "providers": providers,
    }


LINES_CSV = """
COPY (
    SELECT r.id AS result_id, r.result, r.rule, r.kind, p.external_id AS provider_line, p.ref AS provider_ref,
           r.ledger_object, r.ledger_entry_id, r.provider_amount, r.ledger_amount, r.drift, r.provider_fee,
           r.expected_fee, coalesce(r.provider_currency, r.ledger_currency) AS currency, r.provider_at,
           r.ledger_at, r.reason, r.case_id
    FROM recon_result r LEFT JOIN recon_provider_line p ON p.id = r.provider_line_id
    WHERE r.run_id = %s ORDER BY r.id
) TO STDOUT WITH (FORMAT csv, HEADER)
"""

CASES_CSV = """
COPY (
    SELECT c.id, c.provider, c.business_day, c.status, c.result, c.kind, p.external_id AS provider_line,
           c.ledger_object, c.ledger_entry_id, c.provider_amount, c.ledger_amount, c.currency, c.reason,
           c.assignee_id, c.resolution, c.resolved_by, c.resolved_at, c.resolution_note,
           c.resolution_entry_id, c.created_at
    FROM recon_case c LEFT JOIN recon_provider_line p ON p.id = c.provider_line_id
    WHERE (%s::date IS NULL OR c.business_day = %s::date) AND (%s::text IS NULL OR c.status = %s::text)
    ORDER BY c.id
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def stream_csv(sql: str, params: tuple[Any, ...]) -> Iterator[bytes]:
    """A CSV export produced by PostgreSQL's COPY, streamed as it comes, on its own connection."""
    with get_engine().connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(sql, params) as copy:
            yield from (bytes(block) for block in copy)
