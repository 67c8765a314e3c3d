"""Riders' cards and their phones: opening and revoking cards, devices and credentials, the QR code."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors
from payments.exceptions import IdempotencyKeyReused, WalletNotFound
from payments.idempotency import IdempotencyHeader, run_idempotent
from tickets.api.deps import JSON
from tickets.credentials import b64url, from_b64url, parse_code, parse_credential
from tickets.exceptions import (
    CardNotFound,
    CardRevoked,
    CodeNotCurrent,
    DeviceKeyTaken,
    DeviceNotFound,
    DeviceRevoked,
    InvalidDeviceKey,
    IssuerKeysMissing,
    NoActiveFeed,
    UnknownCategory,
)
from tickets.models import TransitDevice
from tickets.rider import qr_png
from tickets.schemas import (
    CardCategoryIn,
    CardIn,
    CardOut,
    DeviceIn,
    DeviceOut,
)
from tickets.service import cards, charging

router = APIRouter(prefix="/v1/transit", tags=["transit"])


def _card_out(session: DbSession, card: object) -> CardOut:
    out = CardOut.model_validate(card)
    return out.model_copy(update={"debt": charging.debt_of(session, out.id)})


@router.post(
    "/cards",
    status_code=201,
    dependencies=JSON,
    responses={
        **errors(WalletNotFound, UnknownCategory, NoActiveFeed, RoleNotAllowed, IdempotencyKeyReused),
        201: {"model": CardOut},
    },
)
def open_card(
    body: CardIn, request: Request, who: Caller, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Open a virtual card paid from the caller's wallet (customers)."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: _card_out(session, cards.open_card(session, who, **body.model_dump())),
        status_code=201,
    )


@router.get("/cards")
def list_cards(session: DbSession, who: Caller) -> list[CardOut]:
    """The caller's cards."""
    return [_card_out(session, card) for card in cards.list_cards(session, who)]


@router.get("/cards/{card_id}", responses=errors(CardNotFound))
def get_card(card_id: str, session: DbSession, who: Caller) -> CardOut:
    """One of the caller's cards, with what it owes."""
    return _card_out(session, cards.get_card(session, who, card_id))


@router.post("/cards/{card_id}/revoke", responses=errors(CardNotFound))
def revoke_card(card_id: str, session: DbSession, who: Caller) -> CardOut:
    """Revoke a card (a lost phone, a card given up): it and its devices are denied at once."""
    return _card_out(session, cards.revoke_card(session, who, card_id))


@router.post(
    "/cards/{card_id}/category",
    dependencies=JSON,
    responses=errors(CardNotFound, UnknownCategory, RoleNotAllowed),
)
def set_category(card_id: str, body: CardCategoryIn, session: DbSession, who: Caller) -> CardOut:
    """Set a card's rider category once eligibility is checked (admin, operator staff)."""
    return _card_out(session, cards.set_category(session, who, card_id, body.category_id))


def _device_out(device: TransitDevice) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        card_id=device.card_id,
        name=device.name,
        public_key=b64url(device.public_key),
        status=device.status,
        credential=b64url(device.credential),
        credential_kid=device.credential_kid,
        credential_valid_until=device.credential_valid_until,
        revoked_at=device.revoked_at,
        created_at=device.created_at,
    )


@router.post(
    "/cards/{card_id}/devices",
    status_code=201,
    dependencies=JSON,
    responses=errors(CardNotFound, CardRevoked, InvalidDeviceKey, DeviceKeyTaken, IssuerKeysMissing),
)
def register_device(card_id: str, body: DeviceIn, session: DbSession, who: Caller) -> DeviceOut:
    """Bind a phone's Ed25519 public key to the card; the answer carries its signed credential."""
    try:
        key = from_b64url(body.public_key)
    except ValueError:
        raise InvalidDeviceKey("public_key is not base64url.") from None
    return _device_out(cards.register_device(session, who, card_id, public_key=key, name=body.name))


@router.get("/cards/{card_id}/devices", responses=errors(CardNotFound))
def list_devices(card_id: str, session: DbSession, who: Caller) -> list[DeviceOut]:
    """The card's devices with their credentials."""
    return [_device_out(device) for device in cards.list_devices(session, who, card_id)]


@router.post("/devices/{device_id}/credential", responses=errors(DeviceNotFound, DeviceRevoked, CardRevoked))
def refresh_credential(device_id: str, session: DbSession, who: Caller) -> DeviceOut:
    """A fresh credential for the device, signed by the active issuer key."""
    return _device_out(cards.refresh_credential(session, who, device_id))


@router.post("/devices/{device_id}/revoke", responses=errors(DeviceNotFound))
def revoke_device(device_id: str, session: DbSession, who: Caller) -> DeviceOut:
    """Revoke a lost phone: its key is denied at once; the card and its other devices go on."""
    return _device_out(cards.revoke_device(session, who, device_id))


@router.get(
    "/devices/{device_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **errors(DeviceNotFound, CodeNotCurrent)},
)
def device_qr(
    device_id: str,
    session: DbSession,
    who: Caller,
    code: Annotated[str, Query(min_length=1, max_length=400, description="The current code, base64url")],
) -> Response:
    """A PNG of the device's current code (signed on the device) to show to a validator."""
    device = cards.get_device(session, who, device_id)
    try:
        raw = from_b64url(code)
        parsed = parse_code(raw)
        credential = parse_credential(parsed.credential)[0]
    except ValueError:
        raise CodeNotCurrent("The code cannot be read.") from None
    cards.check_current_code(
        device,
        credential.card_id,
        credential.device_key,
        parsed.slot * credential.slot_seconds,
        credential.slot_seconds,
        datetime.now(UTC).timestamp(),
    )
    return Response(qr_png(raw), media_type="image/png", headers={"Cache-Control": "no-store"})
