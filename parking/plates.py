"""Vietnamese licence plates, normalized to one spelling so a look-up finds the session however typed.

A plate is a two-digit province code (11–99), a series of one or two letters, or a letter and a digit
(motorbikes), then four or five digits: `30A-123.45`, `29B1-123.45`, `30LD-012.34`, `29A-1234`. Case,
spaces and dashes do not matter on input (`30a 123.45`, `29-B1 123.45`); the last group after a space or
dash is the number. Typed with no separator at all, a plate is read with the shortest series that leaves
four or five digits, five preferred (`30A12345` is `30A-123.45`, not the old motorbike plate `30A1-2345`).
The normalized form puts a dash after the series and, for five digits, a dot before the last two.
"""

import re

from parking.exceptions import InvalidPlate

_COMPACT = re.compile(r"^(?P<province>[1-9]\d)(?P<series>[A-Z][A-Z0-9]??)(?P<number>\d{4,5})$")
_HEAD = re.compile(r"^(?P<province>[1-9]\d)(?P<series>[A-Z][A-Z0-9]?)$")
_NUMBER = re.compile(r"^(?:\d{4}|\d{5}|\d{3}\.\d{2})$")
_SEPARATORS = re.compile(r"[\s\-]+")
_NORMALIZED = re.compile(r"(?:1[1-9]|[2-9]\d)[A-Z][A-Z0-9]?-(?:\d{4}|\d{3}\.\d{2})")  # province 11-99
MAX_INPUT = 20


def _parts(raw: str) -> tuple[str, str, str] | None:
    tokens = [t for t in _SEPARATORS.split(raw.strip().upper()) if t]
    if not tokens:
        return None
    if len(tokens) == 1:
        compact = _COMPACT.match(tokens[0].replace(".", "")) if tokens[0].count(".") <= 1 else None
        return (compact["province"], compact["series"], compact["number"]) if compact else None
    head, number = _HEAD.match("".join(tokens[:-1])), tokens[-1]
    if head is None or not _NUMBER.match(number):
        return None
    return head["province"], head["series"], number.replace(".", "")


def normalize_plate(raw: str) -> str:
    """The plate in its normalized spelling, or InvalidPlate saying what a plate looks like."""
    if _NORMALIZED.fullmatch(raw):
        return raw  # already in its normalized spelling, as an app sends a plate it was given back
    parts = _parts(raw) if len(raw) <= MAX_INPUT else None
    if parts is None or int(parts[0]) < 11:
        raise InvalidPlate(
            f"{raw[:MAX_INPUT]!r} is not a Vietnamese plate; "
            "write it like 30A-123.45, 29B1-123.45 or 30LD-012.34."
        )
    province, series, number = parts
    if len(number) == 5:
        number = f"{number[:3]}.{number[3:]}"
    return f"{province}{series}-{number}"
