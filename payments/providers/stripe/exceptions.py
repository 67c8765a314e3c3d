"""Refusals of card payments through Stripe."""

from hanoipay.errors import HanoiPayError, InvalidRequest
from payments.exceptions import PaymentFailed


class ProviderNotConfigured(InvalidRequest):
    code = "provider_not_configured"
    title = "Payment provider not configured"


class CardDeclined(PaymentFailed):
    code = "card_declined"
    title = "Card declined"
    error_type = "card_error"


class InvalidPaymentMethod(InvalidRequest):
    code = "invalid_payment_method"


class ProviderUnavailable(HanoiPayError):
    status = 502
    code = "provider_unavailable"
    title = "Payment provider unavailable"
