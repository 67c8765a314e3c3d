"""Tariff computation on the sample Hanoi tariffs, with amounts computed by hand; plates; band checks."""

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hanoipay.localtime import HANOI
from parking import loader
from parking.exceptions import InvalidPlate, InvalidTariffFile
from parking.plates import normalize_plate
from parking.tariffs import TariffRules, price_stay

SAMPLE = Path("parking/data/hanoi.yaml").read_text(encoding="utf-8")
DATA = loader.check(SAMPLE)
TARIFFS = {t.code: t for t in DATA.tariffs}


def rules(code: str, version: int = 0) -> TariffRules:
    return TariffRules.model_validate(TARIFFS[code].versions[version].rules())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HANOI)


# HN-CAR-CORE (version of 44/2017): day 06–18 first 2 h 25 000 then 30 000 per started hour; night 18–06 one
# turn of 50 000; 300 000 a day at most; holidays (2026-09-02 is one) × 1.5. 2026-11-25 is a Wednesday.
CAR = [
    ("first minute buys the first block", "2026-11-25 09:00", 1, 25_000),
    ("up to two hours is one turn", "2026-11-25 09:00", 120, 25_000),
    ("the third hour is dearer", "2026-11-25 09:00", 121, 25_000 + 30_000),
    ("progressive blocks repeat", "2026-11-25 09:00", 240, 25_000 + 2 * 30_000),
    ("crossing 18:00: a day piece and a night turn", "2026-11-25 17:00", 120, 25_000 + 50_000),
    ("one minute each side of 18:00", "2026-11-25 17:59", 2, 25_000 + 50_000),
    ("across midnight the night is one turn", "2026-11-25 23:00", 120, 50_000),
    ("night into morning: the day starts its blocks afresh", "2026-11-26 05:00", 120, 50_000 + 25_000),
    ("a full day capped at 300 000", "2026-11-25 06:00", 720, 300_000),
    ("24 hours: day, night (same day), next morning", "2026-11-25 09:00", 24 * 60, 235_000 + 50_000 + 55_000),
    ("holiday × 1.5", "2026-09-02 09:00", 180, 82_500),
    ("a night that began the day before a holiday", "2026-09-01 20:00", 60, 50_000),
    ("a night that began on the holiday", "2026-09-02 20:00", 60, 75_000),
    ("the cap holds on a holiday too", "2026-09-02 06:00", 720, 300_000),
]


@pytest.mark.parametrize(("case", "start", "minutes", "expected"), CAR, ids=[c[0] for c in CAR])
def test_car_core_tariff(case, start, minutes, expected):
    assert price_stay(rules("HN-CAR-CORE"), at(start), minutes).amount == expected


@pytest.mark.parametrize(
    ("code", "start", "minutes", "expected"),
    [
        ("HN-MOTO", "2026-11-25 09:00", 300, 5_000),  # one day turn
        ("HN-MOTO", "2026-11-25 17:00", 120, 5_000 + 8_000),  # a day turn and a night turn
        ("HN-CAR-LOT", "2026-11-25 08:00", 600, 150_000),  # 10 hours × 15 000, exactly the cap
        ("HN-CAR-LOT", "2026-11-25 08:00", 660, 150_000),  # 165 000 capped
        ("HN-CAR-LOT", "2026-11-25 21:30", 60, 15_000 + 40_000),  # 30 min of day, then the night turn
        ("HN-CAR-CORE", "2027-01-04 10:00", 180, 65_000),  # the made-up 2027 version's prices, if used
    ],
)
def test_other_tariffs(code, start, minutes, expected):
    version = 1 if start.startswith("2027") else 0
    assert price_stay(rules(code, version), at(start), minutes).amount == expected


def test_pieces_say_where_the_price_came_from():
    priced = price_stay(rules("HN-CAR-CORE"), at("2026-11-25 17:00"), 120)
    assert [(p.band, p.minutes, p.amount) for p in priced.pieces] == [
        ("day", 60, 25_000),
        ("night", 60, 50_000),
    ]
    capped = price_stay(rules("HN-CAR-CORE"), at("2026-11-25 06:00"), 720)
    assert [str(d) for d in capped.capped_days] == ["2026-11-25"]


def test_zero_minutes_cost_nothing():
    assert price_stay(rules("HN-CAR-CORE"), at("2026-11-25 09:00"), 0).amount == 0


