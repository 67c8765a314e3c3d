"""Tariff rules and the price of a stay, in whole VND, by the clock of Asia/Ho_Chi_Minh.

A tariff version's rules split the day into bands that tile the 24 hours (no overlap, no gap), each
priced either as a fixed **turn** (one price for any stay inside one occurrence of the band, like the
night turn 18:00–06:00) or as **blocks** (a first block, then further blocks, the last one repeating:
"up to 2 hours 25 000 ₫, then 30 000 ₫ per hour"). A stay is cut where it crosses a band boundary, and
each piece is priced by its band as if the stay had entered the band there: blocks count from that
point, every started block is charged whole. A piece in a band occurrence that began on a listed
holiday is multiplied by `multiplier_bps` (rounded half up). The pieces are then added per local day
(the day their band occurrence began) and each day is capped at `daily_cap`.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from hanoipay.localtime import HANOI

DAY_MINUTES = 24 * 60
MAX_PRICE = 100_000_000

Price = Annotated[StrictInt, Field(ge=0, le=MAX_PRICE)]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local time")]


class Rules(BaseModel):
    """Forbid unknown keys everywhere in a tariff, so a typo is refused instead of ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Block(Rules):
    minutes: StrictInt = Field(ge=1, le=DAY_MINUTES)
    price: Price


class Band(Rules):
    name: str = Field(min_length=1, max_length=40)
    start: ClockTime
    end: ClockTime
    turn: Price | None = None
    blocks: list[Block] | None = Field(default=None, min_length=1, max_length=12)

    @model_validator(mode="after")
    def _one_way_of_pricing(self) -> Self:
        if (self.turn is None) == (self.blocks is None):
            raise ValueError("a band is priced either by `turn` or by `blocks`, exactly one of them")
        return self

    @property
    def start_minute(self) -> int:
        """Minutes after local midnight at which the band begins."""
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)

    @property
    def length(self) -> int:
        """How many minutes the band lasts (a band from 00:00 to 00:00 lasts the whole day)."""
        hours, minutes = self.end.split(":")
        return (int(hours) * 60 + int(minutes) - self.start_minute) % DAY_MINUTES or DAY_MINUTES


class Holidays(Rules):
    dates: list[date] = Field(default_factory=list, max_length=366)
    multiplier_bps: StrictInt = Field(ge=0, le=100_000, description="10000 = same price, 15000 = ×1.5")


class TariffRules(Rules):
    """What a tariff version charges: its bands, daily cap, holiday rule and monthly pass price."""

    bands: list[Band] = Field(min_length=1, max_length=8)
    daily_cap: Price | None = None
    holidays: Holidays | None = None
    monthly_pass: Price | None = None


def band_problems(bands: list[Band]) -> list[tuple[int, str]]:
    """(index of the band at fault, what is wrong) for every overlap or gap; empty when they tile a day."""
    order = sorted(range(len(bands)), key=lambda i: bands[i].start_minute)
    problems: list[tuple[int, str]] = []
    for position, index in enumerate(order):
        band = bands[index]
        following = order[(position + 1) % len(order)]
        next_start = bands[following].start_minute + (DAY_MINUTES if position + 1 == len(order) else 0)
        end = band.start_minute + band.length
        if len(order) == 1:
            if band.length != DAY_MINUTES:
                problems.append((index, f"band {band.name!r} alone must cover the whole day, 00:00 to 00:00"))
        elif end > next_start:
            problems.append(
                (following, f"band {bands[following].name!r} overlaps band {band.name!r} (ends {band.end})")
            )
        elif end < next_start:
            problems.append(
                (
                    following,
                    f"gap from {band.end} to {bands[following].start} before band {bands[following].name!r}",
                )
            )
    return problems


@dataclass(frozen=True)
class Piece:
    """The part of a stay inside one occurrence of a band, and what it costs."""

    band: str
    starts_at: datetime
    ends_at: datetime
    minutes: int
    amount: int
    day: date
    holiday: bool


@dataclass(frozen=True)
class Priced:
    """The price of a stay, with the pieces it was made of and the days the cap cut."""

    amount: int
    pieces: list[Piece] = field(default_factory=list)
    capped_days: list[date] = field(default_factory=list)


def _occurrence(rules: TariffRules, at: datetime) -> tuple[Band, datetime]:
    """The band in force at `at` (local), and the moment that occurrence of it began."""
    midnight = datetime.combine(at.date(), time(), tzinfo=HANOI)
    for band in rules.bands:
        for days_back in (0, 1):
            begins = midnight + timedelta(days=-days_back, minutes=band.start_minute)
            if begins <= at < begins + timedelta(minutes=band.length):
                return band, begins
    raise ValueError("the tariff's bands do not cover the day")  # refused when loading


def _block_price(blocks: list[Block], minutes: int) -> int:
    total = 0
    for block in blocks[:-1]:
        if minutes <= 0:
            return total
        total += block.price
        minutes -= block.minutes
    if minutes > 0:
        total += math.ceil(minutes / blocks[-1].minutes) * blocks[-1].price
    return total


def price_stay(rules: TariffRules, starts_at: datetime, minutes: int) -> Priced:
    """What a stay of `minutes` from `starts_at` costs under the rules."""
    if minutes <= 0:
        return Priced(0)
    at = starts_at.astimezone(HANOI)
    ends = at + timedelta(minutes=minutes)
    pieces: list[Piece] = []
    while at < ends:
        band, began = _occurrence(rules, at)
        piece_end = min(ends, began + timedelta(minutes=band.length))
        used = math.ceil((piece_end - at).total_seconds() / 60)
        amount = band.turn if band.turn is not None else _block_price(band.blocks or [], used)
        holiday = rules.holidays is not None and began.date() in rules.holidays.dates
        if holiday and rules.holidays is not None:
            amount = (amount * rules.holidays.multiplier_bps + 5_000) // 10_000
        pieces.append(Piece(band.name, at, piece_end, used, amount, began.date(), holiday))
        at = piece_end
    per_day: dict[date, int] = {}
    for piece in pieces:
        per_day[piece.day] = per_day.get(piece.day, 0) + piece.amount
    capped = [
        day for day, total in per_day.items() if rules.daily_cap is not None and total > rules.daily_cap
    ]
    cap = rules.daily_cap
    total = sum(min(day_total, cap) if cap is not None else day_total for day_total in per_day.values())
    return Priced(total, pieces, capped)
