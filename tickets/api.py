"""HTTP API of the transit service: network, cards and devices, passes, trips, validators and taps."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit, ListOut, paginate
from hanoipay.settings import get_settings
from payments.exceptions import IdempotencyKeyReused, InsufficientFunds, MerchantNotFound, WalletNotFound
from payments.idempotency import IdempotencyHeader, run_idempotent
from tickets.credentials import b64url, from_b64url, parse_code, parse_credential
from tickets.exceptions import (
    CardNotFound,
    CardRevoked,
    CodeNotCurrent,
    DeviceKeyTaken,
    DeviceNotFound,
    DeviceRevoked,
    InvalidDeviceKey,
    InvalidFeed,
    InvalidValidatorCredentials,
    IssuerKeysMissing,
    NoActiveFeed,
    NoDebt,
    NotAPass,
    ProductNotFound,
    UnknownCategory,
    UnknownRoute,
    UnknownStop,
    ValidatorNotFound,
)
from tickets.models import FareDay, TransitDevice, TransitFeed, TransitTrip, TransitValidator
from tickets.rider import qr_png
from tickets.schemas import (
    CapProgressOut,
    CardCategoryIn,
    CardIn,
    CardOut,
    ChargeRunOut,
    DecisionOut,
    DenyListOut,
    DeviceIn,
    DeviceOut,
    FareDayOut,
    FeedOut,
    IssuerKeyOut,
    KeysOut,
    PassIn,
    PassOut,
    ProductOut,
    SampleFeedIn,
    TapBatchIn,
    TapBatchOut,
    TripOut,
    ValidateIn,
    ValidatorCreatedOut,
    ValidatorIn,
    ValidatorOut,
)
from tickets.service import cards, charging, network, passes, taps, validators
from tickets.service.days import current_service_day
from tickets.service.keys import issuer_keys

router = APIRouter(prefix="/v1/transit", tags=["transit"])
JSON = [Depends(require_json)]
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


# Network ---------------------------------------------------------------------------------------------


@router.get("/keys")
def published_keys() -> KeysOut:
    """The issuer public keys validators verify credentials with, by key id (no sign-in needed)."""
    keys = issuer_keys()
    settings = get_settings()
    return KeysOut(
        keys=[
            IssuerKeyOut(kid=kid, public_key=b64url(raw), active=kid == keys.active)
            for kid, raw in keys.public().items()
        ],
        slot_seconds=settings.transit_slot_seconds,
        clock_skew_seconds=settings.transit_clock_skew_seconds,
    )


def _feed_out(session: DbSession, feed: TransitFeed) -> FeedOut:
    return FeedOut(
        id=feed.id,
        name=feed.name,
        merchant_id=feed.merchant_id,
        currency=feed.currency,
        active=feed.active,
        created_at=feed.created_at,
        counts=network.feed_summary(session, feed),
    )


@router.post(
    "/feeds",
    status_code=201,
    responses={**errors(InvalidFeed, RoleNotAllowed, MerchantNotFound), 201: {"model": FeedOut}},
    # The zip's bytes as they are (Content-Type application/zip or application/octet-stream).
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def import_feed(
    request: Request,
    session: DbSession,
    who: Caller,
    merchant_id: Annotated[str, Query(max_length=40)],
    name: Annotated[str, Query(min_length=1, max_length=200)],
) -> FeedOut:
    """Import a GTFS feed with GTFS-Fares v2 (a zip of .txt files) and make it the active one (admin)."""
    files = network.read_zip(await request.body())
    feed = network.import_feed(session, who, files, name=name, merchant_id=merchant_id)
    return _feed_out(session, feed)


@router.post(
    "/feeds/sample",
    status_code=201,
    dependencies=JSON,
    responses=errors(InvalidFeed, RoleNotAllowed, MerchantNotFound),
)
def import_sample_feed(body: SampleFeedIn, session: DbSession, who: Caller) -> FeedOut:
    """Import the sample Hanoi feed shipped with HanoiPay and make it the active one (admin)."""
    files = network.sample_feed_files()
    feed = network.import_feed(session, who, files, name=body.name, merchant_id=body.merchant_id)
    return _feed_out(session, feed)


@router.get("/feed", responses=errors(NoActiveFeed))
def active_feed(session: DbSession, who: Caller) -> FeedOut:
    """The feed that prices trips now."""
    return _feed_out(session, network.active_feed(session))


@router.get("/products", responses=errors(NoActiveFeed, UnknownCategory))
def products(
    session: DbSession,
    who: Caller,
    category_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ProductOut]:
    """Fare products with their price for a rider category (the default one if none is named)."""
    model = network.fare_model(session)
    category = category_id or model.default_category
    if category not in model.categories:
        raise UnknownCategory(f"The network has no rider category {category!r}.")
    out = []
    for product_id, name in sorted(model.product_names.items()):
        price = model.price(product_id, category)
        rule = model.caps.get(product_id)
        if price is None:
            continue
        out.append(
            ProductOut(
                product_id=product_id,
                name=name,
                amount=price,
                currency=model.currency,
                pass_validity="day"
                if rule and rule.sold_as_pass and rule.validity == "day"
                else ("month" if rule and rule.sold_as_pass else None),
                caps=bool(rule and rule.caps),
            )
        )
    return out


# Cards and devices -----------------------------------------------------------------------------------


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
    body: CardIn, request: Request, session: DbSession, who: Caller, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Open a virtual card paid from the caller's wallet (customers)."""
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: _card_out(session, cards.open_card(session, who, **body.model_dump())),
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


