"""parking: zones, spots, tariffs and versions, quotes, sessions, violations

Revision ID: 0020
Revises: 0004
Create Date: 2026-11-25 22:00:12.384288
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parking_tariff",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("vehicle_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_parking_tariff_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_tariff")),
        sa.UniqueConstraint("merchant_id", "code", name=op.f("uq_parking_tariff_merchant_id_code")),
    )
    op.create_table(
        "parking_zone",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("street", sa.Text(), nullable=False),
        sa.Column("street_key", sa.Text(), nullable=False),
        sa.Column("district", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("geometry", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("max_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=False),
        sa.Column("unused_time_rule", sa.String(length=16), nullable=False),
        sa.Column("sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name=op.f("ck_parking_zone_position")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_parking_zone_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_zone")),
        sa.UniqueConstraint("code", name=op.f("uq_parking_zone_code")),
    )
    op.create_index("ix_parking_zone_lat_lon", "parking_zone", ["lat", "lon"], unique=False)
    op.create_index(op.f("ix_parking_zone_merchant_id"), "parking_zone", ["merchant_id"], unique=False)
    op.create_table(
        "parking_spot",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("vehicle_type", sa.String(length=16), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_source", sa.String(length=16), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zone.id"], name=op.f("fk_parking_spot_zone_id_parking_zone")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_spot")),
        sa.UniqueConstraint("zone_id", "code", name=op.f("uq_parking_spot_zone_id_code")),
    )
    op.create_index(
        "ix_parking_spot_free",
        "parking_spot",
        ["zone_id", "vehicle_type"],
        unique=False,
        postgresql_where=sa.text("state = 'free'"),
    )
    op.create_table(
        "parking_tariff_version",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tariff_id", sa.String(length=40), nullable=False),
        sa.Column("decision_ref", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from",
            name=op.f("ck_parking_tariff_version_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["tariff_id"],
            ["parking_tariff.id"],
            name=op.f("fk_parking_tariff_version_tariff_id_parking_tariff"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_tariff_version")),
        sa.UniqueConstraint(
            "tariff_id", "effective_from", name=op.f("uq_parking_tariff_version_tariff_id_effective_from")
        ),
    )
    op.create_table(
        "parking_zone_tariff",
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("vehicle_type", sa.String(length=16), nullable=False),
        sa.Column("tariff_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["parking_tariff.id"], name=op.f("fk_parking_zone_tariff_tariff_id_parking_tariff")
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zone.id"], name=op.f("fk_parking_zone_tariff_zone_id_parking_zone")
        ),
        sa.PrimaryKeyConstraint("zone_id", "vehicle_type", name=op.f("pk_parking_zone_tariff")),
    )
    op.create_table(
        "parking_quote",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("driver_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("zone_code", sa.String(length=32), nullable=False),
        sa.Column("spot_id", sa.String(length=40), nullable=True),
        sa.Column("vehicle_type", sa.String(length=16), nullable=False),
        sa.Column("tariff_version_id", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_parking_quote_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["spot_id"], ["parking_spot.id"], name=op.f("fk_parking_quote_spot_id_parking_spot")
        ),
        sa.ForeignKeyConstraint(
            ["tariff_version_id"],
            ["parking_tariff_version.id"],
            name=op.f("fk_parking_quote_tariff_version_id_parking_tariff_version"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zone.id"], name=op.f("fk_parking_quote_zone_id_parking_zone")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_quote")),
    )
    op.create_table(
        "parking_session",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("driver_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("zone_code", sa.String(length=32), nullable=False),
        sa.Column("spot_id", sa.String(length=40), nullable=False),
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("tariff_version_id", sa.String(length=40), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("vehicle_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("wallet_id", sa.String(length=40), nullable=True),
        sa.Column("payment_method", sa.String(length=100), nullable=True),
        sa.Column("open_ended", sa.Boolean(), nullable=False),
        sa.Column("priced_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prepaid_minutes", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("covered_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prepaid_amount", sa.BigInteger(), nullable=False),
        sa.Column("charged_amount", sa.BigInteger(), nullable=True),
        sa.Column("overstay_minutes", sa.Integer(), nullable=False),
        sa.Column("unpaid_amount", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_parking_session_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["quote_id"], ["parking_quote.id"], name=op.f("fk_parking_session_quote_id_parking_quote")
        ),
        sa.ForeignKeyConstraint(
            ["spot_id"], ["parking_spot.id"], name=op.f("fk_parking_session_spot_id_parking_spot")
        ),
        sa.ForeignKeyConstraint(
            ["tariff_version_id"],
            ["parking_tariff_version.id"],
            name=op.f("fk_parking_session_tariff_version_id_parking_tariff_version"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zone.id"], name=op.f("fk_parking_session_zone_id_parking_zone")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_session")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_parking_session_quote_id")),
    )
    op.create_index(
        "ix_parking_session_covered_until",
        "parking_session",
        ["covered_until"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.create_index("ix_parking_session_driver_id_id", "parking_session", ["driver_id", "id"], unique=False)
    op.create_index("ix_parking_session_plate_id", "parking_session", ["plate", "id"], unique=False)
    op.create_index(
        "ix_parking_session_zone_id_started_at", "parking_session", ["zone_id", "started_at"], unique=False
    )
    op.create_index(
        "uq_parking_session_open_plate",
        "parking_session",
        ["plate"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.create_index(
        "uq_parking_session_open_spot",
        "parking_session",
        ["spot_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.create_table(
        "parking_violation",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("spot_id", sa.String(length=40), nullable=True),
        sa.Column("session_id", sa.String(length=40), nullable=True),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("photo_ref", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=40), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_parking_violation_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["parking_session.id"],
            name=op.f("fk_parking_violation_session_id_parking_session"),
        ),
        sa.ForeignKeyConstraint(
            ["spot_id"], ["parking_spot.id"], name=op.f("fk_parking_violation_spot_id_parking_spot")
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zone.id"], name=op.f("fk_parking_violation_zone_id_parking_zone")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_violation")),
    )
    op.create_index(
        "ix_parking_violation_merchant_id_id", "parking_violation", ["merchant_id", "id"], unique=False
    )
    op.create_index(op.f("ix_parking_violation_plate"), "parking_violation", ["plate"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_parking_violation_plate"), table_name="parking_violation")
    op.drop_index("ix_parking_violation_merchant_id_id", table_name="parking_violation")
    op.drop_table("parking_violation")
    op.drop_index(
        "uq_parking_session_open_spot",
        table_name="parking_session",
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.drop_index(
        "uq_parking_session_open_plate",
        table_name="parking_session",
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.drop_index("ix_parking_session_zone_id_started_at", table_name="parking_session")
    op.drop_index("ix_parking_session_plate_id", table_name="parking_session")
    op.drop_index("ix_parking_session_driver_id_id", table_name="parking_session")
    op.drop_index(
        "ix_parking_session_covered_until",
        table_name="parking_session",
        postgresql_where=sa.text("status IN ('pending_payment', 'active', 'expired')"),
    )
    op.drop_table("parking_session")
    op.drop_table("parking_quote")
    op.drop_table("parking_zone_tariff")
    op.drop_table("parking_tariff_version")
    op.drop_index(
        "ix_parking_spot_free", table_name="parking_spot", postgresql_where=sa.text("state = 'free'")
    )
    op.drop_table("parking_spot")
    op.drop_index(op.f("ix_parking_zone_merchant_id"), table_name="parking_zone")
    op.drop_index("ix_parking_zone_lat_lon", table_name="parking_zone")
    op.drop_table("parking_zone")
    op.drop_table("parking_tariff")
