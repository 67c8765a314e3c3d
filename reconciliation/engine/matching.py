"""Matching in SQL, set-based: one statement per pass, never a row at a time in Python.

Both sides carry `ref` (the provider's reference for the object) and `hint` (a reference read from a
description); amounts are signed from the provider balance's side, so a payment is positive on both.
"""

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from reconciliation.engine.ledger_side import DEDUPE_KEY
from reconciliation.rules import Rules

RESULT_COLUMNS = (
    "run_id, result, rule, kind, provider_line_id, ledger_item_id, ledger_entry_id, ledger_object,"
    " provider_amount, ledger_amount, drift, provider_fee, expected_fee, provider_currency, ledger_currency,"
    " provider_at, ledger_at, reason"
)

_EXPECTED_FEE = (
    "CASE WHEN :fee_on AND p.kind = 'payment' THEN (abs(p.amount) * :fee_bps + 5000) / 10000 + :fee_fixed END"
)


def _classified(tolerance: str) -> tuple[str, str]:
    """The (result, reason) expressions for a pair p / l under the named amount tolerance."""
    beyond = (
        f"abs(p.amount - l.amount) > greatest(:{tolerance}_abs, abs(l.amount) * :{tolerance}_bps / 10000)"
    )
    fee_off = (
        f"({_EXPECTED_FEE}) IS NOT NULL AND abs(p.fee - ({_EXPECTED_FEE}))"
        " > greatest(:fee_abs, abs(p.amount) * :fee_tbps / 10000)"
    )
    unapplied = "l.state IS NOT NULL AND l.state NOT IN ('late_paid', 'excess')"
    result = f"""CASE
        WHEN p.currency <> l.currency THEN 'currency_mismatch'
        WHEN {beyond} THEN 'amount_mismatch'
        WHEN {unapplied} THEN 'missing_in_ledger'
        WHEN l.state = 'late_paid' THEN 'duplicate'
        WHEN l.state = 'excess' THEN 'amount_mismatch'
        WHEN {fee_off} THEN 'fee_mismatch'
        ELSE 'matched' END"""
    reason = f"""CASE
        WHEN p.currency <> l.currency
            THEN format('currency differs: provider %s, ledger %s', p.currency, l.currency)
        WHEN {beyond} THEN format('amount differs by %s: provider %s, ledger %s, beyond the tolerance',
                                  p.amount - l.amount, p.amount, l.amount)
        WHEN {unapplied} THEN format('the transfer is booked but paid no payment (bank status %s)', l.state)
        WHEN l.state = 'late_paid' THEN 'the payment was already paid: the same payment arrived twice'
        WHEN l.state = 'excess'
            THEN 'more arrived than the payment asked; the excess waits for a refund payout'
        WHEN {fee_off} THEN format('fee %s where the schedule expects %s', p.fee, {_EXPECTED_FEE})
        WHEN p.amount <> l.amount
            THEN format('matched with a drift of %s within the tolerance', p.amount - l.amount)
        ELSE 'matched' END"""
    return result, reason


def _pair_select(rule: str, tolerance: str) -> str:
    result, reason = _classified(tolerance)
    return f"""SELECT :run, {result}, '{rule}', p.kind, p.id, l.id, l.entry_id, l.object_id, p.amount,
        l.amount, p.amount - l.amount, p.fee, {_EXPECTED_FEE}, p.currency, l.currency, p.occurred_at,
        l.posted_at, {reason}"""


def params(run_id: str, provider: str, day: date, rules: Rules) -> dict[str, Any]:
    """The bind parameters every matching statement of a run takes."""
    schedule = rules.fee_schedule
    return {
        "run": run_id,
        "provider": provider,
        "day": day,
        "exact_abs": rules.exact.amount_abs,
        "exact_bps": rules.exact.amount_bps,
        "fuzzy_abs": rules.fuzzy.amount_abs,
        "fuzzy_bps": rules.fuzzy.amount_bps,
        "fuzzy_seconds": rules.fuzzy.seconds,
        "group_abs": rules.group.amount_abs,
        "group_bps": rules.group.amount_bps,
        "fee_on": schedule is not None,
        "fee_bps": schedule.bps if schedule else 0,
        "fee_fixed": schedule.fixed if schedule else 0,
        "fee_abs": rules.fee.amount_abs,
        "fee_tbps": rules.fee.amount_bps,
        "settle_days": rules.settle_days,
    }


