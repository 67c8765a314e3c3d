"""Money is an integer count of the currency's minor unit; fees are basis points with one rounding rule."""

from typing import Annotated

from pydantic import Field, StrictInt

# ISO 4217 currencies the platform settles in, with their minor-unit exponent. VND has no minor unit.
CURRENCIES: dict[str, int] = {"VND": 0, "USD": 2}
MAX_AMOUNT = 10**12

Amount = Annotated[
    StrictInt, Field(gt=0, le=MAX_AMOUNT, description="Minor units; VND has none: 8000 = 8 000 ₫")
]


def fee_for(amount: int, fee_bps: int) -> int:
    """The platform fee on `amount`: amount × bps / 10 000, rounded half up to a whole minor unit."""
    return (amount * fee_bps + 5_000) // 10_000


def prorated(total: int, part: int, whole: int) -> int:
    """`total × part / whole` rounded down; the running sum of prorated parts reaches `total` exactly."""
    return total * part // whole
