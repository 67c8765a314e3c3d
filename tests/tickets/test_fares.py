"""The fare engine on the sample Hanoi feed, table-driven, every expectation computed by hand.

Sample fares (docs/tickets.md): bus 09 8 000, 34 10 000, 90 12 000, 70 15 000, 107 20 000; metro 2A
min(15 000, 8 000 + 1 000 × (stations − 1)), day ticket 30 000; metro 3 min(12 000, 8 000 + 1 000 ×
(stations − 2)), day ticket 24 000; bus ↔ metro within 60 min: 3 000 off the second leg, once; students
half price on the metro; monthly bus passes 140 000 (one route) and 280 000 (all routes) for adults.
"""

from datetime import UTC, date, datetime, timedelta

import pytest

from hanoipay.localtime import HANOI
from tickets.fares import Leg, price_day
from tickets.service.days import local_time_of, month_end, service_day_of
from tickets.service.network import model_from_files, sample_feed_files

MODEL = model_from_files(sample_feed_files())
DAY = date(2026, 11, 20)


def leg(route: str, at: str, start: str | None = None, end: str | None = None, *, day: date = DAY) -> Leg:
    hours, minutes = (int(part) for part in at.split(":"))
    local = datetime(day.year, day.month, day.day, tzinfo=HANOI) + timedelta(hours=hours, minutes=minutes)
    moment = local.astimezone(UTC)
    return Leg(f"tap-{route}-{at}", route, start, moment, local_time_of(moment), "exit" if end else None, end)


CASES = [
    # (label, category, legs, passes, month caps before, amounts, total)
    ("one bus ride, route under 15 km", "adult", [leg("09", "08:00")], (), {}, [8_000], 8_000),
    (
        "each bus band",
        "adult",
        [leg(r, f"0{i + 5}:00") for i, r in enumerate(["34", "90", "70", "107"])],
        (),
        {},
        [10_000, 12_000, 15_000, 20_000],
        57_000,
    ),
    ("metro 2A, four stations", "adult", [leg("2A", "08:00", "m2a_01", "m2a_05")], (), {}, [11_000], 11_000),
    (
        "metro 2A, end to end (fare tops out)",
        "adult",
        [leg("2A", "08:00", "m2a_01", "m2a_12")],
        (),
        {},
        [15_000],
        15_000,
    ),
    (
        "metro 2A without an exit tap: the dearest fare from there (05 → 12)",
        "adult",
        [leg("2A", "08:00", "m2a_05")],
        (),
        {},
        [14_000],
        14_000,
    ),
    ("metro 3, two stations", "adult", [leg("3", "08:00", "m3_01", "m3_03")], (), {}, [8_000], 8_000),
    ("metro 3, end to end", "adult", [leg("3", "08:00", "m3_01", "m3_08")], (), {}, [12_000], 12_000),
    (
        "bus then metro within the hour: 3 000 off",
        "adult",
        [leg("09", "08:00"), leg("2A", "08:30", "m2a_01", "m2a_05")],
        (),
        {},
        [8_000, 8_000],
        16_000,
    ),
    (
        "metro then bus within the hour",
        "adult",
        [leg("3", "07:00", "m3_01", "m3_08"), leg("34", "07:45")],
        (),
        {},
        [12_000, 7_000],
        19_000,
    ),
    (
        "transfer window missed",
        "adult",
        [leg("09", "08:00"), leg("2A", "09:30", "m2a_01", "m2a_05")],
        (),
        {},
        [8_000, 11_000],
        19_000,
    ),
    (
        "one transfer discount per journey",
        "adult",
        [leg("09", "08:00"), leg("2A", "08:20", "m2a_01", "m2a_05"), leg("09", "08:50")],
        (),
        {},
        [8_000, 8_000, 8_000],
        24_000,
    ),
    (
        "bus to bus is no transfer",
        "adult",
        [leg("09", "08:00"), leg("34", "08:10")],
        (),
        {},
        [8_000, 10_000],
        18_000,
    ),
    (
        "daily cap on 2A: the day ticket's 30 000",
        "adult",
        [
            leg("2A", "07:00", "m2a_01", "m2a_12"),
            leg("2A", "12:00", "m2a_12", "m2a_01"),
            leg("2A", "18:00", "m2a_01", "m2a_12"),
        ],
        (),
        {},
        [15_000, 15_000, 0],
        30_000,
    ),
    (
        "daily cap reached part-way",
        "adult",
        [
            leg("3", "07:00", "m3_01", "m3_08"),
            leg("3", "08:00", "m3_08", "m3_01"),
            leg("3", "09:00", "m3_01", "m3_08"),
        ],
        (),
        {},
        [12_000, 12_000, 0],
        24_000,
    ),
    (
        "cap across midnight: 22:00 and 00:30 are one service day",
        "adult",
        [
            leg("2A", "22:00", "m2a_01", "m2a_12"),
            leg("2A", "23:00", "m2a_12", "m2a_01"),
            leg("2A", "24:30", "m2a_01", "m2a_12"),
        ],
        (),
        {},
        [15_000, 15_000, 0],
        30_000,
    ),
    (
        "students: half price on the metro",
        "student",
        [leg("2A", "08:00", "m2a_01", "m2a_05")],
        (),
        {},
        [5_500],
        5_500,
    ),
    ("students: full price on the bus", "student", [leg("09", "08:00")], (), {}, [8_000], 8_000),
    (
        "people aged 60 and over ride free",
        "senior",
        [leg("09", "08:00"), leg("2A", "09:00", "m2a_01", "m2a_12")],
        (),
        {},
        [0, 0],
        0,
    ),
    ("children under 6 ride free", "child", [leg("107", "08:00")], (), {}, [0], 0),
    (
        "a monthly pass for route 09 covers 09 only",
        "adult",
        [leg("09", "08:00"), leg("34", "09:00")],
        ("bus_month_09",),
        {},
        [0, 10_000],
        10_000,
    ),
    (
        "the all-routes pass covers every bus",
        "adult",
        [leg("09", "08:00"), leg("107", "09:00")],
        ("bus_month_all",),
        {},
        [0, 0],
        0,
    ),
    ("a day ticket for 2A", "adult", [leg("2A", "08:00", "m2a_01", "m2a_12")], ("m2a_day",), {}, [0], 0),
    (
        "earn the pass: 136 000 spent on 09 this month, 4 000 left",
        "adult",
        [leg("09", "08:00"), leg("09", "18:00")],
        (),
        {"bus_month_09": 136_000},
        [4_000, 0],
        4_000,
    ),
    (
        "earn the pass: students' 70 000",
        "student",
        [leg("09", "08:00")],
        (),
        {"bus_month_09": 66_000},
        [4_000],
        4_000,
    ),
    (
        "earn the all-routes pass",
        "adult",
        [leg("34", "08:00")],
        (),
        {"bus_month_all": 275_000},
        [5_000],
        5_000,
    ),
    ("a pass already earned", "adult", [leg("09", "08:00")], (), {"bus_month_09": 140_000}, [0], 0),
]


