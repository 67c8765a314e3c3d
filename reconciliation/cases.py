"""Cases: every exception of a run becomes one, for finance to assign, acknowledge, discuss and resolve.

A case is about one line (a provider line, or a ledger item no provider line explains), so a re-run that
finds the same line again adds to the same case instead of opening another. Resolutions correct the
ledger through the core: a write-off posts an adjusting entry (`payments.adjustments`), a manual match of
a transfer the bank's webhook never announced books it through the core's bank path, a refund queues a
payout back to the sender. Each step is in the case's trail with who, when and why; a resolved case
never changes again, and a case a re-run no longer finds is cleared.
"""

from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, Role
from hanoipay.errors import InvalidRequest
from hanoipay.pagination import Page, paginate
from hanoipay.settings import get_settings
from payments import ledger
from payments.adjustments import post_adjustment, writeoff_account
from payments.models import BankTransaction
from payments.payouts import queue_payout
from payments.providers.vietqr.webhook import BankNotification, apply_notification
from reconciliation.exceptions import CaseNotFound, CaseResolved, ResolutionNotApplicable
from reconciliation.models import (
    Case,
    CaseEvent,
    CaseStatus,
    LineKind,
    ProviderLine,
    Resolution,
    Result,
    ResultLine,
    Run,
)

SYSTEM_ACTOR = "system:reconciliation"
# The SQL below is built from constants only; every value is a bound parameter.

_KEY = """CASE WHEN r.rule = 'group'
                    THEN 'g:' || r.provider_line_id || ':'
                         || coalesce(r.ledger_item_id::text, r.ledger_object)
               WHEN r.provider_line_id IS NOT NULL THEN 'p:' || r.provider_line_id
               ELSE 'l:' || r.ledger_item_id END"""

_OPEN = f"""
WITH exc AS (
    SELECT DISTINCT ON (key) r.*, key
    FROM recon_result r, LATERAL (SELECT {_KEY} AS key) k
    WHERE r.run_id = :run AND r.result <> 'matched'
    ORDER BY key, r.id
), upserted AS (
    INSERT INTO recon_case (id, case_key, provider, business_day, result, kind, reason, status,
                            provider_line_id, ledger_item_id, ledger_entry_id, ledger_object, provider_amount,
                            ledger_amount, currency, first_run_id, last_run_id, created_at, updated_at)
    SELECT 'rcase_' || lpad(upper(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint)), 12, '0')
                    || upper(substr(md5(random()::text || key), 1, 14)),
           key, :provider, :day, result, kind, reason, 'open', provider_line_id, ledger_item_id,
           ledger_entry_id, ledger_object, provider_amount, ledger_amount,
           coalesce(provider_currency, ledger_currency, 'VND'), :run, :run, now(), now()
    FROM exc
    ON CONFLICT (case_key) DO UPDATE
        SET result = excluded.result, reason = excluded.reason, provider_amount = excluded.provider_amount,
            ledger_amount = excluded.ledger_amount, last_run_id = excluded.last_run_id, updated_at = now()
        WHERE recon_case.status <> 'resolved'
    RETURNING id, (xmax = 0) AS inserted
)
INSERT INTO recon_case_event (case_id, actor_id, action, data)
SELECT id, :actor, 'opened', jsonb_build_object('run_id', :run) FROM upserted WHERE inserted
"""  # noqa: S608  (constants only; values are bound)

_LINK = f"""
UPDATE recon_result r SET case_id = c.id FROM recon_case c
WHERE r.run_id = :run AND r.result <> 'matched' AND c.case_key = {_KEY}
"""  # noqa: S608

# Open cases of the same provider and day that this run no longer finds: the break went away.
_CLEAR = """
WITH cleared AS (
    UPDATE recon_case c
       SET status = 'resolved', resolution = 'cleared', resolved_by = :actor, resolved_at = now(),
           resolution_note = 'no longer an exception in run ' || :run, last_run_id = :run, updated_at = now()
    WHERE c.provider = :provider AND c.business_day = :day AND c.status <> 'resolved'
      AND NOT EXISTS (SELECT 1 FROM recon_result r WHERE r.run_id = :run AND r.case_id = c.id)
    RETURNING c.id
)
INSERT INTO recon_case_event (case_id, actor_id, action, note, data)
SELECT id, :actor, 'cleared', 'no longer an exception', jsonb_build_object('run_id', :run) FROM cleared
"""


def open_cases(session: Session, run: Run) -> None:
    """Open a case for every new exception of the run, refresh the open ones, clear those gone."""
    bound = {"run": run.id, "provider": run.provider, "day": run.business_day, "actor": SYSTEM_ACTOR}
    session.execute(text(_OPEN), bound)
    session.execute(text(_LINK), bound)
    session.execute(text(_CLEAR), bound)


def _require(who: Principal) -> None:
    who.require(Role.FINANCE)


