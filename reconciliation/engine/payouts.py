"""One-to-many matching of payouts, kept in this one module so it is easy to adapt.

- A Stripe payout against its balance transactions: the payout moves out exactly what its members
  (the transactions whose `group_ref` is the payout's id) netted, within the run's `group` tolerance.
- A bank payout batch against its transfers: one statement debit whose members (camt.053 `TxDtls`
  `EndToEndId`s) name our payouts (`payments.models.Payout`, paid through the ledger's `payout` entries).
  Each member becomes a result row of the batch line (rule `group`). When payouts grow into settlement
  batches in the core, this is the matcher to point at them.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from reconciliation.engine.matching import RESULT_COLUMNS

GroupMatcher = Callable[[Session, dict[str, Any]], None]

_WITHIN = "abs({a} - {b}) <= greatest(:group_abs, abs({a}) * :group_bps / 10000)"

_STRIPE_PAYOUTS = f"""
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT :run,
       CASE WHEN m.n = 0 THEN 'missing_in_ledger'
            WHEN NOT ({_WITHIN.format(a="p.amount", b="-m.net")}) THEN 'amount_mismatch'
            ELSE 'matched' END,
       'group', p.kind, p.id, NULL, NULL, p.ref, p.amount, -m.net, p.amount + m.net, p.fee, NULL,
       p.currency, p.currency, p.occurred_at, NULL,
       CASE WHEN m.n = 0
            THEN format('payout %s: none of the balance transactions it paid out are known', p.ref)
            ELSE format('payout %s of %s against %s balance transactions netting %s',
                        p.ref, -p.amount, m.n, m.net)
       END
FROM recon_up p
CROSS JOIN LATERAL (
    SELECT count(*) AS n, coalesce(sum(x.amount - x.fee), 0) AS net
    FROM recon_provider_line x
    WHERE x.provider = p.provider AND x.group_ref = p.ref AND x.kind <> 'payout'
) m
WHERE p.kind = 'payout' AND p.provider = 'stripe'
"""  # noqa: S608  (built from constants; values are bound parameters)

_BANK_BATCHES = f"""
WITH b AS (
    SELECT p.id AS pid, member, ordinality
    FROM recon_up p, jsonb_array_elements_text(p.members) WITH ORDINALITY AS e(member, ordinality)
    WHERE p.kind = 'payout_batch'
), m AS (
    SELECT b.pid, b.member, b.ordinality, l.id AS lid, l.amount, l.entry_id, l.currency, l.posted_at
    FROM b LEFT JOIN recon_ul l ON l.kind = 'payout' AND l.ref = b.member
), t AS (
    SELECT pid, count(lid) AS found, count(*) AS members, coalesce(sum(amount), 0) AS total
    FROM m GROUP BY pid
)
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT :run,
       CASE WHEN m.lid IS NULL THEN 'missing_in_ledger'
            WHEN NOT ({_WITHIN.format(a="p.amount", b="t.total")}) THEN 'amount_mismatch'
            ELSE 'matched' END,
       'group', p.kind, p.id, m.lid, m.entry_id, m.member,
       CASE WHEN m.ordinality = 1 THEN p.amount END, m.amount, 0, CASE WHEN m.ordinality = 1 THEN p.fee END,
       NULL, p.currency, m.currency, p.occurred_at, m.posted_at,
       CASE WHEN m.lid IS NULL THEN format('batch %s names payout %s, which the ledger did not pay that day',
                                           p.external_id, m.member)
            ELSE format('batch %s of %s against %s of its %s payouts paid for %s', p.external_id, -p.amount,
                        t.found, t.members, -t.total) END
FROM m JOIN t ON t.pid = m.pid JOIN recon_up p ON p.id = m.pid
"""  # noqa: S608


def stripe_payouts(session: Session, bound: dict[str, Any]) -> None:
    """Each Stripe payout of the day against the balance transactions it paid out."""
    session.execute(text(_STRIPE_PAYOUTS), bound)


def bank_batches(session: Session, bound: dict[str, Any]) -> None:
    """Each batch debit of the bank statement against the payouts it names."""
    session.execute(text(_BANK_BATCHES), bound)


GROUP_MATCHERS: dict[str, list[GroupMatcher]] = {"stripe": [stripe_payouts], "vietqr": [bank_batches]}
