"""What providers say happened, read from their API or from files, as `ParsedLine`s ready to store.

Every parser refuses a file whole: it collects each bad line with its number, and raises one
`MalformedStatement` listing them (the first 50), so nothing of a bad file is ever stored.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from hanoipay.localtime import HANOI
from payments.money import CURRENCIES
from payments.providers.vietqr.webhook import references_in
from reconciliation.exceptions import MalformedStatement, UnsupportedStatementCurrency

MAX_ERRORS = 50
_PAYOUT_ID = re.compile(r"PO([0-9A-HJKMNP-TV-Z]{26})")


@dataclass
class ParsedLine:
    """One provider line as a parser read it (see `models.ProviderLine` for the fields' meaning)."""

    external_id: str
    kind: str
    amount: int
    currency: str
    occurred_at: datetime
    fee: int = 0
    ref: str | None = None
    hint: str | None = None
    group_ref: str | None = None
    members: list[str] | None = None
    description: str = ""

    @property
    def business_day(self) -> date:
        """The line's business day in Hanoi."""
        return self.occurred_at.astimezone(HANOI).date()


@dataclass
class Problems:
    """Bad lines of a file, by line number; raise them all at once at the end."""

    errors: list[dict[str, object]] = field(default_factory=list)
    currencies: list[dict[str, object]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        """Note a problem on a line."""
        self.errors.append({"line": line, "error": message})

    def wrong_currency(self, line: int, currency: str) -> None:
        """Note a currency the platform does not settle in."""
        self.currencies.append({"line": line, "error": f"currency {currency!r} is not settled here"})

    def raise_any(self, what: str) -> None:
        """Refuse the whole file if any line was bad."""
        if self.errors:
            shown = self.errors[:MAX_ERRORS]
            lines = ", ".join(str(e["line"]) for e in shown)
            raise MalformedStatement(
                f"The {what} has {len(self.errors)} malformed line(s) (lines {lines}); nothing was loaded.",
                errors=shown,
            )
        if self.currencies:
            shown = self.currencies[:MAX_ERRORS]
            raise UnsupportedStatementCurrency(
                f"The {what} has lines in a currency the platform does not settle in "
                f"({', '.join(sorted(CURRENCIES))}); nothing was loaded.",
                errors=shown,
            )


def parse_amount(text: str, currency: str) -> int:
    """A decimal amount in major units ("50000", "12.34") as an integer of minor units; ValueError if not."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    minor = value.scaleb(CURRENCIES.get(currency, 0))
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {currency} allows")
    if abs(minor) > 10**12:
        raise ValueError(f"{text!r} is out of range")
    return int(minor)


def intent_reference(description: str) -> str | None:
    """The VietQR reference (HP…) a transfer description names, if any."""
    found = references_in(description)
    return found[0] if found else None


def payout_reference(description: str) -> str | None:
    """The payout id (po_…) a bank line's description names, however the bank mangled it."""
    match = _PAYOUT_ID.search(re.sub(r"[^0-9A-Z]", "", description.upper()))
    return f"po_{match.group(1)}" if match else None


def clean_text(value: str, limit: int) -> str:
    """Text safe to store: no NUL or other control characters but tab, cut to `limit` characters."""
    kept = (ch for ch in value if ch == "\t" or (ch >= " " and not 0xD800 <= ord(ch) <= 0xDFFF))
    return "".join(kept)[:limit]
