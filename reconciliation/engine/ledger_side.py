"""The ledger's side of a run: the lines on the provider's clearing account posted on the business day.

Everything a provider moves for the platform passes through `provider_clearing:<provider>:<CUR>`: a card
payment debits it, a refund credits it, a bank transfer received debits it, a payout sent credits it.
Each such line is staged with the reference the provider knows it by, so matching is a join.
"""

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from reconciliation.models import Provider

_STRIPE = """
INSERT INTO recon_ledger_item
    (run_id, id, entry_id, kind, object_id, ref, hint, amount, currency, posted_at, business_day, state)
SELECT :run, jl.id, je.id, je.kind, coalesce(je.refund_id, je.intent_id),
       CASE WHEN je.kind = 'refund' THEN je.refund_id ELSE pi.provider_ref END,
       CASE WHEN je.kind = 'refund' THEN pi.provider_ref ELSE je.intent_id END,
       jl.amount, jl.currency, jl.posted_at, (jl.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, NULL
FROM journal_line jl
JOIN journal_entry je ON je.id = jl.entry_id
LEFT JOIN payment_intent pi ON pi.id = je.intent_id
WHERE jl.account_id = ANY(:accounts)
  AND jl.posted_at >= :start AND jl.posted_at < :end AND je.kind IN ('payment', 'refund')
"""

# A bank receipt's state says whether the money reached a payment: NULL when it did (applied, or a part
# of a payment later completed), otherwise the bank transaction's status ('late_paid' when it arrived
# for an intent already paid: the same payment twice).
_VIETQR = """
INSERT INTO recon_ledger_item
    (run_id, id, entry_id, kind, object_id, ref, hint, amount, currency, posted_at, business_day, state)
SELECT :run, jl.id, je.id,
       CASE je.kind WHEN 'bank_receipt' THEN 'payment' ELSE 'payout' END,
       CASE je.kind WHEN 'bank_receipt' THEN bt.id ELSE substr(je.dedupe_key, 8) END,
       CASE je.kind WHEN 'bank_receipt' THEN substr(je.dedupe_key, 14) ELSE substr(je.dedupe_key, 8) END,
       CASE je.kind WHEN 'bank_receipt' THEN pi.reference ELSE substr(je.dedupe_key, 8) END,
       jl.amount, jl.currency, jl.posted_at, (jl.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,
       CASE WHEN je.kind <> 'bank_receipt' OR bt.status = 'applied' THEN NULL
            WHEN bt.status = 'partial' AND pi.status = 'succeeded' THEN NULL
            WHEN bt.status = 'late' AND pi.status = 'succeeded' THEN 'late_paid'
            ELSE coalesce(bt.status, 'unknown') END
FROM journal_line jl
JOIN journal_entry je ON je.id = jl.entry_id
LEFT JOIN bank_transaction bt ON je.kind = 'bank_receipt' AND bt.bank_txn_id = substr(je.dedupe_key, 14)
LEFT JOIN payment_intent pi ON pi.id = bt.intent_id
WHERE jl.account_id = ANY(:accounts)
  AND jl.posted_at >= :start AND jl.posted_at < :end AND je.kind IN ('bank_receipt', 'payout_sent')
"""

STAGE: dict[str, str] = {Provider.STRIPE: _STRIPE, Provider.VIETQR: _VIETQR}

# The ledger entry a provider line would have, by its reference, to find one posted on another day.
DEDUPE_KEY: dict[str, str] = {
    Provider.STRIPE: """CASE p.kind
        WHEN 'payment' THEN 'payment:' || (SELECT pi.id FROM payment_intent pi
                                           WHERE pi.provider = 'stripe' AND pi.provider_ref = p.ref LIMIT 1)
        WHEN 'refund' THEN 'refund:' || p.ref END""",
    Provider.VIETQR: """CASE p.kind
        WHEN 'payment' THEN 'bank_receipt:' || p.ref
        WHEN 'payout' THEN 'payout:' || p.ref END""",
}


def stage(session: Session, run_id: str, provider: str, start: datetime, end: datetime) -> int:
    """Stage the ledger items posted in [start, end) (one slice of the run's day); returns how many."""
    accounts = list(
        session.scalars(
            text("SELECT id FROM ledger_account WHERE code LIKE 'provider_clearing:' || :p || ':%'"),
            {"p": provider},
        )
    )
    staged = session.execute(
        text(STAGE[provider]), {"run": run_id, "start": start, "end": end, "accounts": accounts}
    )
    return int(staged.rowcount or 0)  # type: ignore[attr-defined]
