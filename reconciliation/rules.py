"""Matching rules and their tolerances, per provider; a run keeps the rules it used so a re-run agrees.

Each rule has its own tolerance: an amount difference is accepted when it is within `amount_abs` minor
units or `amount_bps` basis points of the ledger amount (whichever is larger), and a time difference when
it is within `seconds`. An accepted difference of either sign is kept as `drift` and flagged in the
summary; a larger one is a break.
"""

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciliation.models import Provider

MAX_AMOUNT = 10**12


@dataclass(frozen=True)
class Tolerance:
    """How far apart two amounts (and two times) may be and still match under one rule."""

    amount_abs: int = 0
    amount_bps: int = 0
    seconds: int = 0

    def allows(self, difference: int, base: int) -> bool:
        """True when `difference` is within the tolerance of an amount of `base`."""
        return abs(difference) <= max(self.amount_abs, abs(base) * self.amount_bps // 10_000)


@dataclass(frozen=True)
class FeeSchedule:
    """What a provider should charge for a payment: `bps` of it, rounded half up, plus `fixed`."""

    bps: int = 0
    fixed: int = 0

    def expected(self, amount: int) -> int:
        """The fee the schedule expects on a payment of `amount` (none on refunds and payouts)."""
        return (abs(amount) * self.bps + 5_000) // 10_000 + self.fixed


@dataclass(frozen=True)
class Rules:
    """The rules of one run: exact reference, amount + time + reference in the description, fee, days."""

    exact: Tolerance = field(default_factory=Tolerance)
    fuzzy: Tolerance = field(default_factory=lambda: Tolerance(seconds=3 * 3600))
    fee: Tolerance = field(default_factory=Tolerance)
    fee_schedule: FeeSchedule | None = None
    group: Tolerance = field(default_factory=Tolerance)
    # How many days either side a line may have settled on and still be found (settled_other_day).
    settle_days: int = 3

    def to_json(self) -> dict[str, Any]:
        """The rules as the run stores them."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Rules":
        """Rules stored with a run."""
        schedule = data.get("fee_schedule")
        return cls(
            exact=Tolerance(**data["exact"]),
            fuzzy=Tolerance(**data["fuzzy"]),
            fee=Tolerance(**data["fee"]),
            fee_schedule=FeeSchedule(**schedule) if schedule else None,
            group=Tolerance(**data["group"]),
            settle_days=int(data["settle_days"]),
        )


DEFAULT_RULES: dict[str, Rules] = {
    # Stripe's published card price, as a basis-point rate and a fixed part per payment, in VND.
    Provider.STRIPE: Rules(fee_schedule=FeeSchedule(bps=340, fixed=2_000), fee=Tolerance(amount_abs=1)),
    # The collection bank charges a fixed fee per incoming transfer, shown on the statement line.
    Provider.VIETQR: Rules(fee_schedule=FeeSchedule(bps=0, fixed=1_100)),
}


class ToleranceIn(BaseModel):
    """A tolerance sent by finance with a run."""

    model_config = ConfigDict(extra="forbid")

    amount_abs: int = Field(default=0, ge=0, le=MAX_AMOUNT)
    amount_bps: int = Field(default=0, ge=0, le=10_000)
    seconds: int = Field(default=0, ge=0, le=7 * 86_400)


class FeeScheduleIn(BaseModel):
    """A fee schedule sent by finance with a run."""

    model_config = ConfigDict(extra="forbid")

    bps: int = Field(ge=0, le=10_000)
    fixed: int = Field(ge=0, le=MAX_AMOUNT)


class RulesIn(BaseModel):
    """Rules to use instead of the provider's defaults for one run; unset parts keep the defaults."""

    model_config = ConfigDict(extra="forbid")

    exact: ToleranceIn | None = None
    fuzzy: ToleranceIn | None = None
    fee: ToleranceIn | None = None
    fee_schedule: FeeScheduleIn | None = None
    group: ToleranceIn | None = None
    settle_days: int | None = Field(default=None, ge=0, le=7)


def rules_for(provider: str, overrides: RulesIn | None = None) -> Rules:
    """The provider's default rules with finance's overrides applied."""
    rules = DEFAULT_RULES[provider]
    if overrides is None:
        return rules
    changes: dict[str, Any] = {}
    for name in ("exact", "fuzzy", "fee", "group"):
        value = getattr(overrides, name)
        if value is not None:
            changes[name] = Tolerance(**value.model_dump())
    if overrides.fee_schedule is not None:
        changes["fee_schedule"] = FeeSchedule(**overrides.fee_schedule.model_dump())
    if overrides.settle_days is not None:
        changes["settle_days"] = overrides.settle_days
    return replace(rules, **changes)
