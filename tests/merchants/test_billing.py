"""Invoice arithmetic, table-driven, each expected amount computed by hand in the comment beside it."""

from datetime import date

import pytest

from merchants.exceptions import AdjustmentTooLarge, ScheduleInvalid
from merchants.service.tuition.billing import (
    Adjustment,
    Item,
    LateFeeRule,
    Share,
    due_now,
    invoice_lines,
    late_fees,
    paid_per_installment,
    split_installments,
)

TUITION = Item("tuition", "Học phí", 1_250_000)
MEALS = Item("meals", "Tiền ăn", 600_000)
ODD = Item("odd", "Odd", 1_000_001)


@pytest.mark.parametrize(
    ("items", "adjustments", "expected_lines", "total"),
    [
        # No adjustment: the items as they are.
        ([TUITION, MEALS], [], [1_250_000, 600_000], 1_850_000),
        # 50% off tuition: 1 250 000 × 5 000 / 10 000 = 625 000.
        (
            [TUITION],
            [Adjustment("tuition", "discount", "con thương binh", percent_bps=5_000)],
            [1_250_000, -625_000],
            625_000,
        ),
        # 33.33% of 1 000 001 = 333 300.333 3 → rounds half up to 333 300.
        ([ODD], [Adjustment("odd", "discount", "r", percent_bps=3_333)], [1_000_001, -333_300], 666_701),
        # 0.05% of 1 000 001 = 500.000 5 → half up → 500.
        ([ODD], [Adjustment("odd", "discount", "r", percent_bps=5)], [1_000_001, -500], 999_501),
        # A full exemption of tuition, 200 000 off meals: 0 + 400 000.
        (
            [TUITION, MEALS],
            [
                Adjustment("tuition", "exemption", "hộ nghèo", percent_bps=10_000),
                Adjustment("meals", "discount", "hộ nghèo", amount=200_000),
            ],
            [1_250_000, -1_250_000, 600_000, -200_000],
            400_000,
        ),
        # Two discounts on one item adding up to exactly the item: allowed, total 0.
        (
            [MEALS],
            [
                Adjustment("meals", "discount", "a", amount=400_000),
                Adjustment("meals", "exemption", "b", amount=200_000),
            ],
            [600_000, -400_000, -200_000],
            0,
        ),
    ],
)
def test_lines_and_totals(items, adjustments, expected_lines, total):
    lines = invoice_lines(items, adjustments)
    assert [line.amount for line in lines] == expected_lines
    assert sum(line.amount for line in lines) == total
    assert all(line.reason for line in lines if line.kind != "item")


@pytest.mark.parametrize(
    ("items", "adjustments", "error"),
    [
        ([MEALS], [Adjustment("meals", "discount", "r", amount=600_001)], AdjustmentTooLarge),
        (
            [MEALS],
            [
                Adjustment("meals", "discount", "a", amount=400_000),
                Adjustment("meals", "discount", "b", amount=200_001),
            ],
            AdjustmentTooLarge,
        ),
        ([MEALS], [Adjustment("boarding", "discount", "r", amount=1)], ScheduleInvalid),
        ([Item("x", "Negative", -1)], [], ScheduleInvalid),
    ],
)
def test_refused_adjustments(items, adjustments, error):
    with pytest.raises(error):
        invoice_lines(items, adjustments)


SEP, JAN, MAR = date(2026, 9, 15), date(2027, 1, 15), date(2027, 3, 15)


@pytest.mark.parametrize(
    ("total", "shares", "expected"),
    [
        # Whole in one go.
        (2_250_000, [(SEP, 10_000)], [2_250_000]),
        # 60/40 of 2 250 000: 1 350 000 and the rest, 900 000.
        (2_250_000, [(SEP, 6_000), (JAN, 4_000)], [1_350_000, 900_000]),
        # Thirds of 1 000 000: 333 300 (rounded down), 333 300, and the last takes 333 400.
        (1_000_000, [(SEP, 3_333), (JAN, 3_333), (MAR, 3_334)], [333_300, 333_300, 333_400]),
        # Halves of an odd 1 250 001: 625 000, then 625 001.
        (1_250_001, [(SEP, 5_000), (JAN, 5_000)], [625_000, 625_001]),
    ],
)
def test_installments_add_up_to_the_total(total, shares, expected):
    parts = split_installments(total, [Share(d, s) for d, s in shares])
    assert [amount for _, _, amount in parts] == expected
    assert sum(expected) == total


@pytest.mark.parametrize(
    "shares",
    [
        [(SEP, 5_000)],
        [(SEP, 6_000), (JAN, 5_000)],
        [(JAN, 5_000), (SEP, 5_000)],
        [(SEP, 0), (JAN, 10_000)],
        [],
    ],
)
def test_bad_installments(shares):
    with pytest.raises(ScheduleInvalid):
        split_installments(100, [Share(d, s) for d, s in shares])


PARTS = [(1, SEP, 600_000), (2, JAN, 400_000)]


@pytest.mark.parametrize(
    ("paid", "today", "rule", "charged", "expected"),
    [
        # 250 000 paid: installment 1 owes 350 000; 2% of it is 7 000, 5 days after Sep 15 with 3 days' grace.
        (250_000, date(2026, 9, 20), LateFeeRule("percent", 200, 3), frozenset(), [(1, 7_000)]),
        # Exactly at the end of the grace (Sep 18): not yet late.
        (250_000, date(2026, 9, 18), LateFeeRule("percent", 200, 3), frozenset(), []),
        # A fixed 50 000 per overdue installment, both overdue in February.
        (0, date(2027, 2, 1), LateFeeRule("fixed", 50_000, 0), frozenset(), [(1, 50_000), (2, 50_000)]),
        # Installment 1 already charged: only 2. 700 000 paid covers 1 and 100 000 of 2;
        # 1.5% of the 300 000 left = 4 500.
        (700_000, date(2027, 2, 1), LateFeeRule("percent", 150, 0), frozenset({1}), [(2, 4_500)]),
        # Paid in full: nothing late.
        (1_000_000, date(2027, 2, 1), LateFeeRule("fixed", 50_000, 0), frozenset(), []),
        # No rule: nothing.
        (0, date(2027, 2, 1), LateFeeRule(), frozenset(), []),
        # 0.5% of 333 333 = 1 666.665 → half up 1 667.
        (266_667, date(2026, 9, 16), LateFeeRule("percent", 50, 0), frozenset(), [(1, 1_667)]),
    ],
)
def test_late_fees(paid, today, rule, charged, expected):
    assert late_fees(PARTS, paid, today, rule, charged) == expected


def test_payments_fill_installments_in_order_and_due_now():
    assert paid_per_installment([600_000, 400_000], 750_000) == [600_000, 150_000]
    assert paid_per_installment([600_000, 400_000], 0) == [0, 0]
    installments = [(SEP, 600_000), (JAN, 400_000)]
    assert due_now(installments, 250_000, date(2026, 10, 1)) == 350_000
    assert due_now(installments, 250_000, date(2026, 9, 1)) == 0
    assert due_now(installments, 250_000, date(2027, 1, 15)) == 750_000