# Passes, trips and what they cost ---------------------------------------------------------------------


@router.post(
    "/cards/{card_id}/passes",
    status_code=201,
    dependencies=JSON,
    responses={
        **errors(
            CardNotFound, CardRevoked, ProductNotFound, NotAPass, InsufficientFunds, IdempotencyKeyReused
        ),
        201: {"model": PassOut},
    },
)
def buy_pass(
    card_id: str,
    body: PassIn,
    request: Request,
    session: DbSession,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Buy a pass (a day ticket, a monthly pass) for the card from its wallet, through the payment core."""
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: PassOut.model_validate(
            passes.buy_pass(session, who, card_id, product_id=body.product_id, starts_on=body.starts_on)
        ),
        status_code=201,
    )


@router.get("/cards/{card_id}/passes", responses=errors(CardNotFound))
def list_passes(card_id: str, session: DbSession, who: Caller) -> list[PassOut]:
    """The card's passes."""
    return [PassOut.model_validate(p) for p in passes.list_passes(session, who, card_id)]


@router.get("/cards/{card_id}/trips", responses=errors(CardNotFound))
def list_trips(
    card_id: str,
    session: DbSession,
    who: Caller,
    service_day: date | None = None,
    limit: Limit = 25,
    starting_after: Cursor = None,
) -> ListOut[TripOut]:
    """The card's trips, newest first: what each cost and why (product, concession, pass, transfer, cap)."""
    card = cards.get_card(session, who, card_id)
    page = paginate(
        session,
        passes.trips_query(card, service_day),
        TransitTrip.id,
        limit=limit,
        starting_after=starting_after,
    )
    return ListOut[TripOut].of(page, TripOut.model_validate)


@router.get("/cards/{card_id}/days", responses=errors(CardNotFound))
def list_days(
    card_id: str, session: DbSession, who: Caller, limit: Annotated[int, Query(ge=1, le=100)] = 31
) -> list[FareDayOut]:
    """The card's service days, newest first: total after capping, charged, pending and owed."""
    card = cards.get_card(session, who, card_id)
    rows = session.scalars(
        select(FareDay).where(FareDay.card_id == card.id).order_by(FareDay.service_day.desc()).limit(limit)
    )
    return [
        FareDayOut.model_validate(day).model_copy(
            update={
                "pending": 0 if day.closed else day.total_amount - day.charged_amount,
                "owed": max(0, day.total_amount - day.charged_amount) if day.closed else 0,
            }
        )
        for day in rows
    ]


@router.get("/cards/{card_id}/caps", responses=errors(CardNotFound, NoActiveFeed))
def cap_progress(
    card_id: str, session: DbSession, who: Caller, service_day: date | None = None
) -> list[CapProgressOut]:
    """Progress towards each cap the card's rides touched: daily caps, and monthly ones ('earn the pass')."""
    card = cards.get_card(session, who, card_id)
    day = service_day or current_service_day(datetime.now(UTC))
    return [CapProgressOut.model_validate(row) for row in passes.cap_progress(session, card, day)]


@router.post(
    "/cards/{card_id}/pay_debt",
    responses={
        **errors(CardNotFound, NoDebt, InsufficientFunds, IdempotencyKeyReused),
        200: {"model": ChargeRunOut},
    },
)
def pay_debt(
    card_id: str, request: Request, session: DbSession, who: Caller, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Pay what the card owes from its wallet, in full; the card leaves the deny list at once."""

    def work() -> ChargeRunOut:
        run = charging.pay_debt(session, who, card_id)
        return ChargeRunOut(days=run.days, charged=run.charged, refunded=run.refunded)

    return run_idempotent(session, who, request, idempotency_key, None, work)


# Validators ------------------------------------------------------------------------------------------


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
