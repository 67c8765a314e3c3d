"""FastAPI dependencies that say who is calling."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from hanoipay.auth.service import (
    API_KEY_PREFIX,
    Principal,
    principal_from_api_key,
    principal_from_token,
    still_member,
)
from hanoipay.db import SessionLocal
from hanoipay.errors import Unauthorized

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def current_principal(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    """The caller named by the bearer token: a user's JWT or a merchant system's API key."""
    if not token:
        raise Unauthorized("Send a bearer token: a JWT from /v1/auth/token or an API key.")
    if token.startswith(API_KEY_PREFIX):
        with SessionLocal() as session:
            return principal_from_api_key(session, token)
    principal = principal_from_token(token)
    if principal.merchant_id is None:
        return principal
    with SessionLocal() as session:
        return still_member(session, principal)


Caller = Annotated[Principal, Depends(current_principal)]
