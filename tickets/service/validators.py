"""Validator devices: registration, their own credentials, the deny list they sync, and the online check.

Validators are devices, not people: each signs in with its id and a 256-bit secret that is stored
hashed (`Authorization: Bearer val_….<secret>`), apart from the people's auth in `hanoipay.auth`.
The online check runs the same `Validator` as the offline library, with the deny list read from the
database and the replay cache shared by every API process in Redis.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from hanoipay.jobs import get_redis
from hanoipay.settings import get_settings
from tickets.exceptions import InvalidValidatorCredentials, ValidatorNotFound
from tickets.models import FareDay, TransitCard, TransitDevice, TransitValidator
from tickets.service.keys import issuer_keys
from tickets.validator import Decision, DenyList, Reason, Validator

SECRET_PREFIX = "val_"
TWO_VEHICLES_SECONDS = 60


def _hash(secret: str) -> str:
    # The secret carries 256 random bits, so a fast hash is as safe as a slow one and keeps uploads cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def register_validator(
    session: Session, who: Principal, *, name: str, vehicle_id: str
) -> tuple[TransitValidator, str]:
    """A new validator for a vehicle or gate, and its secret, shown once (admin or operator staff)."""
    who.require(Role.ADMIN, Role.OPERATOR)
    secret = secrets.token_urlsafe(32)
    validator = TransitValidator(
        id=new_id("val"), name=name, vehicle_id=vehicle_id, secret_hash=_hash(secret), created_by=who.id
    )
    session.add(validator)
    session.flush()
    return validator, f"{validator.id}.{secret}"


def revoke_validator(session: Session, who: Principal, validator_id: str) -> TransitValidator:
    """Stop a validator's credentials from working (a stolen or retired device)."""
    who.require(Role.ADMIN, Role.OPERATOR)
    validator = session.get(TransitValidator, validator_id, with_for_update=True)
    if validator is None:
        raise ValidatorNotFound(f"No validator {validator_id}.")
    if validator.revoked_at is None:
        validator.revoked_at = datetime.now(UTC)
        session.flush()
    return validator


def authenticate_validator(session: Session, token: str) -> TransitValidator:
    """The live validator whose `id.secret` this is; 401 invalid_validator_credentials otherwise."""
    validator_id, _, secret = token.partition(".")
    validator = (
        session.get(TransitValidator, validator_id) if validator_id.startswith(SECRET_PREFIX) else None
    )
    if validator is None or not secret or not hmac.compare_digest(validator.secret_hash, _hash(secret)):
        raise InvalidValidatorCredentials("Unknown validator or wrong secret.")
    if validator.revoked_at is not None:
        raise InvalidValidatorCredentials("This validator has been revoked.")
    return validator


@dataclass(frozen=True)
class DenyEntries:
    """What validators must refuse now."""

    revoked_cards: list[str]
    cards_in_debt: list[str]
    revoked_devices: list[bytes]
    version: str
    generated_at: datetime

    def as_deny_list(self) -> DenyList:
        """The entries in the form the validator library takes."""
        cards = {card: Reason.CARD_REVOKED for card in self.revoked_cards}
        cards.update({card: Reason.CARD_IN_DEBT for card in self.cards_in_debt})
        return DenyList(cards=cards, devices=set(self.revoked_devices))


def deny_entries(session: Session, *, now: datetime | None = None) -> DenyEntries:
    """Revoked cards, cards owing more than the debt limit, and revoked device keys still able to sign."""
    moment = now or datetime.now(UTC)
    revoked = list(
        session.scalars(
            select(TransitCard.id).where(TransitCard.status == "revoked").order_by(TransitCard.id)
        )
    )
    debtors = list(
        session.scalars(
            select(FareDay.card_id)
            .where(FareDay.closed, FareDay.total_amount > FareDay.charged_amount)
            .group_by(FareDay.card_id)
            .having(
                func.sum(FareDay.total_amount - FareDay.charged_amount) > get_settings().transit_debt_limit
            )
            .order_by(FareDay.card_id)
        )
    )
    devices = list(
        session.scalars(
            select(TransitDevice.public_key)
            .where(
                TransitDevice.status == "revoked",
                TransitDevice.credential_valid_until > moment - timedelta(days=1),
            )
            .order_by(TransitDevice.public_key)
        )
    )
    digest = hashlib.sha256()
    for part in (*revoked, "|", *debtors, "|"):
        digest.update(part.encode() + b"\n")
    for key in devices:
        digest.update(key)
    return DenyEntries(revoked, debtors, devices, digest.hexdigest()[:16], moment)


@lru_cache(maxsize=4)
def _online_validator(keys: tuple[tuple[str, bytes], ...], skew: int) -> Validator:
    # The replay cache of the online check lives in Redis; this instance only verifies and caches credentials.
    return Validator(dict(keys), skew_seconds=skew, rescan_seconds=0)


def verifier() -> Validator:
    """A validator with the current issuer keys and no deny list or replay cache: signatures and time only."""
    settings = get_settings()
    return _online_validator(
        tuple(sorted(issuer_keys().public().items())), settings.transit_clock_skew_seconds
    )


@dataclass(frozen=True)
class OnlineDecision:
    """The online check's answer: the decision, and whether the card was seen on another vehicle just now."""

    decision: Decision
    flag: str | None


def check_online(session: Session, payload: bytes, *, vehicle_id: str, now: datetime) -> OnlineDecision:
    """Decide on a code as a validator would, with the deny list as of now and the shared replay cache."""
    decision = verifier().check(payload, now.timestamp(), vehicle_id=vehicle_id)
    if not decision.accepted or decision.card_id is None:
        return OnlineDecision(decision, None)
    denied = _denied(session, decision)
    if denied is not None:
        return OnlineDecision(replace(decision, reason=denied), None)
    redis = get_redis()
    rescan = get_settings().transit_rescan_seconds
    if not redis.set(
        f"hanoipay:transit:seen:{vehicle_id}:{decision.card_id}", now.timestamp(), nx=True, ex=rescan
    ):
        return OnlineDecision(replace(decision, reason=Reason.ALREADY_SCANNED), None)
    last_key = f"hanoipay:transit:last:{decision.card_id}"
    previous = redis.getset(last_key, f"{vehicle_id}|{now.timestamp()}")
    redis.expire(last_key, TWO_VEHICLES_SECONDS)
    flag = None
    if previous:
        text = previous.decode() if isinstance(previous, bytes) else str(previous)
        other, _, moment = text.partition("|")
        if other != vehicle_id and now.timestamp() - float(moment) < TWO_VEHICLES_SECONDS:
            flag = "two_vehicles"
    return OnlineDecision(decision, flag)


def _denied(session: Session, decision: Decision) -> Reason | None:
    card = session.get(TransitCard, decision.card_id)
    if card is None or card.status != "active":
        return Reason.CARD_REVOKED
    device_status = session.scalar(
        select(TransitDevice.status).where(TransitDevice.public_key == decision.device_key)
    )
    if device_status != "active":
        return Reason.DEVICE_REVOKED
    owed = session.scalar(
        select(func.coalesce(func.sum(FareDay.total_amount - FareDay.charged_amount), 0)).where(
            FareDay.card_id == card.id, FareDay.closed, FareDay.total_amount > FareDay.charged_amount
        )
    )
    if int(owed or 0) > get_settings().transit_debt_limit:
        return Reason.CARD_IN_DEBT
    return None
