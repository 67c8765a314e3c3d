"""The pages' composition: templates, translations and static files of every domain, and the home page."""

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from city.domains import DOMAINS
from hanoipay.db import DbSession
from hanoipay.domains import PageLink
from hanoipay.errors import render_refusals_as_pages
from hanoipay.web import i18n, templates
from hanoipay.web.pages import Page, SignInRequired, error_page, sign_in_redirect
from hanoipay.web.routes import router as shared_pages

WEB = Path(__file__).resolve().parent.parent / "hanoipay" / "web"
home = APIRouter(include_in_schema=False)


def page_links() -> list[PageLink]:
    """Every domain's pages, in the order of the domains."""
    return [link for domain in DOMAINS for link in domain.pages]


@home.get("/")
def home_page(page: Page, session: DbSession) -> HTMLResponse:
    """What the signed-in person can do here; for a visitor, what HanoiPay is and a way to sign in."""
    who = page.who
    links = [
        link
        for link in page_links()
        if who is not None
        and (not link.roles or who.has(*link.roles))
        and (link.shown_to is None or link.shown_to(session, who))
    ]
    return page.render("home.html", links=links)


def install_pages(app: FastAPI) -> None:
    """Templates, catalogs, static files, the shared pages and the home page."""
    templates.configure({d.name: d.templates for d in DOMAINS if d.templates is not None})
    i18n.load_catalogs([WEB / "locale", *(d.locale for d in DOMAINS if d.locale is not None)])
    app.mount("/static/app", StaticFiles(directory=WEB / "static"), name="static-app")
    for domain in DOMAINS:
        if domain.static is not None:
            app.mount(
                f"/static/{domain.name}", StaticFiles(directory=domain.static), name=f"static-{domain.name}"
            )
    app.include_router(shared_pages)
    app.include_router(home)
    render_refusals_as_pages(_refusal_page)

    @app.exception_handler(SignInRequired)
    async def _sign_in_first(request: Request, exc: SignInRequired) -> RedirectResponse:
        return sign_in_redirect(exc.next_path)


def _refusal_page(request: Request, status: int, title: str, detail: str) -> Response:
    i18n.use_language(i18n.choose_language(request))
    titles = {404: "Page not found", 403: "Not allowed", 500: "Something went wrong"}
    return error_page(request, status, i18n.gettext(titles.get(status, title)), detail)
