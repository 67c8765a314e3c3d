"""Rider cards and their devices: open a card on a wallet, register a phone's key, revoke a lost one.

A card belongs to a rider (a customer) and is paid from the rider's wallet. A device is a phone's
Ed25519 public key bound to one card; registering it returns a credential signed by the active issuer
key. Revoking a card or a device puts it on the deny list at once (the list is read from these rows).
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from payments.exceptions import WalletNotFound
from payments.models import Wallet
from payments.wallets import get_wallet
from tickets.credentials import Credential, load_public_key, sign_credential
from tickets.exceptions import (
    CardNotFound,
    CardRevoked,
    CodeNotCurrent,
    DeviceKeyTaken,
    DeviceNotFound,
    DeviceRevoked,
    InvalidDeviceKey,
    UnknownCategory,
)
from tickets.models import CardStatus, TransitCard, TransitDevice, TransitRiderCategory
from tickets.service.keys import issuer_keys
from tickets.service.network import active_feed


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def open_card(
    session: Session, who: Principal, *, wallet_id: str, category_id: str | None = None, name: str = ""
) -> TransitCard:
    """Open a virtual card for the caller, paid from their wallet, in a rider category of the feed."""
    who.require(Role.CUSTOMER)
    wallet = get_wallet(session, who, wallet_id)
    if wallet.owner_id != who.id:
        raise WalletNotFound(f"No wallet {wallet_id} of yours; a card is paid from its rider's own wallet.")
    category = _category(session, category_id)
    card = TransitCard(
        id=new_id("card"),
        owner_id=who.id,
        wallet_id=wallet.id,
        category_id=category.category_id,
        name=name or "Thẻ vé giao thông Hà Nội",
        status=CardStatus.ACTIVE,
    )
    session.add(card)
    session.flush()
    return card


def _category(session: Session, category_id: str | None) -> TransitRiderCategory:
    feed = active_feed(session)
    query = select(TransitRiderCategory).where(TransitRiderCategory.feed_id == feed.id)
    query = query.where(
        TransitRiderCategory.category_id == category_id if category_id else TransitRiderCategory.is_default
    )
    category = session.scalar(query)
    if category is None:
        raise UnknownCategory(f"The network has no rider category {category_id!r}.")
    return category


def get_card(session: Session, who: Principal, card_id: str, *, for_update: bool = False) -> TransitCard:
    """The card, if it is the caller's (or the caller is staff); 404 otherwise."""
    card = session.get(TransitCard, card_id, with_for_update=for_update)
    if card is None or not (card.owner_id == who.id or who.is_staff):
        raise CardNotFound(f"No card {card_id}.")
    return card


def list_cards(session: Session, who: Principal) -> list[TransitCard]:
    """The caller's cards, newest first."""
    return list(
        session.scalars(
            select(TransitCard).where(TransitCard.owner_id == who.id).order_by(TransitCard.id.desc())
        )
    )


def set_category(session: Session, who: Principal, card_id: str, category_id: str) -> TransitCard:
    """Staff set a card's rider category once eligibility is checked (a student card, a senior's)."""
    who.require(Role.ADMIN, Role.OPERATOR)
    card = get_card(session, who, card_id, for_update=True)
    card.category_id = _category(session, category_id).category_id
    session.flush()
    return card


def register_device(
    session: Session,
    who: Principal,
    card_id: str,
    *,
    public_key: bytes,
    name: str,
    now: datetime | None = None,
) -> TransitDevice:
    """Bind a phone's Ed25519 public key to the card and issue its signed credential."""
    card = get_card(session, who, card_id, for_update=True)
    if card.status != CardStatus.ACTIVE:
        raise CardRevoked(f"Card {card.id} is revoked; open a new card.")
    try:
        load_public_key(public_key)
    except ValueError:
        raise InvalidDeviceKey("public_key must be the 32 raw bytes of an Ed25519 key, base64url.") from None
    device = TransitDevice(
        id=new_id("dev"), card_id=card.id, name=name, public_key=public_key, status="active"
    )
    _issue(session, card, device, _now(now))
    try:
        with session.begin_nested():
            session.add(device)
    except IntegrityError:
        raise DeviceKeyTaken("This device key is already registered; make a new key pair.") from None
    return device