_EXACT = f"""
WITH p AS (
    SELECT pl.*, row_number() OVER (PARTITION BY pl.ref, pl.kind ORDER BY pl.id) AS n
    FROM recon_provider_line pl
    WHERE pl.provider = :provider AND pl.business_day = :day AND pl.bucket BETWEEN :lo AND :hi
      AND pl.ref IS NOT NULL AND pl.kind <> 'payout_batch'
), l AS (
    SELECT li.*, row_number() OVER (PARTITION BY li.ref, li.kind ORDER BY li.id) AS n
    FROM recon_ledger_item li
    WHERE li.run_id = :run AND li.bucket BETWEEN :lo AND :hi AND li.ref IS NOT NULL
), inserted AS (
    INSERT INTO recon_result ({RESULT_COLUMNS})
    {_pair_select("exact", "exact")}
    FROM p JOIN l ON l.ref = p.ref AND l.kind = p.kind AND l.n = p.n
    RETURNING result, provider_amount, ledger_amount, drift
)
SELECT result, count(*), coalesce(sum(provider_amount), 0), coalesce(sum(ledger_amount), 0),
       count(*) FILTER (WHERE drift <> 0), coalesce(sum(drift), 0)
FROM inserted GROUP BY result
"""  # noqa: S608  (every statement here is built from constants; values are bound parameters)


def match_chunk(session: Session, bound: dict[str, Any], lo: int, hi: int) -> dict[str, list[int]]:
    """Match a range of buckets exactly by reference; returns the figures of each result it wrote."""
    # Hash or merge joins whatever the statistics say: the staged rows are too fresh to have any.
    session.execute(text("SET LOCAL enable_nestloop = off"))
    rows = session.execute(text(_EXACT), {**bound, "lo": lo, "hi": hi}).all()
    return {str(row[0]): [int(v) for v in row[1:]] for row in rows}


_UNMATCHED = """
CREATE TEMP TABLE recon_up ON COMMIT DROP AS
SELECT pl.* FROM recon_provider_line pl
WHERE pl.provider = :provider AND pl.business_day = :day
  AND NOT EXISTS (SELECT 1 FROM recon_result r WHERE r.run_id = :run AND r.provider_line_id = pl.id);
CREATE TEMP TABLE recon_ul ON COMMIT DROP AS
SELECT li.* FROM recon_ledger_item li
WHERE li.run_id = :run
  AND NOT EXISTS (SELECT 1 FROM recon_result r WHERE r.run_id = :run AND r.ledger_item_id = li.id);
ANALYZE recon_up;
ANALYZE recon_ul;
"""

# Amount + time window + the reference found in a description; each line pairs with its nearest in time.
_FUZZY = f"""
WITH cand AS (
    SELECT DISTINCT ON (p.id) p.id AS pid, l.id AS lid
    FROM recon_up p JOIN recon_ul l
      ON l.kind = p.kind AND l.currency = p.currency
     AND (p.hint = l.hint OR p.hint = l.ref OR p.ref = l.hint)
     AND abs(p.amount - l.amount) <= greatest(:fuzzy_abs, abs(l.amount) * :fuzzy_bps / 10000)
     AND abs(extract(epoch FROM p.occurred_at - l.posted_at)) <= :fuzzy_seconds
    WHERE p.kind NOT IN ('payout_batch')
    ORDER BY p.id, abs(extract(epoch FROM p.occurred_at - l.posted_at)), l.id
), pairs AS (
    SELECT DISTINCT ON (lid) pid, lid FROM cand ORDER BY lid, pid
)
INSERT INTO recon_result ({RESULT_COLUMNS})
{_pair_select("fuzzy", "fuzzy")}
FROM pairs JOIN recon_up p ON p.id = pairs.pid JOIN recon_ul l ON l.id = pairs.lid
"""  # noqa: S608

