"""The merchants domain's refusals, each with a stable code."""

from typing import Any

from hanoipay.errors import Conflict, Forbidden, HanoiPayError, InvalidRequest, NotFound
from payments.exceptions import MerchantNotFound

__all__ = ["MerchantNotFound"]


class MerchantNotVerified(Conflict):
    code = "merchant_not_verified"
    title = "Merchant not verified"


class StaffRoleRequired(Forbidden):
    code = "staff_role_required"
    title = "Not allowed for your role at this merchant"


class InvalidPayoutAccount(InvalidRequest):
    code = "invalid_payout_account"


class UnknownBank(InvalidRequest):
    code = "unknown_bank"


class UnknownFeePlan(InvalidRequest):
    code = "unknown_fee_plan"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class InvitationNotForYou(Forbidden):
    code = "invitation_not_for_you"


class AlreadyStaff(Conflict):
    code = "already_staff"
    title = "Already on a merchant's staff"


class MemberNotFound(NotFound):
    code = "member_not_found"


class LastOwner(Conflict):
    code = "last_owner"
    title = "A merchant keeps at least one owner"


class MarketNotFound(NotFound):
    code = "market_not_found"


class StallNotFound(NotFound):
    code = "stall_not_found"


class StallCodeTaken(Conflict):
    code = "stall_code_taken"


class WrongMerchantKind(InvalidRequest):
    code = "wrong_merchant_kind"


class StallTransferNotFound(NotFound):
    code = "stall_transfer_not_found"


class StallTransferDecided(Conflict):
    code = "stall_transfer_decided"
    title = "Transfer already confirmed or returned"


class StatementPeriodInvalid(InvalidRequest):
    code = "statement_period_invalid"


class SchoolClassNotFound(NotFound):
    code = "class_not_found"


class StudentNotFound(NotFound):
    code = "student_not_found"


class StudentCodeTaken(Conflict):
    code = "student_code_taken"


class ScheduleNotFound(NotFound):
    code = "fee_schedule_not_found"


class ScheduleInvalid(InvalidRequest):
    code = "fee_schedule_invalid"


class TermTaken(Conflict):
    code = "term_taken"


class AdjustmentTooLarge(InvalidRequest):
    code = "discount_exceeds_item"
    title = "Discount larger than its item"


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"


class AmountExceedsBalance(InvalidRequest):
    code = "amount_exceeds_balance"
    title = "More than the invoice's balance"


class PartialPaymentNotAllowed(InvalidRequest):
    code = "partial_payment_not_allowed"


class InvoicePaid(Conflict):
    code = "invoice_paid"


class CsvInvalid(InvalidRequest):
    """A CSV file refused whole; `errors` lists every bad row with its line number."""

    code = "csv_invalid"
    title = "CSV file refused"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)


class CsvBadEncoding(InvalidRequest):
    code = "csv_bad_encoding"


class CsvBadColumns(InvalidRequest):
    code = "csv_bad_columns"


class CsvTooLarge(HanoiPayError):
    status = 413
    code = "csv_too_large"
    title = "CSV file too large"
