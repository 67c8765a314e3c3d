"""Signing in on the pages: a short JWT in an HttpOnly, SameSite=Strict cookie; cross-site posts refused.

The cookie carries the same JWT the API issues (with `HANOIPAY_WEB_SESSION_HOURS` of life instead of
minutes), so a page's script may call the JSON API with the cookie instead of a bearer token
(`hanoipay.auth.deps` accepts it). A request that changes something with the cookie must come from the
app's own pages: browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`), and anything
cross-site is refused before it reaches an endpoint.
"""

from datetime import timedelta
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from hanoipay.auth.models import User
from hanoipay.auth.service import InvalidToken, Principal, issue_token, principal_from_token
from hanoipay.settings import get_settings

COOKIE = "hanoipay_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def set_session_cookie(request: Request, response: Response, user: User) -> None:
    """Sign the user in on this browser."""
    lifetime = timedelta(hours=get_settings().web_session_hours)
    token, seconds = issue_token(user, lifetime=lifetime)
    response.set_cookie(
        COOKIE,
        token,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    """Sign this browser out."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def principal_from_cookie(request: Request) -> Principal | None:
    """Who the session cookie names, or None when there is none or it no longer verifies."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return principal_from_token(token)
    except InvalidToken:
        return None


def is_same_origin(request: Request) -> bool:
    """True unless the browser says the request comes from another site (a cross-site form or script)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return fetch_site is not None or origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def safe_next(target: str | None) -> str:
    """A place to go after signing in: a path of this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
