"""FastAPI dependencies that say who is calling."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from hanoipay.auth.service import API_KEY_PREFIX, Principal, principal_from_api_key, principal_from_token
from hanoipay.db import SessionLocal
from hanoipay.errors import Forbidden, Unauthorized
from hanoipay.web.session import SAFE_METHODS, is_same_origin, principal_from_cookie

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    title = "Cross-site request refused"


def current_principal(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    """The caller named by the bearer token (a user's JWT or an API key), or by the pages' session cookie."""
    if not token:
        signed_in = principal_from_cookie(request)
        if signed_in is None:
            raise Unauthorized("Send a bearer token: a JWT from /v1/auth/token or an API key.")
        if request.method not in SAFE_METHODS and not is_same_origin(request):
            raise CrossSiteRequest("A signed-in browser may change things only from HanoiPay's own pages.")
        return signed_in
    if token.startswith(API_KEY_PREFIX):
        with SessionLocal() as session:
            return principal_from_api_key(session, token)
    return principal_from_token(token)


Caller = Annotated[Principal, Depends(current_principal)]