_FORGET_MATCHED = """
DELETE FROM recon_up p USING recon_result r WHERE r.run_id = :run AND r.provider_line_id = p.id;
DELETE FROM recon_ul l USING recon_result r WHERE r.run_id = :run AND r.ledger_item_id = l.id;
"""

# A second line for something already matched: the provider listed it twice, or the ledger booked it twice.
_DUPLICATES = f"""
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT DISTINCT ON (p.id) :run, 'duplicate', 'duplicate', p.kind, p.id, NULL, r.ledger_entry_id,
       r.ledger_object, p.amount, NULL, 0, p.fee, NULL, p.currency, NULL, p.occurred_at, NULL,
       format('the provider reports %s again (its line %s already matched %s)',
              coalesce(p.ref, p.external_id), first.external_id, coalesce(r.ledger_object, 'the ledger'))
FROM recon_up p
JOIN recon_provider_line first ON first.provider = p.provider AND first.id <> p.id
     AND (first.external_id = p.external_id OR (first.ref = p.ref AND first.kind = p.kind))
JOIN recon_result r ON r.run_id = :run AND r.provider_line_id = first.id AND r.rule <> 'group'
ORDER BY p.id, first.id;
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT DISTINCT ON (l.id) :run, 'duplicate', 'duplicate', l.kind, NULL, l.id, l.entry_id, l.object_id,
       NULL, l.amount, 0, NULL, NULL, NULL, l.currency, NULL, l.posted_at,
       format('the ledger booked %s twice: %s already matched the provider''s line for it',
              coalesce(l.hint, l.ref), first.object_id)
FROM recon_ul l
JOIN recon_ledger_item first ON first.run_id = :run AND first.id <> l.id AND first.kind = l.kind
     AND first.amount = l.amount AND (first.hint = l.hint OR first.ref = l.ref)
JOIN recon_result r ON r.run_id = :run AND r.ledger_item_id = first.id AND r.provider_line_id IS NOT NULL
ORDER BY l.id, first.id;
"""  # noqa: S608


def _other_day(provider: str) -> str:
    return f"""
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT DISTINCT ON (l.id) :run, 'settled_other_day', 'other_day', l.kind, p.id, l.id, l.entry_id,
       l.object_id, p.amount, l.amount, p.amount - l.amount, p.fee, NULL, p.currency, l.currency,
       p.occurred_at, l.posted_at,
       format('the provider settled it on %s, the ledger posted it on %s', p.business_day, l.business_day)
FROM recon_ul l
JOIN recon_provider_line p ON p.provider = :provider AND p.ref = l.ref AND p.kind = l.kind
     AND p.business_day <> :day AND p.business_day BETWEEN :day - :settle_days AND :day + :settle_days
ORDER BY l.id, abs(p.business_day - :day), p.id;
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT DISTINCT ON (p.id) :run, 'settled_other_day', 'other_day', p.kind, p.id, jl.id, je.id,
       coalesce(je.refund_id, je.intent_id, je.dedupe_key),
       p.amount, jl.amount, p.amount - jl.amount, p.fee, NULL, p.currency, jl.currency, p.occurred_at,
       jl.posted_at,
       format('the ledger posted it on %s, the provider settled it on %s',
              (jl.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, p.business_day)
FROM recon_up p
JOIN journal_entry je ON je.dedupe_key = ({DEDUPE_KEY[provider]})
JOIN journal_line jl ON jl.entry_id = je.id
     AND jl.account_id IN (SELECT id FROM ledger_account
                           WHERE code LIKE 'provider_clearing:' || :provider || ':%')
WHERE p.kind IN ('payment', 'refund', 'payout')
  AND (jl.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date <> :day
  AND (jl.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date BETWEEN :day - :settle_days AND :day + :settle_days
ORDER BY p.id, jl.id;
"""  # noqa: S608


