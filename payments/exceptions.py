"""Refusals of the payment core, each with an HTTP status and a stable code."""

from typing import ClassVar

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


class PaymentFailed(HanoiPayError):
    """The payer's payment did not go through: a declined card, too little in the wallet.

    Unlike a bad request, this is news about the intent: it is recorded on the intent as its
    `last_payment_error`, as Stripe does, and the intent waits for another payment method.
    """

    status = 402
    code = "payment_failed"
    title = "Payment failed"
    error_type: ClassVar[str] = "payment_error"

    def payment_error(self) -> dict[str, str | None]:
        """The error as the intent's `last_payment_error` shows it."""
        decline_code = self.extra.get("decline_code")
        return {
            "type": self.error_type,
            "code": self.code,
            "decline_code": str(decline_code) if decline_code else None,
            "message": self.detail,
        }


class InsufficientFunds(PaymentFailed):
    code = "insufficient_funds"
    title = "Insufficient funds"
    error_type = "wallet_error"


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


class UnknownCollectionAccount(InvalidRequest):
    """A bank says money arrived in an account the platform does not collect on: never applied."""

    code = "unknown_collection_account"
    title = "Not a collection account of the platform"