def get_case(session: Session, who: Principal, case_id: str, *, for_update: bool = False) -> Case:
    """A case, for finance."""
    _require(who)
    case = session.get(Case, case_id, with_for_update=for_update, populate_existing=for_update)
    if case is None:
        raise CaseNotFound(f"No reconciliation case {case_id}.")
    return case


def list_cases(
    session: Session,
    who: Principal,
    *,
    status: str | None,
    provider: str | None,
    business_day: date | None,
    limit: int,
    starting_after: str | None,
) -> Page[Case]:
    """Cases, newest first, filtered by status, provider and day."""
    _require(who)
    query = select(Case)
    if status:
        query = query.where(Case.status == status)
    if provider:
        query = query.where(Case.provider == provider)
    if business_day:
        query = query.where(Case.business_day == business_day)
    return paginate(session, query, Case.id, limit=limit, starting_after=starting_after)


def case_events(session: Session, case_id: str) -> list[CaseEvent]:
    """The case's trail, oldest first."""
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def case_lines(session: Session, case: Case) -> dict[str, Any]:
    """The exact lines on each side: the provider's line, and the ledger entry with all its lines."""
    provider_line = session.get(ProviderLine, case.provider_line_id) if case.provider_line_id else None
    entry = None
    if case.ledger_entry_id:
        entry_row = session.execute(
            text(
                "SELECT id, kind, description, posted_at, intent_id, refund_id"
                " FROM journal_entry WHERE id = :id"
            ),
            {"id": case.ledger_entry_id},
        ).first()
        if entry_row is not None:
            lines = session.execute(
                text(
                    """SELECT a.code AS account, l.amount, l.currency FROM journal_line l
                       JOIN ledger_account a ON a.id = l.account_id WHERE l.entry_id = :id ORDER BY l.id"""
                ),
                {"id": case.ledger_entry_id},
            ).all()
            entry = {**entry_row._asdict(), "lines": [dict(line._mapping) for line in lines]}
    return {"provider_line": provider_line, "ledger_entry": entry}


def _event(session: Session, case: Case, who: Principal, action: str, note: str | None, **data: Any) -> None:
    session.execute(
        insert(CaseEvent).values(case_id=case.id, actor_id=who.id, action=action, note=note, data=data)
    )
    case.updated_at = func.now()


def _open_case(session: Session, who: Principal, case_id: str) -> Case:
    case = get_case(session, who, case_id, for_update=True)
    if case.status == CaseStatus.RESOLVED:
        raise CaseResolved(f"Case {case_id} was resolved ({case.resolution}); it cannot change any more.")
    return case


class AssigneeNotFinance(InvalidRequest):
    code = "assignee_not_finance"
    title = "Assignee is not finance staff"


def assign(session: Session, who: Principal, case_id: str, assignee_id: str, note: str | None) -> Case:
    """Give a case to a member of finance staff."""
    case = _open_case(session, who, case_id)
    assignee = session.get(User, assignee_id)
    if assignee is None or Role.FINANCE not in assignee.roles:
        raise AssigneeNotFinance(f"{assignee_id} is not a finance user; cases go to finance staff.")
    case.assignee_id = assignee.id
    _event(session, case, who, "assigned", note, assignee_id=assignee.id)
    session.flush()
    return case


def acknowledge(session: Session, who: Principal, case_id: str, note: str | None) -> Case:
    """Say the case has been seen and is being worked on."""
    case = _open_case(session, who, case_id)
    case.status, case.acknowledged_by, case.acknowledged_at = CaseStatus.ACKNOWLEDGED, who.id, func.now()
    _event(session, case, who, "acknowledged", note)
    session.flush()
    return case


def comment(session: Session, who: Principal, case_id: str, note: str) -> Case:
    """Add a comment to the case's trail."""
    case = _open_case(session, who, case_id)
    _event(session, case, who, "commented", note)
    session.flush()
    return case


def _latest_result(session: Session, case: Case) -> ResultLine | None:
    return session.scalars(
        select(ResultLine)
        .where(ResultLine.run_id == case.last_run_id, ResultLine.case_id == case.id)
        .limit(1)
    ).first()


def _suspense_receipt(session: Session, case: Case) -> BankTransaction | None:
    """The bank transfer a case is about, when its money waits in the unapplied receipts account."""
    if case.provider != "vietqr" or not (case.ledger_object or "").startswith("btx_"):
        return None
    txn = session.get(BankTransaction, case.ledger_object)
    return txn if txn is not None and txn.status != "applied" else None


def _listed_twice(case: Case) -> bool:
    """A provider line repeating one already matched: the listing doubled, not the money."""
    doubled_at_provider = case.provider_line_id is not None and case.ledger_amount is None
    return case.result == Result.DUPLICATE and doubled_at_provider