_LEFTOVERS = f"""
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT :run, 'missing_in_ledger', 'unmatched', p.kind, p.id, NULL, NULL, NULL, p.amount, NULL, 0, p.fee, NULL,
       p.currency, NULL, p.occurred_at, NULL,
       CASE p.kind WHEN 'fee' THEN 'a provider fee the ledger never booked'
                   WHEN 'adjustment' THEN 'a provider adjustment the ledger never booked'
                   ELSE format('no ledger entry for %s', coalesce(p.ref, p.hint, p.external_id)) END
FROM recon_up p WHERE p.kind NOT IN ('payout_batch') AND NOT (p.kind = 'payout' AND :provider = 'stripe');
INSERT INTO recon_result ({RESULT_COLUMNS})
SELECT :run, 'missing_at_provider', 'unmatched', l.kind, NULL, l.id, l.entry_id, l.object_id, NULL,
       l.amount, 0, NULL, NULL, NULL, l.currency, NULL, l.posted_at,
       format('the provider does not report %s', coalesce(l.ref, l.object_id))
FROM recon_ul l;
"""  # noqa: S608


def _run_script(session: Session, script: str, bound: dict[str, Any]) -> None:
    for statement in (s.strip() for s in script.split(";\n")):
        if statement:
            session.execute(text(statement), bound)


def settle_residue(session: Session, bound: dict[str, Any], group_matchers: list[Any]) -> None:
    """Everything the exact pass left: fuzzy pairs, duplicates, other days, groups, then what is missing."""
    session.execute(text("SET LOCAL enable_nestloop = off"))  # two anti-joins over the whole day
    _run_script(session, _UNMATCHED, bound)
    session.execute(text("SET LOCAL enable_nestloop = on"))  # the residue is small: look it up by index
    session.execute(text(_FUZZY), bound)
    _run_script(session, _FORGET_MATCHED, bound)
    _run_script(session, _DUPLICATES, bound)
    _run_script(session, _FORGET_MATCHED, bound)
    _run_script(session, _other_day(bound["provider"]), bound)
    _run_script(session, _FORGET_MATCHED, bound)
    for matcher in group_matchers:
        matcher(session, bound)
    _run_script(session, _FORGET_MATCHED, bound)
    _run_script(session, _LEFTOVERS, bound)


_RESIDUE_FIGURES = """
SELECT result, count(*), coalesce(sum(provider_amount), 0), coalesce(sum(ledger_amount), 0),
       count(*) FILTER (WHERE drift <> 0), coalesce(sum(drift), 0)
FROM recon_result WHERE run_id = :run AND rule <> 'exact' GROUP BY result
"""


def summarize(session: Session, run_id: str, chunk_figures: list[dict[str, list[int]]]) -> dict[str, Any]:
    """Counts and amounts per result, with the drift matched within tolerance.

    The chunks' figures (computed as they wrote their rows) plus the residue's, so a million matched
    lines are never read back.
    """
    totals: dict[str, list[int]] = {}
    residue = session.execute(text(_RESIDUE_FIGURES), {"run": run_id}).all()
    for figures in [*chunk_figures, {str(r[0]): [int(v) for v in r[1:]] for r in residue}]:
        for name, values in figures.items():
            totals[name] = [a + b for a, b in zip(totals.get(name, [0] * 5), values, strict=True)]
    results = {
        name: {"count": v[0], "provider_amount": v[1], "ledger_amount": v[2]}
        for name, v in sorted(totals.items())
    }
    counts: Counter[str] = Counter({name: v[0] for name, v in totals.items()})
    drift = totals.get("matched", [0] * 5)
    return {
        "results": results,
        "lines": sum(counts.values()),
        "exceptions": sum(n for name, n in counts.items() if name != "matched"),
        "drift": {"count": drift[3], "amount": drift[4]},
    }
