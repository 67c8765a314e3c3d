"""Sign-in, users and API keys."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from hanoipay.auth import service
from hanoipay.auth.deps import Caller
from hanoipay.auth.models import User
from hanoipay.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    SignupIn,
    TokenOut,
    UserCreate,
    UserOut,
)
from hanoipay.auth.service import (
    ApiKeyNotFound,
    EmailTaken,
    InvalidCredentials,
    Role,
    RoleNotAllowed,
    UnknownMerchant,
)
from hanoipay.db import DbSession
from hanoipay.errors import InvalidRequest, NotFound
from hanoipay.http import errors, require_json

router = APIRouter(prefix="/v1", tags=["auth"])
json_router = APIRouter(prefix="/v1", tags=["auth"], dependencies=[Depends(require_json)])


@router.post("/auth/token", responses=errors(InvalidCredentials))
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: DbSession) -> TokenOut:
    """Exchange an email (as `username`) and password for a short-lived JWT (OAuth2 password flow)."""
    user = service.authenticate(session, form.username, form.password)
    access_token, expires_in = service.issue_token(user)
    return TokenOut(access_token=access_token, expires_in=expires_in)


@json_router.post("/users/signup", status_code=201, responses=errors(EmailTaken))
def signup(body: SignupIn, session: DbSession) -> UserOut:
    """Register as a customer (driver, rider, parent)."""
    user = service.create_user(
        session, email=body.email, password=body.password, full_name=body.full_name, roles=[Role.CUSTOMER]
    )
    return UserOut.model_validate(user)


@json_router.post(
    "/users", status_code=201, responses=errors(EmailTaken, RoleNotAllowed, UnknownMerchant, InvalidRequest)
)
def create_user(body: UserCreate, session: DbSession, who: Caller) -> UserOut:
    """Create a user with any roles (admin)."""
    who.require(Role.ADMIN)
    return UserOut.model_validate(service.create_user(session, **body.model_dump()))


@router.get("/users/me")
def me(session: DbSession, who: Caller) -> UserOut:
    """The signed-in user."""
    user = session.get(User, who.id) if who.kind == "user" else None
    if user is None:
        raise NotFound("API keys are not users.")
    return UserOut.model_validate(user)


@json_router.post(
    "/merchants/{merchant_id}/api_keys", status_code=201, responses=errors(RoleNotAllowed, UnknownMerchant)
)
def create_api_key(merchant_id: str, body: ApiKeyCreate, session: DbSession, who: Caller) -> ApiKeyCreated:
    """Create an API key for a merchant's system; the secret is shown only in this response."""
    key, plaintext = service.create_api_key(session, who, merchant_id=merchant_id, name=body.name)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), secret=plaintext)


@router.get("/merchants/{merchant_id}/api_keys", responses=errors(ApiKeyNotFound))
def list_api_keys(merchant_id: str, session: DbSession, who: Caller) -> list[ApiKeyOut]:
    """The merchant's API keys (never their secrets)."""
    return [ApiKeyOut.model_validate(k) for k in service.list_api_keys(session, who, merchant_id)]


@router.delete("/api_keys/{key_id}", responses=errors(ApiKeyNotFound))
def revoke_api_key(key_id: str, session: DbSession, who: Caller) -> ApiKeyOut:
    """Revoke an API key at once."""
    return ApiKeyOut.model_validate(service.revoke_api_key(session, who, key_id))
