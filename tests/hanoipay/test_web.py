"""The pages' shared layer: sign-in with an HttpOnly cookie, languages, the CSP, cross-site posts refused."""

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import screenshot, sign_in
from tests.factories import PASSWORD, make_user

ROOT = Path(__file__).resolve().parents[2]


def test_a_person_signs_in_sees_the_home_page_and_signs_out(page, live_server):
    user = make_user(email="lan@example.vn")
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.get_by_role("link", name="Đăng nhập").first.is_visible()
    screenshot(page, "shared-home-visitor")
    page.goto("/signin")
    screenshot(page, "shared-signin")
    sign_in(page, user.email, PASSWORD)
    cookie = next(c for c in page.context.cookies() if c["name"] == "hanoipay_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("hanoipay_session") == -1
    me = page.evaluate("HanoiPay.api('GET', '/v1/users/me')")
    assert me["email"] == "lan@example.vn"
    screenshot(page, "shared-home-signed-in")
    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url("**/signin")
    assert not [c for c in page.context.cookies() if c["name"] == "hanoipay_session"]


def test_a_wrong_password_is_said_in_the_pages_language_and_sets_no_cookie(page):
    make_user(email="binh@example.vn")
    page.goto("/signin?lang=en")
    page.get_by_label("Email").fill("binh@example.vn")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    assert page.locator("html").get_attribute("lang") == "en"
    assert not [c for c in page.context.cookies() if c["name"] == "hanoipay_session"]
    screenshot(page, "shared-signin-failed-en")


def test_the_language_switch_is_remembered(page):
    page.goto("/")
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto("/signin")
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_pages_send_a_strict_content_security_policy(api):
    r = api.get("/signin")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.get("/healthz").headers


def test_a_cross_site_form_post_is_refused(api):
    user = make_user(email="chi@example.vn")
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    r = api.post("/signin", data={"email": user.email, "password": PASSWORD}, headers=evil)
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    signed_in = api.post("/signin", data={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code == 303
    cookie = {"Cookie": f"hanoipay_session={signed_in.cookies['hanoipay_session']}"}
    # The API takes the cookie from the app's own pages, and refuses it from another site.
    assert api.get("/v1/users/me", headers=cookie).json()["email"] == "chi@example.vn"
    body = {"currency": "VND"}
    refused = api.post("/v1/wallets", json=body, headers={**cookie, **evil})
    assert (refused.status_code, refused.json()["code"]) == (403, "cross_site_request")
    own = {"Origin": str(api.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert api.post("/v1/wallets", json=body, headers={**cookie, **own}).status_code == 201


def test_a_page_that_needs_signing_in_sends_the_visitor_there_and_back(api):
    r = api.get("/signin", params={"next": "https://evil.example/"})
    assert 'name="next" value="/"' in r.text
    assert api.get("/v1/users/me").status_code == 401


def test_a_browser_gets_pages_for_errors_and_the_api_gets_problems(api):
    r = api.get("/no/such/page", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy trang" in r.text
    assert (
        api.get("/v1/no/such", headers={"Accept": "text/html"})
        .headers["content-type"]
        .startswith("application/problem+json")
    )


def test_every_message_of_the_pages_has_a_vietnamese_translation():
    """Every `_()` message in every template has a Vietnamese translation in some catalog."""
    translated: dict[str, str] = {}
    for po_file in ROOT.glob("*/locale/vi/LC_MESSAGES/*.po"):
        translated |= {m.id: m.string for m in read_po(io.BytesIO(po_file.read_bytes())) if m.id}
    for po_file in (ROOT / "hanoipay" / "web" / "locale").glob("vi/LC_MESSAGES/*.po"):
        translated |= {m.id: m.string for m in read_po(io.BytesIO(po_file.read_bytes())) if m.id}
    missing = []
    for package in [ROOT / "hanoipay" / "web", *[p.parent for p in ROOT.glob("*/templates")]]:
        method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
        for filename, lineno, message, _comments, _context in extract_from_dir(str(package), method_map):
            text = message if isinstance(message, str) else message[0]
            if not translated.get(text):
                missing.append(f"{package.name}/{filename}:{lineno}: {text}")
    assert missing == [], "untranslated: " + "; ".join(missing)
