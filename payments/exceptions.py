"""Refusals of the payment core, each with an HTTP status and a stable code."""

from hanoipay.errors import Conflict, HanoiPayError, InvalidRequest, NotFound


class MerchantNotFound(NotFound):
    code = "merchant_not_found"


class IntentNotFound(NotFound):
    code = "payment_intent_not_found"


class RefundNotFound(NotFound):
    code = "refund_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class UnknownBank(InvalidRequest):
    code = "unknown_bank"


class WalletNotFound(NotFound):
    code = "wallet_not_found"


class AccountNotFound(NotFound):
    code = "account_not_found"


class WalletExists(Conflict):
    code = "wallet_exists"
    title = "Wallet already exists"


class InsufficientFunds(HanoiPayError):
    status = 402
    code = "insufficient_funds"
    title = "Insufficient funds"


class UnsupportedCurrency(InvalidRequest):
    code = "unsupported_currency"


class CurrencyMismatch(InvalidRequest):
    code = "currency_mismatch"


class UnknownPurpose(InvalidRequest):
    code = "unknown_purpose"


class UnknownProvider(InvalidRequest):
    code = "unknown_provider"


class PaymentMethodRequired(InvalidRequest):
    code = "payment_method_required"


class IntentNotConfirmable(Conflict):
    code = "intent_not_confirmable"
    title = "Payment intent cannot be confirmed"


class IntentNotCapturable(Conflict):
    code = "intent_not_capturable"
    title = "Payment intent cannot be captured"


class IntentNotCancelable(Conflict):
    code = "intent_not_cancelable"
    title = "Payment intent cannot be canceled"


class IntentNotRefundable(Conflict):
    code = "intent_not_refundable"
    title = "Payment intent cannot be refunded"


class AmountExceedsCapturable(InvalidRequest):
    code = "amount_exceeds_capturable"


class AmountExceedsRefundable(InvalidRequest):
    code = "amount_exceeds_refundable"


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class InvalidIdempotencyKey(HanoiPayError):
    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key header"


class UnbalancedEntry(HanoiPayError):
    """A posting whose lines do not sum to zero per currency: a bug in the caller, never user input."""

    status = 500
    code = "unbalanced_entry"


class InvalidSignature(HanoiPayError):
    code = "invalid_signature"
    title = "Invalid webhook signature"


class MalformedWebhook(HanoiPayError):
    code = "malformed_webhook"
    title = "Malformed webhook"
