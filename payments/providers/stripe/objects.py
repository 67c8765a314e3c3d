"""Stripe's objects as this platform reads them: typed, so a missing or wrong field is refused, not a 500."""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from hanoipay.validation import describe, unstorable_paths
from payments.providers.base import Outcome


class StripeObjectMalformed(ValueError):
    """A Stripe object (an API answer or a webhook's) lacks a field we read, or holds the wrong type."""


class _StripeModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if isinstance(data, dict) and (unstorable := list(unstorable_paths(data))):
            raise ValueError(describe(unstorable))
        return data


class StripePaymentError(_StripeModel):
    """Stripe's `last_payment_error`."""

    type: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=64)
    decline_code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=1000)


class StripePaymentIntent(_StripeModel):
    """The fields of a Stripe PaymentIntent this platform reads."""

    id: str = Field(min_length=1, max_length=255)
    status: str = Field(min_length=1, max_length=64)
    amount_received: StrictInt | None = Field(default=None, ge=0)
    amount_capturable: StrictInt | None = Field(default=None, ge=0)
    next_action: dict[str, Any] | None = None
    last_payment_error: StripePaymentError | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amounts_of_the_status(self) -> "StripePaymentIntent":
        if self.status == "succeeded" and self.amount_received is None:
            raise ValueError("a succeeded PaymentIntent must carry amount_received")
        if self.status == "requires_capture" and self.amount_capturable is None:
            raise ValueError("a PaymentIntent that requires capture must carry amount_capturable")
        return self


class StripeRefund(_StripeModel):
    """The fields of a Stripe Refund this platform reads."""

    id: str = Field(min_length=1, max_length=255)
    amount: StrictInt = Field(gt=0)
    status: str | None = Field(default=None, max_length=64)
    payment_intent: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)


class _StripeRefundList(_StripeModel):
    data: list[StripeRefund] = Field(default_factory=list)


class StripeCharge(_StripeModel):
    """The fields of a Stripe Charge (`charge.refunded`) this platform reads."""

    payment_intent: str | None = Field(default=None, max_length=255)
    refunds: _StripeRefundList = Field(default_factory=_StripeRefundList)


StripeObject = TypeVar("StripeObject", bound=_StripeModel)


def parse_stripe_object(model: type[StripeObject], data: Any) -> StripeObject:
    """`data` as the typed Stripe object, or StripeObjectMalformed naming what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise StripeObjectMalformed(
            f"not a Stripe {model.__name__.removeprefix('Stripe')}: {error}"
        ) from None


def outcome_of(payment_intent: StripePaymentIntent) -> Outcome:
    """What a Stripe PaymentIntent (an API answer or a webhook's object) says about our intent."""
    status = payment_intent.status
    if status == "succeeded":
        return Outcome("succeeded", amount=payment_intent.amount_received)
    if status == "requires_capture":
        return Outcome("requires_capture", amount=payment_intent.amount_capturable)
    if status == "requires_action":
        return Outcome("requires_action", next_action=payment_intent.next_action)
    if status == "processing":
        return Outcome("processing")
    if status == "canceled":
        return Outcome("canceled")
    error = payment_intent.last_payment_error or StripePaymentError()
    return Outcome("failed", error=card_error(error.message, error.code, error.decline_code))


def card_error(
    message: str | None, code: str | None = None, decline_code: str | None = None
) -> dict[str, str | None]:
    """A card's failure as the intent's `last_payment_error`."""
    return {
        "type": "card_error",
        "code": code or "card_declined",
        "decline_code": decline_code,
        "message": message or "The card payment did not go through.",
    }