def refresh_credential(
    session: Session, who: Principal, device_id: str, *, now: datetime | None = None
) -> TransitDevice:
    """A new credential for an active device (before the old one expires, or after a key rotation)."""
    device = get_device(session, who, device_id, for_update=True)
    card = get_card(session, who, device.card_id)
    if device.status != "active":
        raise DeviceRevoked(f"Device {device.id} is revoked.")
    if card.status != CardStatus.ACTIVE:
        raise CardRevoked(f"Card {card.id} is revoked.")
    _issue(session, card, device, _now(now))
    session.flush()
    return device


def _issue(session: Session, card: TransitCard, device: TransitDevice, now: datetime) -> None:
    settings = get_settings()
    keys = issuer_keys()
    category = _category(session, card.category_id)
    valid_until = now + timedelta(days=settings.transit_credential_days)
    credential = Credential(
        kid=keys.active,
        card_id=card.id,
        device_key=device.public_key,
        category=category.code,
        slot_seconds=settings.transit_slot_seconds,
        valid_from=int(now.timestamp()),
        valid_until=int(valid_until.timestamp()),
    )
    device.credential = sign_credential(credential, keys.keys[keys.active])
    device.credential_kid = keys.active
    device.credential_valid_until = valid_until.replace(microsecond=0)


def get_device(
    session: Session, who: Principal, device_id: str, *, for_update: bool = False
) -> TransitDevice:
    """The device, if its card is the caller's (or the caller is staff); 404 otherwise."""
    device = session.get(TransitDevice, device_id, with_for_update=for_update)
    if device is None:
        raise DeviceNotFound(f"No device {device_id}.")
    card = session.get(TransitCard, device.card_id)
    if card is None or not (card.owner_id == who.id or who.is_staff):
        raise DeviceNotFound(f"No device {device_id}.")
    return device


def list_devices(session: Session, who: Principal, card_id: str) -> list[TransitDevice]:
    """The card's devices, newest first."""
    card = get_card(session, who, card_id)
    return list(
        session.scalars(
            select(TransitDevice).where(TransitDevice.card_id == card.id).order_by(TransitDevice.id.desc())
        )
    )


def revoke_device(
    session: Session, who: Principal, device_id: str, *, now: datetime | None = None
) -> TransitDevice:
    """Revoke a lost phone: its key goes on the deny list at once; the card keeps its other devices."""
    device = get_device(session, who, device_id, for_update=True)
    if device.status == "active":
        device.status = "revoked"
        device.revoked_at = _now(now)
        session.flush()
    return device


def revoke_card(
    session: Session, who: Principal, card_id: str, *, now: datetime | None = None
) -> TransitCard:
    """Revoke a card and every device on it; the card goes on the deny list at once."""
    card = get_card(session, who, card_id, for_update=True)
    moment = _now(now)
    if card.status == CardStatus.ACTIVE:
        card.status = CardStatus.REVOKED
        card.revoked_at = moment
        for device in session.scalars(
            select(TransitDevice).where(TransitDevice.card_id == card.id, TransitDevice.status == "active")
        ):
            device.status = "revoked"
            device.revoked_at = moment
        session.flush()
    return card


def check_current_code(
    device: TransitDevice, code_card: str, code_key: bytes, slot_start: float, slot_seconds: int, now: float
) -> None:
    """Refuse to render a code that is not this device's or not for the current slot."""
    if code_card != device.card_id or code_key != device.public_key:
        raise CodeNotCurrent("The code was not made by this device for its card.")
    skew = get_settings().transit_clock_skew_seconds
    if not slot_start - skew <= now <= slot_start + slot_seconds + skew:
        raise CodeNotCurrent("The code is not for the current time slot.")


def wallet_of(session: Session, card: TransitCard) -> Wallet:
    """The wallet that pays the card's fares."""
    wallet = session.get(Wallet, card.wallet_id)
    assert wallet is not None
    return wallet
