"""Passwords, tokens and keys: who is calling, and what they may do."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import column, func, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hanoipay.auth.models import ApiKey, User
from hanoipay.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from hanoipay.ids import new_id
from hanoipay.settings import get_settings

API_KEY_PREFIX = "hpk_"
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so a login takes the same time either way
    (made on first use: an Argon2 hash costs a worker a third of a second at start-up)."""
    return _hasher.hash("not a password")


class Role(StrEnum):
    """What a person is to the platform."""

    CUSTOMER = "customer"
    VENDOR = "vendor"
    OPERATOR = "operator"
    FINANCE = "finance"
    ADMIN = "admin"


MERCHANT_ROLES = frozenset({Role.VENDOR, Role.OPERATOR})
STAFF_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Invalid credentials"


class InvalidToken(Unauthorized):
    code = "invalid_token"
    title = "Invalid or expired token"


class ApiKeyRevoked(Unauthorized):
    code = "api_key_revoked"
    title = "API key revoked"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class UnknownMerchant(NotFound):
    """The same condition and code as the payment core's MerchantNotFound, which auth cannot import."""

    code = "merchant_not_found"


class RoleNotAllowed(Forbidden):
    code = "role_not_allowed"
    title = "Not allowed for your role"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user or a merchant system's API key."""

    id: str
    kind: str
    roles: frozenset[str]
    merchant_id: str | None = None

    def has(self, *roles: str) -> bool:
        """True when the principal holds any of `roles`."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_staff(self) -> bool:
        """Finance and admin see every merchant's objects."""
        return self.has(*STAFF_ROLES)

    def require(self, *roles: str) -> None:
        """Refuse unless the principal holds one of `roles`."""
        if not self.has(*roles):
            raise RoleNotAllowed(f"This needs one of the roles: {', '.join(sorted(roles))}.")

    def can_act_for_merchant(self, merchant_id: str | None) -> bool:
        """True when the principal is staff or belongs to the merchant."""
        return self.is_staff or (merchant_id is not None and self.merchant_id == merchant_id)


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def _normalize_email(email: str) -> str:
    return email.strip().lower()


# The merchant table is owned by the payment core; auth only checks that an id names a row in it.
_merchant = table("merchant", column("id"))


def _require_merchant(session: Session, merchant_id: str) -> None:
    if session.scalar(select(_merchant.c.id).where(_merchant.c.id == merchant_id)) is None:
        raise UnknownMerchant(f"No merchant {merchant_id}.")


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    full_name: str,
    roles: list[str],
    merchant_id: str | None = None,
) -> User:
    """Create a user; vendor and operator staff must belong to a merchant."""
    if not roles:
        raise InvalidRequest("A user needs at least one role.")
    unknown = set(roles) - {r.value for r in Role}
    if unknown:
        raise InvalidRequest(f"Unknown roles: {', '.join(sorted(unknown))}.")
    if MERCHANT_ROLES.intersection(roles) and merchant_id is None:
        raise InvalidRequest("Vendor and operator staff need a merchant_id.")
    if merchant_id is not None and not MERCHANT_ROLES.intersection(roles):
        # A user tied to a merchant acts for it (balance, refunds, keys), so only its staff may be.
        raise InvalidRequest("Only vendor and operator staff belong to a merchant; drop merchant_id.")
    if merchant_id is not None:
        _require_merchant(session, merchant_id)
    email = _normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)):
        raise EmailTaken(f"{email} is already registered.")
    user = User(
        id=new_id("usr"),
        email=email,
        full_name=full_name,
        password_hash=hash_password(password),
        roles=sorted(set(roles)),
        merchant_id=merchant_id,
    )
    try:
        with session.begin_nested():  # a concurrent sign-up with the same email loses here, not with a 500
            session.add(user)
    except IntegrityError as error:
        diag = getattr(error.orig, "diag", None)
        if getattr(diag, "constraint_name", None) == "uq_app_user_email":
            raise EmailTaken(f"{email} is already registered.") from None
        raise
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with these credentials, or InvalidCredentials."""
    user = session.scalar(select(User).where(User.email == _normalize_email(email)))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("Wrong email or password.") from None
    if user is None or user.disabled_at is not None:
        raise InvalidCredentials("Wrong email or password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _signing_key() -> tuple[str, str]:
    settings = get_settings()
    kid = settings.jwt_active_kid or next(iter(settings.jwt_keys), None)
    if kid is None or kid not in settings.jwt_keys:
        raise RuntimeError("no JWT signing key configured (HANOIPAY_JWT_KEYS, HANOIPAY_JWT_ACTIVE_KID)")
    return kid, settings.jwt_keys[kid]


def issue_token(
    user: User, *, now: datetime | None = None, lifetime: timedelta | None = None
) -> tuple[str, int]:
    """A signed JWT for the user (short-lived unless `lifetime` says otherwise), and its life in seconds."""
    now = now or datetime.now(UTC)
    lifetime = lifetime or timedelta(minutes=get_settings().access_token_minutes)
    kid, key = _signing_key()
    claims: dict[str, Any] = {
        "sub": user.id,
        "roles": list(user.roles),
        "mer": user.merchant_id,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "iss": "hanoipay",
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid}), int(lifetime.total_seconds())


def principal_from_token(token: str) -> Principal:
    """The principal a JWT names, after checking its key id, signature, issuer and expiry."""
    keys = get_settings().jwt_keys
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in keys:
            raise InvalidToken("The token was signed with an unknown key.")
        claims = jwt.decode(
            token,
            keys[kid],
            algorithms=["HS256"],
            issuer="hanoipay",
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired; sign in again.") from None
    except jwt.PyJWTError:
        raise InvalidToken("The token is malformed or its signature does not verify.") from None
    roles, merchant_id = claims.get("roles"), claims.get("mer")
    if (
        not isinstance(roles, list)
        or not all(isinstance(role, str) for role in roles)
        or not (merchant_id is None or isinstance(merchant_id, str))
    ):
        raise InvalidToken("The token's claims are malformed.")
    return Principal(id=claims["sub"], kind="user", roles=frozenset(roles), merchant_id=merchant_id)


def still_member(session: Session, principal: Principal) -> Principal:
    """The principal of a user's token, refused if the user left its merchant or was disabled since.

    A token lives 15 minutes; an owner removing a cashier must take effect at once, so merchant staff's
    tokens are checked against the user's row on each request.
    """
    if principal.kind != "user" or principal.merchant_id is None:
        return principal
    row = session.execute(select(User.merchant_id, User.disabled_at).where(User.id == principal.id)).first()
    if row is None or row.merchant_id != principal.merchant_id or row.disabled_at is not None:
        raise InvalidToken("You no longer belong to this merchant; sign in again.")
    return principal


def full_names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    """The full name of each user among `ids`, for a page that shows who did what; the ids of systems (a
    job, the parking service) are not users and are left out."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {
        row.id: row.full_name
        for row in session.execute(select(User.id, User.full_name).where(User.id.in_(wanted)))
    }


