"""The shared pages: sign in, sign out, and switching language."""

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hanoipay.auth.service import InvalidCredentials, authenticate
from hanoipay.db import DbSession
from hanoipay.web import i18n
from hanoipay.web.pages import Page
from hanoipay.web.session import clear_session_cookie, safe_next, set_session_cookie

router = APIRouter(include_in_schema=False)


@router.get("/signin")
def signin_form(page: Page, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    return page.render("signin.html", next=safe_next(next), email="", failed=False)


@router.post("/signin", response_model=None)
def signin(
    page: Page,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the email and password, set the session cookie and go where the person was going."""
    try:
        user = authenticate(session, email, password)
    except InvalidCredentials:
        return page.render("signin.html", status_code=401, next=safe_next(next), email=email, failed=True)
    response = page.redirect(safe_next(next))
    set_session_cookie(page.request, response, user)
    return response


@router.post("/signout")
def signout(page: Page) -> RedirectResponse:
    """Forget this browser's session."""
    response = page.redirect("/signin")
    clear_session_cookie(response)
    return response


@router.get("/language/{language}")
def switch_language(page: Page, language: str, next: str = "/") -> RedirectResponse:
    """Remember the language chosen and go back to the page."""
    response = page.redirect(safe_next(next))
    if language in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, language, max_age=365 * 86400, samesite="lax")
    return response
