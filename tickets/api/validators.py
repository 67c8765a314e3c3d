"""Validators: registering and revoking them, their deny list, online checks and tap uploads."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors
from tickets.api.deps import JSON
from tickets.credentials import b64url, from_b64url
from tickets.exceptions import (
    InvalidValidatorCredentials,
    NoActiveFeed,
    UnknownRoute,
    UnknownStop,
    ValidatorNotFound,
)
from tickets.models import TransitValidator
from tickets.schemas import (
    DecisionOut,
    DenyListOut,
    TapBatchIn,
    TapBatchOut,
    ValidateIn,
    ValidatorCreatedOut,
    ValidatorIn,
    ValidatorOut,
)
from tickets.service import taps, validators

router = APIRouter(prefix="/v1/transit", tags=["transit"])
_bearer = HTTPBearer(auto_error=False, scheme_name="ValidatorCredentials")


def current_validator(
    session: DbSession, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TransitValidator:
    """The validator device named by `Authorization: Bearer val_….<secret>`."""
    if credentials is None:
        raise InvalidValidatorCredentials(
            "Send the validator's credentials: Authorization: Bearer val_….<secret>."
        )
    return validators.authenticate_validator(session, credentials.credentials)


ValidatorDevice = Annotated[TransitValidator, Depends(current_validator)]


@router.post("/validators", status_code=201, dependencies=JSON, responses=errors(RoleNotAllowed))
def register_validator(body: ValidatorIn, session: DbSession, who: Caller) -> ValidatorCreatedOut:
    """Register a validator device for a vehicle or gate; the answer shows its secret once."""
    validator, secret = validators.register_validator(
        session, who, name=body.name, vehicle_id=body.vehicle_id
    )
    return ValidatorCreatedOut(**ValidatorOut.model_validate(validator).model_dump(), secret=secret)


@router.post("/validators/{validator_id}/revoke", responses=errors(ValidatorNotFound, RoleNotAllowed))
def revoke_validator(validator_id: str, session: DbSession, who: Caller) -> ValidatorOut:
    """Revoke a validator's credentials (stolen or retired)."""
    return ValidatorOut.model_validate(validators.revoke_validator(session, who, validator_id))


@router.get("/deny_list", responses=errors(InvalidValidatorCredentials))
def deny_list(session: DbSession, validator: ValidatorDevice) -> DenyListOut:
    """What validators must refuse now: revoked cards and devices, cards owing past the debt limit."""
    entries = validators.deny_entries(session)
    return DenyListOut(
        version=entries.version,
        generated_at=entries.generated_at,
        revoked_cards=entries.revoked_cards,
        cards_in_debt=entries.cards_in_debt,
        revoked_devices=[b64url(key) for key in entries.revoked_devices],
    )


@router.post(
    "/validate",
    dependencies=JSON,
    responses=errors(InvalidValidatorCredentials, UnknownRoute, UnknownStop, NoActiveFeed),
)
def validate_online(body: ValidateIn, session: DbSession, validator: ValidatorDevice) -> DecisionOut:
    """The validator's check, online: accept or reject with a reason code, recorded as a tap."""
    try:
        payload = from_b64url(body.payload)
    except ValueError:
        payload = b""
    online, tap_id = taps.record_online_check(
        session,
        validator,
        payload,
        route_id=body.route_id,
        stop_id=body.stop_id,
        direction=body.direction,
        now=datetime.now(UTC),
    )
    decision = online.decision
    return DecisionOut(
        accepted=decision.accepted,
        reason=decision.reason.value,
        card_id=decision.card_id,
        flag=online.flag,
        tap_id=tap_id,
    )


@router.post("/taps/batch", dependencies=JSON, responses=errors(InvalidValidatorCredentials, NoActiveFeed))
def upload_taps(body: TapBatchIn, session: DbSession, validator: ValidatorDevice) -> TapBatchOut:
    """Upload a batch of taps, applied once per tap id; malformed taps are reported by index."""
    result = taps.upload_taps(session, validator, body.taps)
    return TapBatchOut.model_validate(result, from_attributes=True)
