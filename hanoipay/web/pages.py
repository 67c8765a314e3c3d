"""What a page endpoint gets: the request's language, who is signed in, and `render`.

    @page_router.get("/parking")
    def driver(page: SignedInPage, session: DbSession) -> HTMLResponse:
        page.require(Role.CUSTOMER)
        return page.render("parking/driver.html", zones=service.list_zones(session))

`Page` lets anyone in; `SignedInPage` sends a visitor to the sign-in page first and back afterwards. A
form post (any method but GET/HEAD) from another site is refused before the endpoint runs. A refusal
(`HanoiPayError`) raised while serving a page is shown as a page, not as problem+json.
"""

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from hanoipay.auth.service import Principal, RoleNotAllowed
from hanoipay.errors import PAGE_FLAG, Forbidden
from hanoipay.web import i18n
from hanoipay.web.session import SAFE_METHODS, is_same_origin, principal_from_cookie
from hanoipay.web.templates import environment


class CrossSiteForm(Forbidden):
    code = "cross_site_request"
    title = "Cross-site request refused"


class SignInRequired(Exception):
    """Raised by `SignedInPage` for a visitor; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class PageContext:
    """One page request: its language, who is signed in (if anyone), and how to answer with a page."""

    request: Request
    language: str
    who: Principal | None

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The template rendered in the request's language, with `who`, `language` and `path` available."""
        i18n.use_language(self.language)
        html = (
            environment()
            .get_template(template)
            .render(who=self.who, language=self.language, path=self.request.url.path, **context)
        )
        response = HTMLResponse(html, status_code=status_code)
        if self.request.query_params.get("lang") in i18n.LANGUAGES:
            response.set_cookie(i18n.LANG_COOKIE, self.language, max_age=365 * 86400, samesite="lax")
        return response

    def redirect(self, url: str) -> RedirectResponse:
        """See other: go to `url` after a form post."""
        return RedirectResponse(url, status_code=303)

    def require(self, *roles: str) -> Principal:
        """The signed-in principal, if it holds one of `roles`; RoleNotAllowed (a 403 page) otherwise."""
        if self.who is None:
            raise SignInRequired(self.request.url.path)
        self.who.require(*roles)
        return self.who

    def gettext(self, message: str) -> str:
        """`message` in the request's language (for text built in Python, such as a flash message)."""
        i18n.use_language(self.language)
        return i18n.gettext(message)


def page_context(request: Request) -> PageContext:
    """The page request; refuses a cross-site form post."""
    request.scope[PAGE_FLAG] = True
    language = i18n.choose_language(request)
    i18n.use_language(language)
    if request.method not in SAFE_METHODS and not is_same_origin(request):
        raise CrossSiteForm("This form can only be sent from HanoiPay's own pages.")
    return PageContext(request, language, principal_from_cookie(request))


def signed_in_page_context(page: Annotated[PageContext, Depends(page_context)]) -> PageContext:
    """The page request of a signed-in person; a visitor is sent to sign in first."""
    if page.who is None:
        target = page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else "")
        raise SignInRequired(target)
    return page


Page = Annotated[PageContext, Depends(page_context)]
SignedInPage = Annotated[PageContext, Depends(signed_in_page_context)]


def sign_in_redirect(next_path: str) -> RedirectResponse:
    """Where a visitor goes to sign in, and comes back from."""
    return RedirectResponse(f"/signin?next={quote(next_path, safe='/')}", status_code=303)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A refusal shown as a page, in the request's language."""
    language = i18n.choose_language(request)
    i18n.use_language(language)
    html = (
        environment()
        .get_template("error.html")
        .render(
            who=principal_from_cookie(request),
            language=language,
            path=request.url.path,
            status=status,
            title=title,
            detail=detail,
            role_refusal=status == RoleNotAllowed.status,
        )
    )
    return HTMLResponse(html, status_code=status)
