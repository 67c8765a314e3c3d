"""merchants: onboarding, markets and stalls, tuition, settlement; payouts on one path

Merchant onboarding moves out of the payment core: the core's `merchant` row keeps what a payee needs
(currency, fee, payable account, overpayment policy); kind and payout bank account move to
`merchant_profile`. Payouts gain a source account and the payout clearing step: the money of a payout
still pending is moved from unapplied receipts to payout clearing, as new payouts are when queued.

Revision ID: 0010
Revises: 0004
Create Date: 2026-11-25 21:41:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hanoipay.ids import new_id

revision: str = "0010"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "statement_day",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_statement_day_account_id_ledger_account")
        ),
        sa.PrimaryKeyConstraint("account_id", "day", "kind", name=op.f("pk_statement_day")),
    )
    op.create_table(
        "market",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market")),
    )
    op.create_table(
        "balance_checkpoint",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closing", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_account.id"],
            name=op.f("fk_balance_checkpoint_account_id_ledger_account"),
        ),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_balance_checkpoint")),
    )
    op.create_table(
        "fee_schedule",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("term", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.Column("installments", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("late_fee_kind", sa.String(length=16), nullable=False),
        sa.Column("late_fee_value", sa.BigInteger(), nullable=False),
        sa.Column("late_fee_grace_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_fee_schedule_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_schedule")),
        sa.UniqueConstraint("merchant_id", "term", name=op.f("uq_fee_schedule_merchant_id_term")),
    )
    op.create_table(
        "merchant_profile",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payout_bank_bin", sa.String(length=8), nullable=False),
        sa.Column("payout_account", sa.String(length=32), nullable=False),
        sa.Column("payout_account_name", sa.Text(), nullable=False),
        sa.Column("fee_plan", sa.String(length=32), nullable=False),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=40), nullable=True),
        sa.Column("settlement_delay_days", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_merchant_profile_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchant_profile")),
    )
    op.create_table(
        "school_class",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_school_class_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_class")),
        sa.UniqueConstraint("merchant_id", "name", name=op.f("uq_school_class_merchant_id_name")),
    )
    op.create_table(
        "staff_invitation",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=40), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_staff_invitation_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_invitation_token_hash")),
    )
    op.create_index(
        op.f("ix_staff_invitation_merchant_id"), "staff_invitation", ["merchant_id"], unique=False
    )
    op.create_table(
        "stall",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("market_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("collection_bank_bin", sa.String(length=8), nullable=False),
        sa.Column("collection_account", sa.String(length=32), nullable=False),
        sa.Column("account_name", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["market_id"], ["market.id"], name=op.f("fk_stall_market_id_market")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchant.id"], name=op.f("fk_stall_merchant_id_merchant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stall")),
        sa.UniqueConstraint("collection_account", name=op.f("uq_stall_collection_account")),
        sa.UniqueConstraint("market_id", "code", name=op.f("uq_stall_market_id_code")),
    )
    op.create_index(op.f("ix_stall_merchant_id"), "stall", ["merchant_id"], unique=False)
    op.create_table(
        "fee_item",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("schedule_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["fee_schedule.id"], name=op.f("fk_fee_item_schedule_id_fee_schedule")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_item")),
        sa.UniqueConstraint("schedule_id", "code", name=op.f("uq_fee_item_schedule_id_code")),
    )
    op.create_table(
        "merchant_member",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_by", sa.String(length=40), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_merchant_member_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_merchant_member_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_member")),
    )
    op.create_index("ix_merchant_member_merchant_id", "merchant_member", ["merchant_id"], unique=False)
    op.create_index(
        "uq_merchant_member_active_user",
        "merchant_member",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "student",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("class_id", sa.String(length=40), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["school_class.id"], name=op.f("fk_student_class_id_school_class")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_student_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student")),
        sa.UniqueConstraint("merchant_id", "code", name=op.f("uq_student_merchant_id_code")),
    )
    op.create_index("ix_student_class_id", "student", ["class_id"], unique=False)
    op.create_table(
        "guardian",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["student.id"], name=op.f("fk_guardian_student_id_student")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_guardian_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian")),
    )
    op.create_index(op.f("ix_guardian_student_id"), "guardian", ["student_id"], unique=False)
    op.create_index(op.f("ix_guardian_user_id"), "guardian", ["user_id"], unique=False)
    op.create_table(
        "invoice",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.Column("schedule_id", sa.String(length=40), nullable=True),
        sa.Column("term", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("late_fee_kind", sa.String(length=16), nullable=False),
        sa.Column("late_fee_value", sa.BigInteger(), nullable=False),
        sa.Column("late_fee_grace_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_invoice_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["fee_schedule.id"], name=op.f("fk_invoice_schedule_id_fee_schedule")
        ),
        sa.ForeignKeyConstraint(["student_id"], ["student.id"], name=op.f("fk_invoice_student_id_student")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice")),
        sa.UniqueConstraint("code", name=op.f("uq_invoice_code")),
        sa.UniqueConstraint("student_id", "term", name=op.f("uq_invoice_student_id_term")),
    )
    op.create_index("ix_invoice_merchant_id_id", "invoice", ["merchant_id", "id"], unique=False)
    op.create_table(
        "student_adjustment",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.Column("schedule_id", sa.String(length=40), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("percent_bps", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["fee_schedule.id"], name=op.f("fk_student_adjustment_schedule_id_fee_schedule")
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name=op.f("fk_student_adjustment_student_id_student")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_adjustment")),
        sa.UniqueConstraint(
            "student_id",
            "schedule_id",
            "item_code",
            name=op.f("uq_student_adjustment_student_id_schedule_id_item_code"),
        ),
    )
    op.create_table(
        "invoice_installment",
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoice.id"], name=op.f("fk_invoice_installment_invoice_id_invoice")
        ),
        sa.PrimaryKeyConstraint("invoice_id", "seq", name=op.f("pk_invoice_installment")),
    )
    op.create_table(
        "invoice_line",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("installment_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoice.id"], name=op.f("fk_invoice_line_invoice_id_invoice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_line")),
    )
    op.create_index(op.f("ix_invoice_line_invoice_id"), "invoice_line", ["invoice_id"], unique=False)
    op.create_table(
        "invoice_payment",
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_invoice_payment_intent_id_payment_intent")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoice.id"], name=op.f("fk_invoice_payment_invoice_id_invoice")
        ),
        sa.PrimaryKeyConstraint("intent_id", name=op.f("pk_invoice_payment")),
    )
    op.create_index(op.f("ix_invoice_payment_invoice_id"), "invoice_payment", ["invoice_id"], unique=False)
    op.create_table(
        "stall_sale",
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("stall_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_stall_sale_intent_id_payment_intent")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_stall_sale_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(["stall_id"], ["stall.id"], name=op.f("fk_stall_sale_stall_id_stall")),
        sa.PrimaryKeyConstraint("intent_id", name=op.f("pk_stall_sale")),
    )
    op.create_index(
        "ix_stall_sale_stall_id_business_day", "stall_sale", ["stall_id", "business_day"], unique=False
    )
    op.create_table(
        "stall_transfer",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stall_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("bank_transaction_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transaction.id"],
            name=op.f("fk_stall_transfer_bank_transaction_id_bank_transaction"),
        ),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_stall_transfer_intent_id_payment_intent")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_stall_transfer_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(["stall_id"], ["stall.id"], name=op.f("fk_stall_transfer_stall_id_stall")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stall_transfer")),
        sa.UniqueConstraint("bank_transaction_id", name=op.f("uq_stall_transfer_bank_transaction_id")),
    )
    op.create_index(
        "ix_stall_transfer_merchant_id_status", "stall_transfer", ["merchant_id", "status"], unique=False
    )
    op.create_index(op.f("ix_stall_transfer_stall_id"), "stall_transfer", ["stall_id"], unique=False)
    op.create_table(
        "settlement",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_settlement_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(["payout_id"], ["payout.id"], name=op.f("fk_settlement_payout_id_payout")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement")),
        sa.UniqueConstraint(
            "merchant_id", "business_day", name=op.f("uq_settlement_merchant_id_business_day")
        ),
    )
    op.execute(
        """
        INSERT INTO merchant_profile (merchant_id, kind, payout_bank_bin, payout_account, payout_account_name,
                                      fee_plan, verification, settlement_delay_days, updated_at, created_at)
        SELECT id, kind, payout_bank_bin, payout_account, upper(payout_account_name), 'custom', 'unverified',
               1, now(), created_at
        FROM merchant
        """
    )
    op.drop_column("merchant", "payout_bank_bin")
    op.drop_column("merchant", "kind")
    op.drop_column("merchant", "payout_account_name")
    op.drop_column("merchant", "payout_account")
    op.add_column("payout", sa.Column("merchant_id", sa.String(length=40), nullable=True))
    op.add_column("payout", sa.Column("source_account_id", sa.String(length=40), nullable=True))
    op.execute(
        """
        UPDATE payout SET source_account_id = a.id FROM ledger_account a
        WHERE a.code = 'unapplied_receipts:vietqr:' || payout.currency
        """
    )
    op.alter_column("payout", "source_account_id", nullable=False)
    op.create_check_constraint(op.f("ck_payout_amount_positive"), "payout", "amount > 0")
    _move_pending_payouts(to_clearing=True)
    op.add_column("payout", sa.Column("account_name", sa.Text(), nullable=True))
    op.add_column("payout", sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout", sa.Column("failure_reason", sa.Text(), nullable=True))
    op.create_index("ix_payout_merchant_id_id", "payout", ["merchant_id", "id"], unique=False)
    op.create_index(
        "ix_payout_unexported",
        "payout",
        ["id"],
        unique=False,
        postgresql_where=sa.text("exported_at IS NULL AND status = 'pending'"),
    )
    op.create_foreign_key(
        op.f("fk_payout_merchant_id_merchant"), "payout", "merchant", ["merchant_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_payout_source_account_id_ledger_account"),
        "payout",
        "ledger_account",
        ["source_account_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_payout_source_account_id_ledger_account"), "payout", type_="foreignkey")
    op.drop_constraint(op.f("fk_payout_merchant_id_merchant"), "payout", type_="foreignkey")
    op.drop_index(
        "ix_payout_unexported",
        table_name="payout",
        postgresql_where=sa.text("exported_at IS NULL AND status = 'pending'"),
    )
    op.drop_index("ix_payout_merchant_id_id", table_name="payout")
    _move_pending_payouts(to_clearing=False)
    op.drop_constraint(op.f("ck_payout_amount_positive"), "payout", type_="check")
    op.drop_column("payout", "failure_reason")
    op.drop_column("payout", "failed_at")
    op.drop_column("payout", "exported_at")
    op.drop_column("payout", "account_name")
    op.drop_column("payout", "source_account_id")
    op.drop_column("payout", "merchant_id")
    op.add_column("merchant", sa.Column("payout_account", sa.VARCHAR(length=32), nullable=True))
    op.add_column("merchant", sa.Column("payout_account_name", sa.TEXT(), nullable=True))
    op.add_column("merchant", sa.Column("kind", sa.VARCHAR(length=32), nullable=True))
    op.add_column("merchant", sa.Column("payout_bank_bin", sa.VARCHAR(length=8), nullable=True))
    op.execute(
        """
        UPDATE merchant m SET payout_account = p.payout_account, payout_account_name = p.payout_account_name,
                              kind = p.kind, payout_bank_bin = p.payout_bank_bin
        FROM merchant_profile p WHERE p.merchant_id = m.id
        """
    )
    for column in ("payout_account", "payout_account_name", "kind", "payout_bank_bin"):
        op.alter_column("merchant", column, nullable=False)
    op.drop_table("settlement")
    op.drop_index(op.f("ix_stall_transfer_stall_id"), table_name="stall_transfer")
    op.drop_index("ix_stall_transfer_merchant_id_status", table_name="stall_transfer")
    op.drop_table("stall_transfer")
    op.drop_index("ix_stall_sale_stall_id_business_day", table_name="stall_sale")
    op.drop_table("stall_sale")
    op.drop_index(op.f("ix_invoice_payment_invoice_id"), table_name="invoice_payment")
    op.drop_table("invoice_payment")
    op.drop_index(op.f("ix_invoice_line_invoice_id"), table_name="invoice_line")
    op.drop_table("invoice_line")
    op.drop_table("invoice_installment")
    op.drop_table("student_adjustment")
    op.drop_index("ix_invoice_merchant_id_id", table_name="invoice")
    op.drop_table("invoice")
    op.drop_index(op.f("ix_guardian_user_id"), table_name="guardian")
    op.drop_index(op.f("ix_guardian_student_id"), table_name="guardian")
    op.drop_table("guardian")
    op.drop_index("ix_student_class_id", table_name="student")
    op.drop_table("student")
    op.drop_index(
        "uq_merchant_member_active_user",
        table_name="merchant_member",
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.drop_index("ix_merchant_member_merchant_id", table_name="merchant_member")
    op.drop_table("merchant_member")
    op.drop_table("fee_item")
    op.drop_index(op.f("ix_stall_merchant_id"), table_name="stall")
    op.drop_table("stall")
    op.drop_index(op.f("ix_staff_invitation_merchant_id"), table_name="staff_invitation")
    op.drop_table("staff_invitation")
    op.drop_table("school_class")
    op.drop_table("merchant_profile")
    op.drop_table("fee_schedule")
    op.drop_table("balance_checkpoint")
    op.drop_table("market")
    op.drop_table("statement_day")


def _move_pending_payouts(*, to_clearing: bool) -> None:
    """Post, for each pending payout, its move between its source account and payout clearing."""
    conn = op.get_bind()
    pending = conn.execute(
        sa.text(
            "SELECT p.id, p.amount, p.currency, p.source_account_id, p.intent_id, p.refund_id, p.reason "
            "FROM payout p WHERE p.status = 'pending' ORDER BY p.id"
        )
    ).all()
    for payout in pending:
        clearing = _payout_clearing(conn, payout.currency)
        # Positive amounts are debits; both accounts are liabilities, whose balance moves against the sign.
        debit, credit = (
            (payout.source_account_id, clearing) if to_clearing else (clearing, payout.source_account_id)
        )
        entry_id = new_id("je")
        key = f"migration_0010:{'queued' if to_clearing else 'unqueued'}:{payout.id}:{entry_id}"
        conn.execute(
            sa.text(
                "INSERT INTO journal_entry "
                "(id, kind, dedupe_key, intent_id, refund_id, description, posted_at) "
                "VALUES (:id, 'payout', :key, :intent, :refund, :description, now())"
            ),
            {
                "id": entry_id,
                "key": key,
                "intent": payout.intent_id,
                "refund": payout.refund_id,
                "description": payout.reason,
            },
        )
        for account, amount in ((debit, payout.amount), (credit, -payout.amount)):
            conn.execute(
                sa.text(
                    "INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at) "
                    "VALUES (:entry, :account, :currency, :amount, now())"
                ),
                {"entry": entry_id, "account": account, "currency": payout.currency, "amount": amount},
            )
            conn.execute(
                sa.text("INSERT INTO balance_delta (account_id, amount) VALUES (:account, :amount)"),
                {"account": account, "amount": -amount},
            )


def _payout_clearing(conn: sa.Connection, currency: str) -> str:
    code = f"payout_clearing:{currency}"
    found = conn.execute(sa.text("SELECT id FROM ledger_account WHERE code = :code"), {"code": code}).scalar()
    if found is not None:
        return str(found)
    account_id = new_id("acct")
    conn.execute(
        sa.text(
            "INSERT INTO ledger_account (id, code, name, type, currency, balance_mode, created_at) "
            "VALUES (:id, :code, :name, 'liability', :currency, 'deferred', now())"
        ),
        {"id": account_id, "code": code, "name": f"Payouts in transit ({currency})", "currency": currency},
    )
    conn.execute(
        sa.text(
            "INSERT INTO account_balance (account_id, posted, held, non_negative, updated_at) "
            "VALUES (:id, 0, 0, false, now())"
        ),
        {"id": account_id},
    )
    return account_id
