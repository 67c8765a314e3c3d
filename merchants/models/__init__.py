"""The merchants domain's tables."""

from merchants.models.markets import Market, SaleKind, Stall, StallSale, StallTransfer, TransferStatus
from merchants.models.onboarding import (
    MerchantKind,
    MerchantMember,
    MerchantProfile,
    StaffInvitation,
    StaffRole,
    Verification,
)
from merchants.models.settlement import BalanceCheckpoint, Settlement, StatementDay
from merchants.models.tuition import (
    FeeItem,
    FeeSchedule,
    Guardian,
    Installment,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoiceStatus,
    LineKind,
    SchoolClass,
    Student,
    StudentAdjustment,
)

__all__ = [
    "BalanceCheckpoint",
    "FeeItem",
    "FeeSchedule",
    "Guardian",
    "Installment",
    "Invoice",
    "InvoiceLine",
    "InvoicePayment",
    "InvoiceStatus",
    "LineKind",
    "Market",
    "MerchantKind",
    "MerchantMember",
    "MerchantProfile",
    "SaleKind",
    "SchoolClass",
    "Settlement",
    "StaffInvitation",
    "StaffRole",
    "Stall",
    "StallSale",
    "StallTransfer",
    "StatementDay",
    "Student",
    "StudentAdjustment",
    "TransferStatus",
    "Verification",
]