@pytest.mark.parametrize(
    ("label", "category", "legs", "passes", "before", "amounts", "total"), CASES, ids=[c[0] for c in CASES]
)
def test_fares(label, category, legs, passes, before, amounts, total):
    priced, _, _ = price_day(MODEL, category, legs, passes=frozenset(passes), month_caps=before)
    assert [p.amount for p in priced] == amounts, label
    assert sum(p.amount for p in priced) == total


def test_every_price_says_why():
    legs = [
        leg("09", "08:00"),
        leg("2A", "08:30", "m2a_01", "m2a_12"),
        leg("2A", "10:00", "m2a_12", "m2a_01"),
        leg("2A", "12:00", "m2a_01", "m2a_12"),
    ]
    priced, month, day = price_day(MODEL, "adult", legs)
    kinds = [[r["kind"] for r in p.reasons] for p in priced]
    assert kinds == [["fare"], ["fare", "transfer"], ["fare"], ["fare", "cap"]]
    assert priced[0].reasons[0]["product"] == "bus_8000"
    assert priced[1].reasons[1] == {
        "kind": "transfer",
        "from": "bus",
        "product": "transfer_3000",
        "saved": 3_000,
    }
    assert priced[3].reasons[1] == {"kind": "cap", "product": "m2a_day", "period": "day", "saved": 12_000}
    assert day == {"m2a_day": 30_000}
    assert month == {"bus_month_09": 8_000, "bus_month_all": 8_000}
    student = price_day(MODEL, "student", [leg("2A", "08:00", "m2a_01", "m2a_05")])[0][0]
    assert student.reasons[1] == {"kind": "concession", "category": "student", "full_amount": 11_000}


def test_month_caps_carry_from_day_to_day():
    spent: dict[str, int] = {}
    paid = []
    for day in range(1, 21):
        priced, spent, _ = price_day(
            MODEL, "adult", [leg("09", "08:00", day=date(2026, 11, day))], month_caps=spent
        )
        paid.append(priced[0].amount)
    assert paid[:17] == [8_000] * 17
    assert paid[17:] == [4_000, 0, 0]
    assert sum(paid) == 140_000


@pytest.mark.parametrize(
    ("local", "day"),
    [
        ("2026-11-20 03:59", date(2026, 11, 19)),
        ("2026-11-20 04:00", date(2026, 11, 20)),
        ("2026-11-20 23:59", date(2026, 11, 20)),
        ("2026-11-21 00:30", date(2026, 11, 20)),
        ("2026-12-01 00:30", date(2026, 11, 30)),  # month end: still November's service day
        ("2027-01-01 02:00", date(2026, 12, 31)),
        ("2026-03-01 01:00", date(2026, 2, 28)),
    ],
)
def test_service_days_run_from_four_in_the_morning_in_hanoi(local, day):
    moment = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=HANOI)
    assert service_day_of(moment) == day
    assert service_day_of(moment.astimezone(UTC)) == day


def test_month_end():
    assert month_end(date(2026, 2, 3)) == date(2026, 2, 28)
    assert month_end(date(2028, 2, 3)) == date(2028, 2, 29)
    assert month_end(date(2026, 12, 31)) == date(2026, 12, 31)
