"""Turning service results into the API's response models."""

from datetime import datetime

from sqlalchemy.orm import Session

from parking.models import ParkingSession, Spot, TariffVersion, Zone
from parking.schemas import PaymentOut, PriceOut, ReceiptOut, SessionOut, ZoneBrief
from parking.service import payments
from parking.service.sessions import Receipt
from parking.tariffs import Priced


def price_out(version: TariffVersion, priced: Priced) -> PriceOut:
    """A price with the decision behind it and the pieces it was made of."""
    return PriceOut(
        amount=priced.amount,
        tariff_version_id=version.id,
        decision=version.decision_ref,
        sample=version.sample,
        pieces=[
            {
                "band": p.band,
                "starts_at": p.starts_at.isoformat(),
                "ends_at": p.ends_at.isoformat(),
                "minutes": p.minutes,
                "amount": p.amount,
                "holiday": p.holiday,
            }
            for p in priced.pieces
        ],
        capped_days=priced.capped_days,
    )


def zone_brief(zone: Zone) -> ZoneBrief:
    """The few fields of a zone a list shows."""
    return ZoneBrief(
        id=zone.id,
        code=zone.code,
        name=zone.name,
        street=zone.street,
        district=zone.district,
        address=zone.address,
        lat=zone.lat,
        lon=zone.lon,
    )


def _payments_out(session: Session, psn: ParkingSession) -> list[PaymentOut]:
    return [
        PaymentOut(
            intent_id=i.id,
            kind=payments.kind_of(i),
            amount=i.amount,
            status=i.status,
            provider=i.provider,
            amount_received=i.amount_received,
            amount_refunded=i.amount_refunded,
            next_action=i.next_action if i.status == "requires_action" else None,
        )
        for i in payments.payments_of(session, psn)
    ]


def session_out(session: Session, psn: ParkingSession) -> SessionOut:
    """A session with its zone, spot and payments."""
    spot = session.get(Spot, psn.spot_id)
    assert spot is not None
    return SessionOut(
        id=psn.id,
        status=psn.status,
        plate=psn.plate,
        vehicle_type=psn.vehicle_type,
        zone_code=psn.zone_code,
        spot_code=spot.code,
        spot_id=spot.id,
        open_ended=psn.open_ended,
        provider=psn.provider,
        started_at=psn.started_at,
        covered_until=psn.covered_until,
        ended_at=psn.ended_at,
        prepaid_minutes=psn.prepaid_minutes,
        prepaid_amount=psn.prepaid_amount,
        charged_amount=psn.charged_amount,
        overstay_minutes=psn.overstay_minutes,
        unpaid_amount=psn.unpaid_amount,
        currency=psn.currency,
        tariff_version_id=psn.tariff_version_id,
        payments=_payments_out(session, psn),
        created_at=psn.created_at,
    )


def _minutes(start: datetime | None, end: datetime | None) -> int | None:
    return None if start is None or end is None else round((end - start).total_seconds() / 60)


def receipt_out(session: Session, receipt: Receipt) -> ReceiptOut:
    """The receipt of a session."""
    psn, version = receipt.psn, receipt.version
    return ReceiptOut(
        session_id=psn.id,
        status=psn.status,
        plate=psn.plate,
        vehicle_type=psn.vehicle_type,
        zone=zone_brief(receipt.zone),
        spot_code=receipt.spot.code,
        operator_id=psn.merchant_id,
        started_at=psn.started_at,
        ended_at=psn.ended_at,
        minutes_parked=_minutes(psn.started_at, psn.ended_at),
        prepaid_minutes=psn.prepaid_minutes,
        overstay_minutes=psn.overstay_minutes,
        tariff={
            "version_id": version.id,
            "decision": version.decision_ref,
            "effective_from": version.effective_from.isoformat(),
            "sample": version.sample,
        },
        charged_amount=psn.charged_amount,
        paid_amount=receipt.paid_amount,
        unpaid_amount=psn.unpaid_amount,
        currency=psn.currency,
        payments=_payments_out(session, psn),
    )
