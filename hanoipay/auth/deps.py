"""FastAPI dependencies that say who is calling."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from hanoipay.auth.service import (
    API_KEY_PREFIX,
    Principal,
    principal_from_api_key,
    principal_from_token,
    still_member,
)
from hanoipay.db import SessionLocal
from hanoipay.errors import Forbidden, Unauthorized
from hanoipay.web.session import SAFE_METHODS, is_same_origin, principal_from_cookie

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    title = "Cross-site request refused"


async def current_principal(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller named by the bearer token (a user's JWT or an API key), or by the pages' session cookie.

    Async, because checking a JWT is CPU only: it would cost more to hand it to a thread than to do it.
    What needs the database (an API key, the membership of a merchant's staff) runs in a thread.
    """
    if not token:
        signed_in = principal_from_cookie(request)
        if signed_in is None:
            raise Unauthorized("Send a bearer token: a JWT from /v1/auth/token or an API key.")
        if request.method not in SAFE_METHODS and not is_same_origin(request):
            raise CrossSiteRequest("A signed-in browser may change things only from HanoiPay's own pages.")
        return await _still_member(signed_in)
    if token.startswith(API_KEY_PREFIX):
        return await run_in_threadpool(_principal_from_api_key, token)
    return await _still_member(principal_from_token(token))


async def _still_member(principal: Principal) -> Principal:
    """Refuse a merchant staff token (or session cookie) whose user has left the merchant since."""
    if principal.merchant_id is None:
        return principal
    return await run_in_threadpool(_check_membership, principal)


def _check_membership(principal: Principal) -> Principal:
    with SessionLocal() as session:
        return still_member(session, principal)


def _principal_from_api_key(token: str) -> Principal:
    with SessionLocal() as session:
        return principal_from_api_key(session, token)


Caller = Annotated[Principal, Depends(current_principal)]