def _write_off(session: Session, who: Principal, case: Case, note: str) -> dict[str, Any]:
    """Post the difference between the provider and the ledger against a write-off account."""
    if case.result in (Result.SETTLED_OTHER_DAY, Result.CURRENCY_MISMATCH) or _listed_twice(case):
        raise ResolutionNotApplicable(
            f"A {case.result} case like this one moved no money to write off; use manual_match to accept it."
        )
    difference = (case.provider_amount or 0) - (case.ledger_amount or 0)
    result = _latest_result(session, case)
    if case.result == Result.FEE_MISMATCH and result is not None:
        difference = -((result.provider_fee or 0) - (result.expected_fee or 0))
    if difference == 0:
        raise ResolutionNotApplicable(
            "The provider and the ledger agree on the amount; there is nothing to write off."
        )
    clearing = ledger.clearing_account(session, case.provider, case.currency)
    receipt = _suspense_receipt(session, case)
    counter = (
        ledger.receipts_account(session, "vietqr", case.currency)
        if receipt is not None and case.provider_amount is None
        else writeoff_account(session, case.currency)
    )
    entry_id = post_adjustment(
        session,
        who,
        dedupe_key=f"recon_case:{case.id}",
        description=f"write-off of reconciliation case {case.id}: {note}"[:1000],
        lines=[(clearing, difference), (counter, -difference)],
    )
    return {"entry_id": entry_id, "object": counter.code, "amount": difference}


def _manual_match(session: Session, who: Principal, case: Case, note: str) -> dict[str, Any]:
    """Accept a timing difference, or book a transfer the bank's webhook never announced through the core."""
    if case.result == Result.SETTLED_OTHER_DAY or _listed_twice(case):
        return {"entry_id": None, "object": case.ledger_object, "amount": 0}
    line = session.get(ProviderLine, case.provider_line_id) if case.provider_line_id else None
    known = line is not None and session.scalar(
        select(func.count()).where(BankTransaction.bank_txn_id == line.external_id)
    )
    if (
        case.result != Result.MISSING_IN_LEDGER
        or case.provider != "vietqr"
        or line is None
        or line.kind != LineKind.PAYMENT
        or known
    ):
        raise ResolutionNotApplicable(
            "Manual match books a bank transfer the platform never heard of, or accepts a payment settled "
            "on another day or a line the provider listed twice; this case is none of these."
        )
    answer = apply_notification(
        session,
        BankNotification(
            transaction_id=line.external_id,
            account=get_settings().vietqr_account,
            amount=line.amount,
            currency=line.currency,
            description=line.description,
            occurred_at=line.occurred_at,
        ),
    )
    entry_id = session.scalar(
        text("SELECT id FROM journal_entry WHERE dedupe_key = :key"),
        {"key": f"bank_receipt:{line.external_id}"},
    )
    return {
        "entry_id": entry_id,
        "object": answer.get("payment_intent") or line.external_id,
        "amount": line.amount,
    }


def _refund(session: Session, who: Principal, case: Case, note: str) -> dict[str, Any]:
    """Send a transfer that paid nothing back to the account it came from, as a payout (receipts to
    payout clearing when it is queued, cleared when the bank says it was paid)."""
    receipt = _suspense_receipt(session, case)
    if receipt is None or not (receipt.counter_bank_bin and receipt.counter_account):
        raise ResolutionNotApplicable(
            "Refund sends back a bank transfer that paid no payment, to the account the bank named; "
            "this case is not one, or the bank did not say which account paid."
        )
    payout = queue_payout(
        session,
        source=ledger.receipts_account(session, "vietqr", receipt.currency),
        intent_id=receipt.intent_id,
        refund_id=None,
        bank_bin=receipt.counter_bank_bin,
        account=receipt.counter_account,
        amount=receipt.amount,
        currency=receipt.currency,
        reason=f"refund of bank transfer {receipt.bank_txn_id} (reconciliation case {case.id})",
    )
    return {"entry_id": None, "object": payout.id, "amount": receipt.amount}


_RESOLVERS = {
    Resolution.WRITE_OFF: _write_off,
    Resolution.MANUAL_MATCH: _manual_match,
    Resolution.REFUND: _refund,
}


def resolve(session: Session, who: Principal, case_id: str, resolution: str, note: str) -> Case:
    """Resolve a case once: correct the ledger through the core as the resolution says, and record why."""
    case = _open_case(session, who, case_id)
    outcome = _RESOLVERS[Resolution(resolution)](session, who, case, note)
    case.status, case.resolution, case.resolution_note = CaseStatus.RESOLVED, resolution, note
    case.resolution_entry_id, case.resolution_object = outcome["entry_id"], outcome["object"]
    case.resolved_by, case.resolved_at = who.id, func.now()
    _event(session, case, who, "resolved", note, resolution=resolution, **outcome)
    session.flush()
    session.refresh(case)
    return case


class NoteRequired(InvalidRequest):
    code = "note_required"
    title = "A note is required"
