"""A bank statement as CSV, in the columns HanoiPay documents for banks that do not send camt.053.

Columns (header required, any order, extra columns ignored):

| column | example | meaning |
|---|---|---|
| `transaction_id` | `FT26327000001` | the bank's own id of the transaction (the webhook's `transaction_id`) |
| `booked_at` | `2026-11-24T10:15:00+07:00` | when the bank booked it, ISO 8601 with an offset |
| `amount` | `85000` or `-120000` | signed, in major units: a credit (money in) is positive |
| `currency` | `VND` | ISO 4217 |
| `fee` | `1100` | what the bank charged for this transaction (empty or 0 for none) |
| `description` | `MBVCB.3301.HP78Y18N4TQSFA7S1T.CT tu 101010` | the transfer's text, where the reference is |
"""

from datetime import datetime

from payments.money import CURRENCIES
from reconciliation.models import LineKind
from reconciliation.sources import (
    ParsedLine,
    Problems,
    clean_text,
    intent_reference,
    parse_amount,
    payout_reference,
)
from reconciliation.sources.csv_common import rows

REQUIRED = {"transaction_id", "booked_at", "amount", "currency", "description"}


def bank_line(
    txn_id: str, booked_at: datetime, amount: int, fee: int, currency: str, description: str
) -> ParsedLine:
    """A bank statement line: a credit is a payment received, a debit a payout the platform sent."""
    if amount >= 0:
        return ParsedLine(
            txn_id,
            LineKind.PAYMENT,
            amount,
            currency,
            booked_at,
            fee=fee,
            ref=txn_id,
            hint=intent_reference(description),
            description=description,
        )
    payout = payout_reference(description)
    return ParsedLine(
        txn_id,
        LineKind.PAYOUT,
        amount,
        currency,
        booked_at,
        fee=fee,
        ref=payout or txn_id,
        hint=payout,
        description=description,
    )


def parse(data: bytes) -> list[ParsedLine]:
    """Every line of the statement, or MalformedStatement listing the bad ones."""
    problems, lines = Problems(), []
    for number, row in rows(data, REQUIRED, "bank statement"):
        if "__error__" in row:
            problems.add(number, row["__error__"])
            continue
        currency = row["currency"].strip().upper()
        if currency not in CURRENCIES:
            problems.wrong_currency(number, currency)
            continue
        try:
            txn_id = row["transaction_id"].strip()
            if not txn_id or len(txn_id) > 128:
                raise ValueError("transaction_id must be 1 to 128 characters")
            booked_at = datetime.fromisoformat(row["booked_at"].strip())
            if booked_at.tzinfo is None:
                raise ValueError("booked_at needs a UTC offset, e.g. 2026-11-24T10:15:00+07:00")
            amount = parse_amount(row["amount"], currency)
            if amount == 0:
                raise ValueError("amount is zero")
            fee = parse_amount(row.get("fee") or "0", currency)
            if fee < 0:
                raise ValueError("fee is negative")
        except ValueError as error:
            problems.add(number, str(error))
            continue
        description = clean_text(row["description"], 1000)
        lines.append(bank_line(txn_id, booked_at, amount, fee, currency, description))
    problems.raise_any("bank statement")
    return lines