def test_the_sample_data_set_is_valid_and_marks_its_samples():
    assert {z.code for z in DATA.zones} >= {"HK-LTK-01", "HK-THD-01"}
    assert all(z.sample for z in DATA.zones)
    assert all(v.sample for t in DATA.tariffs for v in t.versions)
    assert all(len(z.geometry.coordinates) >= 2 for z in DATA.zones)


def _refusal(text: str) -> list[dict[str, object]]:
    with pytest.raises(InvalidTariffFile) as refused:
        loader.check(text)
    return list(refused.value.extra["problems"])


def test_overlapping_bands_are_refused_naming_the_line():
    broken = SAMPLE.replace(
        '{name: night, start: "18:00", end: "06:00", turn: 50000}',
        '{name: night, start: "17:00", end: "06:00", turn: 50000}',
        1,
    )
    (problem,) = _refusal(broken)
    line = SAMPLE.splitlines().index(next(text for text in SAMPLE.splitlines() if "turn: 50000}" in text)) + 1
    assert problem == {
        "path": "tariffs[0].versions[0].bands[1]",
        "line": line,
        "message": "band 'night' overlaps band 'day' (ends 18:00)",
    }


def test_a_gap_between_bands_is_refused_naming_the_line():
    broken = SAMPLE.replace('end: "06:00", turn: 8000', 'end: "05:00", turn: 8000')
    (problem,) = _refusal(broken)
    assert problem["path"] == "tariffs[3].versions[0].bands[0]"
    assert problem["message"] == "gap from 05:00 to 06:00 before band 'day'"
    assert SAMPLE.splitlines()[int(problem["line"]) - 1].strip().startswith('- {name: day, start: "06:00"')


def line_of(text: str) -> int:
    return SAMPLE.splitlines().index(text) + 1


def test_every_fault_is_listed_with_its_line():
    broken = SAMPLE.replace("fee_bps: 150", "fee_bps: lots").replace("spots: {car: 20}", "spots: {car: -1}")
    problems = _refusal(broken)
    assert [(p["path"], p["line"]) for p in problems][:2] == [
        ("operator.fee_bps", line_of("  fee_bps: 150")),
        ("zones[8].spots.car", line_of("    spots: {car: 20}")),
    ]
    unknown = SAMPLE.replace("tariffs: {car: HN-CAR-OUTER}", "tariffs: {car: NOPE}")
    assert _refusal(unknown) == [
        {
            "path": "zones[8].tariffs.car",
            "line": line_of("    tariffs: {car: HN-CAR-OUTER}"),
            "message": "no tariff NOPE in this file",
        }
    ]


def test_overlapping_versions_and_unknown_keys_are_refused():
    overlapping = SAMPLE.replace("effective_to: 2026-12-31", "effective_to: 2027-01-01")
    assert _refusal(overlapping)[0]["path"] == "tariffs[0].versions[1].effective_from"
    typo = SAMPLE.replace("daily_cap: 300000", "daily_kap: 300000")
    assert _refusal(typo)[0]["message"] == "Extra inputs are not permitted"
    assert _refusal("zones: [1, 2")[0]["line"] == 1
    assert _refusal("format: 1\nformat: 1\n")[0]["message"] == "'format' appears twice"


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("30A-123.45", "30A-123.45"),
        ("30a 12345", "30A-123.45"),
        ("29B1-123.45", "29B1-123.45"),
        ("29-B1 123.45", "29B1-123.45"),
        ("30LD-012.34", "30LD-012.34"),
        ("30LD01234", "30LD-012.34"),
        ("29A-1234", "29A-1234"),
    ],
)
def test_plates_are_normalized(typed, normalized):
    assert normalize_plate(typed) == normalized


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[1-9][0-9][A-Za-z][A-Za-z0-9]?[ -]?([0-9]{4}|[0-9]{3}[.]?[0-9]{2})", fullmatch=True))
def test_a_plate_already_normalized_is_taken_as_it_is_and_spelled_as_any_other_way_of_typing_it(typed):
    try:
        normalized = normalize_plate(typed)
    except InvalidPlate:
        assume(False)  # a province code under 11
    assert normalize_plate(normalized) == normalized
    assert normalize_plate(normalized.lower().replace("-", " ")) == normalized


@pytest.mark.parametrize(
    "typed", ["", "ABC", "3A-123.45", "10A-123.45", "30A-123.456", "30-123.45", "30A-12\x00"]
)
def test_wrong_plates_are_refused(typed):
    with pytest.raises(InvalidPlate):
        normalize_plate(typed)
