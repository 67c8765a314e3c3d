"""Stripe's balance report ("Balance change from activity, itemized") as a CSV export.

Required columns: `balance_transaction_id`, `created_utc` (`2026-11-24 03:15:00`, UTC), `currency`,
`gross`, `fee`, `net` (decimal amounts in major units, as Stripe writes them), `reporting_category`
(`charge`, `refund`, `payout`, `fee`, `adjustment`, ...). Used when present: `payment_intent_id`,
`automatic_payout_id`, `source_id`, `description`, `payment_metadata[hanoipay_intent]` and
`refund_metadata[hanoipay_refund]`. Other columns of Stripe's report are ignored.
"""

from datetime import UTC, datetime

from payments.money import CURRENCIES
from reconciliation.models import LineKind
from reconciliation.sources import ParsedLine, Problems, clean_text, parse_amount
from reconciliation.sources.csv_common import rows

REQUIRED = {"balance_transaction_id", "created_utc", "currency", "gross", "fee", "net", "reporting_category"}
KINDS = {
    "charge": LineKind.PAYMENT,
    "payment": LineKind.PAYMENT,
    "refund": LineKind.REFUND,
    "payout": LineKind.PAYOUT,
    "fee": LineKind.FEE,
    "stripe_fee": LineKind.FEE,
}


def _created(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse(data: bytes) -> list[ParsedLine]:
    """Every line of the report, or MalformedStatement listing the bad ones."""
    problems, lines = Problems(), []
    for number, row in rows(data, REQUIRED, "Stripe balance report"):
        if "__error__" in row:
            problems.add(number, row["__error__"])
            continue
        currency = row["currency"].strip().upper()
        if currency not in CURRENCIES:
            problems.wrong_currency(number, currency)
            continue
        try:
            txn_id = row["balance_transaction_id"].strip()
            if not txn_id.startswith("txn_") or len(txn_id) > 128:
                raise ValueError("balance_transaction_id is not a txn_ id")
            gross, fee, net = (parse_amount(row[c], currency) for c in ("gross", "fee", "net"))
            if gross - fee != net:
                raise ValueError(f"gross − fee ≠ net ({gross} − {fee} ≠ {net})")
            created = _created(row["created_utc"])
        except ValueError as error:
            problems.add(number, str(error))
            continue
        kind = KINDS.get(row["reporting_category"].strip(), LineKind.ADJUSTMENT)
        payment_intent = row.get("payment_intent_id", "").strip() or None
        intent = row.get("payment_metadata[hanoipay_intent]", "").strip() or None
        refund = row.get("refund_metadata[hanoipay_refund]", "").strip() or None
        ref, hint = (refund, payment_intent) if kind == LineKind.REFUND else (payment_intent, intent)
        if kind == LineKind.PAYOUT:
            ref = row.get("source_id", "").strip() or None
        lines.append(
            ParsedLine(
                external_id=txn_id,
                kind=kind,
                amount=gross,
                fee=fee,
                currency=currency,
                occurred_at=created,
                ref=ref,
                hint=hint,
                group_ref=row.get("automatic_payout_id", "").strip() or None,
                description=clean_text(row.get("description", ""), 1000),
            )
        )
    problems.raise_any("Stripe balance report")
    return lines
