"""Invoice arithmetic, pure and table-tested: discounts and exemptions, installments, late fees.

Rounding, one rule everywhere: a percentage of an amount in VND is `amount × bps / 10 000` rounded half
up to a whole đồng (the rule of `payments.money.fee_for`). Installments take `total × share` rounded
down, and the last one takes what is left, so they always add up to the total. Payments fill installments
in order (the earliest due first).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from merchants.exceptions import AdjustmentTooLarge, ScheduleInvalid
from payments.money import fee_for

FULL_SHARE = 10_000


@dataclass(frozen=True)
class Item:
    """A fee item on a bill: tuition, meals, boarding, insurance."""

    code: str
    name: str
    amount: int


@dataclass(frozen=True)
class Adjustment:
    """A discount or an exemption on one item: a percentage (basis points) or a fixed amount, with why."""

    item_code: str
    kind: str
    reason: str
    percent_bps: int | None = None
    amount: int | None = None


@dataclass(frozen=True)
class Line:
    """A line of an invoice: items are positive, discounts and exemptions negative."""

    kind: str
    item_code: str
    description: str
    amount: int
    reason: str | None = None


@dataclass(frozen=True)
class Share:
    """One installment of a schedule: its due date and its share of the total in basis points."""

    due_on: date
    share_bps: int


@dataclass(frozen=True)
class LateFeeRule:
    """`none`, `fixed` (VND per overdue installment) or `percent` (bps of the overdue amount)."""

    kind: str = "none"
    value: int = 0
    grace_days: int = 0


def adjustment_amount(item: Item, adjustment: Adjustment) -> int:
    """How much an adjustment takes off its item; never more than the item."""
    if adjustment.percent_bps is not None:
        taken = fee_for(item.amount, adjustment.percent_bps)
    else:
        taken = adjustment.amount or 0
    if taken > item.amount:
        raise AdjustmentTooLarge(
            f"The {adjustment.kind} on {item.code} ({taken}) is larger than the item ({item.amount})."
        )
    return taken


def invoice_lines(items: Sequence[Item], adjustments: Sequence[Adjustment]) -> list[Line]:
    """The lines of an invoice: each item, then its adjustments (which must name an item of the bill)."""
    by_code = {item.code: item for item in items}
    lines = []
    for item in items:
        if item.amount < 0:
            raise ScheduleInvalid(f"Item {item.code} has a negative amount.")
        lines.append(Line("item", item.code, item.name, item.amount))
        taken = 0
        for adjustment in (a for a in adjustments if a.item_code == item.code):
            off = adjustment_amount(item, adjustment)
            taken += off
            if taken > item.amount:
                raise AdjustmentTooLarge(f"The adjustments on {item.code} add up to more than the item.")
            label = "Miễn" if adjustment.kind == "exemption" else "Giảm"
            lines.append(Line(adjustment.kind, item.code, f"{label}: {item.name}", -off, adjustment.reason))
    unknown = {a.item_code for a in adjustments} - set(by_code)
    if unknown:
        raise ScheduleInvalid(f"Adjustments name items not on the bill: {', '.join(sorted(unknown))}.")
    return lines


def check_shares(shares: Sequence[Share]) -> None:
    """Refuse installments that do not add up to the whole, or are not in date order."""
    if not shares:
        raise ScheduleInvalid("A schedule needs at least one installment.")
    if sum(s.share_bps for s in shares) != FULL_SHARE or any(s.share_bps <= 0 for s in shares):
        raise ScheduleInvalid("Installment shares must be positive and add up to 10 000 basis points.")
    if any(b.due_on <= a.due_on for a, b in pairwise(shares)):
        raise ScheduleInvalid("Installments must fall due one after another.")


def split_installments(total: int, shares: Sequence[Share]) -> list[tuple[int, date, int]]:
    """(seq, due_on, amount) of each installment: shares rounded down, the last takes the rest."""
    check_shares(shares)
    parts, given = [], 0
    for seq, share in enumerate(shares, start=1):
        amount = total - given if seq == len(shares) else total * share.share_bps // FULL_SHARE
        given += amount
        parts.append((seq, share.due_on, amount))
    return parts


def paid_per_installment(amounts: Sequence[int], paid: int) -> list[int]:
    """How much of each installment `paid` covers, the earliest first."""
    covered = []
    for amount in amounts:
        part = min(amount, max(0, paid))
        covered.append(part)
        paid -= part
    return covered


def due_now(installments: Sequence[tuple[date, int]], paid: int, today: date) -> int:
    """What must be paid by today: installments due on or before today, less what was paid."""
    return max(0, sum(amount for due_on, amount in installments if due_on <= today) - paid)


def late_fees(
    installments: Sequence[tuple[int, date, int]],
    paid: int,
    today: date,
    rule: LateFeeRule,
    charged: frozenset[int] = frozenset(),
) -> list[tuple[int, int]]:
    """(seq, fee) for each installment still unpaid `grace_days` after it fell due and not yet charged."""
    if rule.kind == "none":
        return []
    covered = paid_per_installment([amount for _, _, amount in installments], paid)
    fees = []
    for (seq, due_on, amount), part in zip(installments, covered, strict=True):
        overdue = amount - part
        if overdue <= 0 or seq in charged or today <= due_on + timedelta(days=rule.grace_days):
            continue
        fee = rule.value if rule.kind == "fixed" else fee_for(overdue, rule.value)
        if fee > 0:
            fees.append((seq, fee))
    return fees