def _secret_hash(secret: str) -> str:
    # API keys carry 256 random bits, so a fast hash is as safe as a slow one and keeps each request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, who: Principal, *, merchant_id: str, name: str) -> tuple[ApiKey, str]:
    """A new API key for the merchant, and its plaintext, which is never stored or shown again."""
    own_staff = who.merchant_id is not None and who.merchant_id == merchant_id
    if who.kind != "user" or not (own_staff or who.has(Role.ADMIN)):
        raise RoleNotAllowed("Only the merchant's own staff or an admin can create its API keys.")
    _require_merchant(session, merchant_id)
    key_id = new_id("key")
    secret = secrets.token_urlsafe(32)
    plaintext = f"{API_KEY_PREFIX}{key_id}.{secret}"
    key = ApiKey(
        id=key_id,
        merchant_id=merchant_id,
        name=name,
        secret_hash=_secret_hash(secret),
        last4=secret[-4:],
        created_by=who.id,
    )
    session.add(key)
    session.flush()
    return key, plaintext


def principal_from_api_key(session: Session, plaintext: str) -> Principal:
    """The merchant system a live API key belongs to."""
    key_id, _, secret = plaintext.removeprefix(API_KEY_PREFIX).partition(".")
    key = session.get(ApiKey, key_id) if key_id and secret else None
    if key is None or not hmac.compare_digest(key.secret_hash, _secret_hash(secret)):
        raise InvalidToken("Unknown API key.")
    if key.revoked_at is not None:
        raise ApiKeyRevoked("This API key has been revoked.")
    return Principal(
        id=key.id, kind="api_key", roles=frozenset({"merchant_system"}), merchant_id=key.merchant_id
    )


def list_api_keys(session: Session, who: Principal, merchant_id: str) -> list[ApiKey]:
    """The merchant's API keys, newest first."""
    if not who.can_act_for_merchant(merchant_id):
        raise ApiKeyNotFound("No such merchant.")
    return list(
        session.scalars(select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(ApiKey.id.desc()))
    )


def revoke_api_key(session: Session, who: Principal, key_id: str) -> ApiKey:
    """Revoke a key at once; later requests with it are refused."""
    key = session.get(ApiKey, key_id, with_for_update=True)
    if key is None or not who.can_act_for_merchant(key.merchant_id) or who.kind != "user":
        raise ApiKeyNotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = func.now()
        session.flush()
        session.refresh(key)
    return key
