"""Sign-in, tokens, users, API keys and who may see what, over HTTP against the real app."""

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from hanoipay.auth.service import issue_token
from hanoipay.settings import get_settings
from tests.factories import PASSWORD, auth, make_merchant, make_user, make_wallet, pay

PROBLEM_JSON = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    """The response is a problem+json document with this status and code."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith(f"/{code}")
    assert body["title"]
    assert body["detail"]
    return body


def login(api: httpx.Client, email: str, password: str) -> httpx.Response:
    return api.post("/v1/auth/token", data={"username": email, "password": password})


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(user) -> dict:
    now = datetime.now(UTC)
    return {
        "sub": user.id,
        "roles": list(user.roles),
        "mer": user.merchant_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": "hanoipay",
    }


@pytest.fixture
def jwt_keys() -> Iterator[dict]:
    """The live server's settings (cached by get_settings, shared with the server thread); restored after."""
    settings = get_settings()
    saved_keys, saved_kid = dict(settings.jwt_keys), settings.jwt_active_kid
    try:
        yield settings
    finally:
        settings.jwt_keys = saved_keys
        settings.jwt_active_kid = saved_kid


# Sign-in ---------------------------------------------------------------------------------------------


class TestSignIn:
    def test_password_login_returns_a_jwt_that_works_on_users_me(self, api):
        user = make_user(email="lan.nguyen@example.vn")
        r = login(api, "lan.nguyen@example.vn", PASSWORD)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == get_settings().access_token_minutes * 60
        header = jwt.get_unverified_header(body["access_token"])
        assert header["kid"] == get_settings().jwt_active_kid
        assert header["alg"] == "HS256"
        me = api.get("/v1/users/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == user.id
        assert me.json()["email"] == "lan.nguyen@example.vn"
        assert me.json()["roles"] == ["customer"]
        assert "password_hash" not in me.json()

    def test_email_is_matched_case_insensitively(self, api):
        user = make_user(email="minh@example.vn")
        r = login(api, "  MINH@Example.VN ", PASSWORD)
        assert r.status_code == 200, r.text
        assert api.get("/v1/users/me", headers=bearer(r.json()["access_token"])).json()["id"] == user.id

    def test_wrong_password_and_unknown_email_look_the_same(self, api):
        make_user(email="hoa@example.vn")
        wrong = assert_problem(login(api, "hoa@example.vn", "not the password"), 401, "invalid_credentials")
        unknown = assert_problem(login(api, "nobody@example.vn", PASSWORD), 401, "invalid_credentials")
        assert wrong == unknown  # nothing in the body tells a registered email from an unknown one
        assert login(api, "hoa@example.vn", "not the password").headers["www-authenticate"] == "Bearer"

    def test_login_form_missing_password_is_a_validation_error(self, api):
        r = api.post("/v1/auth/token", data={"username": "hoa@example.vn"})
        body = assert_problem(r, 422, "validation_error")
        assert any(e["loc"][-1] == "password" for e in body["errors"])


# Tokens ----------------------------------------------------------------------------------------------


class TestTokens:
    def test_missing_authorization_is_401_with_www_authenticate(self, api):
        r = api.get("/v1/users/me")
        assert_problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_problem(api.get("/v1/payment_intents"), 401, "unauthorized")

    def test_non_bearer_scheme_is_unauthorized(self, api):
        user = make_user()
        token, _ = issue_token(user)
        r = api.get("/v1/users/me", headers={"Authorization": f"Basic {token}"})
        assert_problem(r, 401, "unauthorized")

    def test_expired_token_is_refused(self, api):
        user = make_user()
        token, lifetime = issue_token(user, now=datetime.now(UTC) - timedelta(minutes=30))
        assert lifetime < 30 * 60  # the token really is past its expiry
        r = api.get("/v1/users/me", headers=bearer(token))
        body = assert_problem(r, 401, "invalid_token")
        assert "expired" in body["detail"]
        assert r.headers["www-authenticate"] == "Bearer"

    def test_token_signed_with_another_key_is_refused(self, api):
        user = make_user()
        kid = get_settings().jwt_active_kid
        forged = jwt.encode(
            claims_of(user), secrets.token_urlsafe(32), algorithm="HS256", headers={"kid": kid}
        )
        assert_problem(api.get("/v1/users/me", headers=bearer(forged)), 401, "invalid_token")

    def test_tampered_payload_is_refused(self, api):
        user = make_user()
        token, _ = issue_token(user)
        assert api.get("/v1/users/me", headers=bearer(token)).status_code == 200
        header, _, signature = token.split(".")
        escalated = {**claims_of(user), "roles": ["admin", "finance"]}
        tampered = f"{header}.{b64url(escalated)}.{signature}"
        assert_problem(api.get("/v1/users/me", headers=bearer(tampered)), 401, "invalid_token")
        assert_problem(api.get("/v1/ledger/entries", headers=bearer(tampered)), 401, "invalid_token")

    def test_alg_none_is_refused(self, api):
        user = make_user(["admin"])
        kid = get_settings().jwt_active_kid
        unsigned = f"{b64url({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64url(claims_of(user))}."
        assert_problem(api.get("/v1/users/me", headers=bearer(unsigned)), 401, "invalid_token")
        via_pyjwt = jwt.encode(claims_of(user), None, algorithm="none", headers={"kid": kid})
        assert_problem(api.get("/v1/users/me", headers=bearer(via_pyjwt)), 401, "invalid_token")

    def test_unknown_kid_is_refused(self, api):
        user = make_user()
        key = get_settings().jwt_keys[get_settings().jwt_active_kid]
        token = jwt.encode(claims_of(user), key, algorithm="HS256", headers={"kid": "retired-kid"})
        body = assert_problem(api.get("/v1/users/me", headers=bearer(token)), 401, "invalid_token")
        assert "unknown key" in body["detail"]

    @pytest.mark.parametrize("kid", [None, ["test-1"], {"k": 1}, 7, ""])
    def test_odd_kid_values_are_refused_not_crashed(self, api, kid):
        user = make_user()
        key = get_settings().jwt_keys[get_settings().jwt_active_kid]
        header = {"alg": "HS256", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
        # Signed by hand with the real key: PyJWT will not encode a non-string kid.
        signing_input = f"{b64url(header)}.{b64url(claims_of(user))}"
        mac = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        assert_problem(api.get("/v1/users/me", headers=bearer(token)), 401, "invalid_token")

    def test_token_with_wrong_issuer_or_no_expiry_is_refused(self, api):
        user = make_user()
        kid = get_settings().jwt_active_kid
        key = get_settings().jwt_keys[kid]
        other_issuer = jwt.encode(
            {**claims_of(user), "iss": "evil"}, key, algorithm="HS256", headers={"kid": kid}
        )
        assert_problem(api.get("/v1/users/me", headers=bearer(other_issuer)), 401, "invalid_token")
        no_exp = {k: v for k, v in claims_of(user).items() if k != "exp"}
        forever = jwt.encode(no_exp, key, algorithm="HS256", headers={"kid": kid})
        assert_problem(api.get("/v1/users/me", headers=bearer(forever)), 401, "invalid_token")

    @pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "x" * 5000])
    def test_garbage_tokens_are_refused(self, api, token):
        assert_problem(api.get("/v1/users/me", headers=bearer(token)), 401, "invalid_token")

    def test_signed_token_with_malformed_claims_is_refused_not_crashed(self, api, jwt_keys):
        # Only a key holder can sign these, but a bug in an issuer must not turn into a 500.
        user = make_user()
        kid = jwt_keys.jwt_active_kid
        key = jwt_keys.jwt_keys[kid]
        for claims in (
            {k: v for k, v in claims_of(user).items() if k != "roles"},
            {**claims_of(user), "roles": "admin"},
            {**claims_of(user), "sub": 12},
        ):
            token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
            assert_problem(api.get("/v1/users/me", headers=bearer(token)), 401, "invalid_token")


class TestKeyRotation:
    def test_token_signed_by_the_old_kid_still_verifies_after_rotation(self, api, jwt_keys):
        user = make_user()
        old_key, new_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        jwt_keys.jwt_keys = {"2025-old": old_key}
        jwt_keys.jwt_active_kid = "2025-old"
        old_token, _ = issue_token(user)
        assert jwt.get_unverified_header(old_token)["kid"] == "2025-old"
        assert api.get("/v1/users/me", headers=bearer(old_token)).status_code == 200

        # Rotate: a new active key, the old one kept for verification only.
        jwt_keys.jwt_keys = {"2025-old": old_key, "2026-new": new_key}
        jwt_keys.jwt_active_kid = "2026-new"
        new_token, _ = issue_token(user)
        assert jwt.get_unverified_header(new_token)["kid"] == "2026-new"
        jwt.decode(new_token, new_key, algorithms=["HS256"], issuer="hanoipay")  # signed with the new key
        for token in (old_token, new_token):
            r = api.get("/v1/users/me", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert r.json()["id"] == user.id
        # Logging in now issues tokens with the new kid.
        r = login(api, user.email, PASSWORD)
        assert jwt.get_unverified_header(r.json()["access_token"])["kid"] == "2026-new"

        # Retire the old key: its tokens stop working, the new ones keep working.
        jwt_keys.jwt_keys = {"2026-new": new_key}
        assert_problem(api.get("/v1/users/me", headers=bearer(old_token)), 401, "invalid_token")
        assert api.get("/v1/users/me", headers=bearer(new_token)).status_code == 200

    def test_an_old_token_cannot_be_replayed_under_the_new_kid(self, api, jwt_keys):
        user = make_user()
        old_key, new_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        jwt_keys.jwt_keys = {"old": old_key, "new": new_key}
        jwt_keys.jwt_active_kid = "old"
        token, _ = issue_token(user)
        _, payload, signature = token.split(".")
        relabeled = f"{b64url({'alg': 'HS256', 'typ': 'JWT', 'kid': 'new'})}.{payload}.{signature}"
        assert_problem(api.get("/v1/users/me", headers=bearer(relabeled)), 401, "invalid_token")


# Users -----------------------------------------------------------------------------------------------


def signup(api: httpx.Client, email: str, password: str = PASSWORD, **extra) -> httpx.Response:
    return api.post(
        "/v1/users/signup", json={"email": email, "password": password, "full_name": "Trần Thị Mai", **extra}
    )


class TestUsers:
    def test_signup_creates_a_customer_who_can_sign_in(self, api):
        r = signup(api, "Mai.Tran@Example.vn")
        assert r.status_code == 201, r.text
        user = r.json()
        assert user["roles"] == ["customer"]
        assert user["merchant_id"] is None
        assert user["email"] == "mai.tran@example.vn"
        assert user["id"].startswith("usr_")
        assert "password" not in user
        assert "password_hash" not in user
        token = login(api, "mai.tran@example.vn", PASSWORD).json()["access_token"]
        assert api.get("/v1/users/me", headers=bearer(token)).json()["id"] == user["id"]

    def test_duplicate_email_is_refused_case_insensitively(self, api):
        assert signup(api, "duc@example.vn").status_code == 201
        body = assert_problem(signup(api, "DUC@example.VN"), 409, "email_taken")
        assert "duc@example.vn" in body["detail"]

    def test_concurrent_signups_with_one_email_create_one_user(self, api, live_server):
        results: list[int] = []

        def attempt() -> None:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                results.append(signup(client, "race@example.vn").status_code)

        threads = [threading.Thread(target=attempt) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [201] + [409] * 5, results

    def test_short_password_is_a_validation_error(self, api):
        body = assert_problem(signup(api, "short@example.vn", password="short"), 422, "validation_error")
        assert any(e["loc"] == ["body", "password"] for e in body["errors"])
        assert login(api, "short@example.vn", "short").status_code == 401  # nothing was created

    def test_signup_refuses_bad_email_and_extra_fields(self, api):
        body = assert_problem(signup(api, "not-an-email"), 422, "validation_error")
        assert any(e["loc"] == ["body", "email"] for e in body["errors"])
        body = assert_problem(signup(api, "role@example.vn", roles=["admin"]), 422, "validation_error")
        assert any(e["loc"] == ["body", "roles"] for e in body["errors"])  # signup cannot pick roles

    def test_only_admins_create_users(self, api):
        customer = make_user()
        body = {"email": "x@example.vn", "password": PASSWORD, "full_name": "X", "roles": ["finance"]}
        assert_problem(api.post("/v1/users", json=body, headers=auth(customer)), 403, "role_not_allowed")
        vendor = make_user(["vendor"], merchant_id=make_merchant().id)
        assert_problem(api.post("/v1/users", json=body, headers=auth(vendor)), 403, "role_not_allowed")
        assert_problem(api.post("/v1/users", json=body), 401, "unauthorized")
        assert login(api, "x@example.vn", PASSWORD).status_code == 401  # none was created

    def test_admin_creates_vendor_staff_tied_to_a_merchant(self, api):
        admin, merchant = make_user(["admin"]), make_merchant()
        r = api.post(
            "/v1/users",
            json={
                "email": "stall12@example.vn",
                "password": PASSWORD,
                "full_name": "Quầy 12",
                "roles": ["vendor"],
                "merchant_id": merchant.id,
            },
            headers=auth(admin),
        )
        assert r.status_code == 201, r.text
        assert r.json()["roles"] == ["vendor"]
        assert r.json()["merchant_id"] == merchant.id
        token = login(api, "stall12@example.vn", PASSWORD).json()["access_token"]
        assert jwt.decode(token, options={"verify_signature": False})["mer"] == merchant.id
        balance = api.get(f"/v1/merchants/{merchant.id}/balance", headers=bearer(token))
        assert balance.status_code == 200, balance.text
        other = make_merchant(name="Another stall")
        assert_problem(
            api.get(f"/v1/merchants/{other.id}/balance", headers=bearer(token)), 404, "merchant_not_found"
        )

    def test_vendor_without_merchant_is_refused(self, api):
        admin = make_user(["admin"])
        body = {"email": "v@example.vn", "password": PASSWORD, "full_name": "V", "roles": ["vendor"]}
        problem = assert_problem(
            api.post("/v1/users", json=body, headers=auth(admin)), 422, "invalid_request"
        )
        assert "merchant_id" in problem["detail"]
        assert login(api, "v@example.vn", PASSWORD).status_code == 401

    def test_unknown_role_is_refused(self, api):
        admin = make_user(["admin"])
        body = {"email": "r@example.vn", "password": PASSWORD, "full_name": "R", "roles": ["superuser"]}
        problem = assert_problem(
            api.post("/v1/users", json=body, headers=auth(admin)), 422, "invalid_request"
        )
        assert "superuser" in problem["detail"]

    def test_vendor_for_an_unknown_merchant_is_refused_not_crashed(self, api):
        admin = make_user(["admin"])
        body = {
            "email": "ghost@example.vn",
            "password": PASSWORD,
            "full_name": "Ghost",
            "roles": ["vendor"],
            "merchant_id": "mer_DOESNOTEXIST",
        }
        problem = assert_problem(
            api.post("/v1/users", json=body, headers=auth(admin)), 404, "merchant_not_found"
        )
        assert "mer_DOESNOTEXIST" in problem["detail"]
        assert login(api, "ghost@example.vn", PASSWORD).status_code == 401

    def test_merchant_id_is_refused_for_roles_that_are_not_merchant_staff(self, api):
        # A "customer" tied to a merchant would act for that merchant (its balance, refunds) without the role.
        admin, merchant = make_user(["admin"]), make_merchant()
        body = {
            "email": "cust@example.vn",
            "password": PASSWORD,
            "full_name": "C",
            "roles": ["customer"],
            "merchant_id": merchant.id,
        }
        problem = assert_problem(
            api.post("/v1/users", json=body, headers=auth(admin)), 422, "invalid_request"
        )
        assert "merchant_id" in problem["detail"]

    def test_api_key_is_not_a_user(self, api):
        merchant = make_merchant()
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        key = create_key(api, vendor, merchant.id)["secret"]
        assert_problem(api.get("/v1/users/me", headers=bearer(key)), 404, "not_found")


# API keys --------------------------------------------------------------------------------------------


def create_key(api: httpx.Client, user, merchant_id: str, name: str = "School SIS") -> dict:
    r = api.post(f"/v1/merchants/{merchant_id}/api_keys", json={"name": name}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


class TestApiKeys:
    def test_secret_is_shown_once_and_works_for_its_merchant_only(self, api):
        a, b = make_merchant(name="Trường A"), make_merchant(name="Trường B")
        staff_a = make_user(["vendor"], merchant_id=a.id)
        created = create_key(api, staff_a, a.id)
        secret = created["secret"]
        assert secret.startswith("hpk_")
        assert created["merchant_id"] == a.id
        assert created["last4"] == secret[-4:]
        assert created["revoked_at"] is None

        listed = api.get(f"/v1/merchants/{a.id}/api_keys", headers=auth(staff_a))
        assert listed.status_code == 200, listed.text
        assert [k["id"] for k in listed.json()] == [created["id"]]
        assert all("secret" not in k for k in listed.json())
        assert secret not in listed.text
        assert secret.partition(".")[2] not in listed.text

        own = api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(secret))
        assert own.status_code == 200, own.text
        assert own.json()["account_id"] == a.account_id
        assert_problem(
            api.get(f"/v1/merchants/{b.id}/balance", headers=bearer(secret)), 404, "merchant_not_found"
        )
        assert_problem(
            api.get(f"/v1/merchants/{b.id}/ledger_entries", headers=bearer(secret)), 404, "merchant_not_found"
        )

    def test_staff_of_another_merchant_cannot_create_list_or_revoke(self, api):
        a, b = make_merchant(name="A"), make_merchant(name="B")
        staff_a = make_user(["vendor"], merchant_id=a.id)
        staff_b = make_user(["vendor"], merchant_id=b.id)
        key = create_key(api, staff_a, a.id)
        r = api.post(f"/v1/merchants/{a.id}/api_keys", json={"name": "mine now"}, headers=auth(staff_b))
        assert_problem(r, 403, "role_not_allowed")
        assert_problem(
            api.get(f"/v1/merchants/{a.id}/api_keys", headers=auth(staff_b)), 404, "api_key_not_found"
        )
        assert_problem(
            api.delete(f"/v1/api_keys/{key['id']}", headers=auth(staff_b)), 404, "api_key_not_found"
        )
        # A's key was not revoked by B's attempt, and A still has exactly one key.
        assert api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(key["secret"])).status_code == 200
        assert len(api.get(f"/v1/merchants/{a.id}/api_keys", headers=auth(staff_a)).json()) == 1

    def test_customers_cannot_create_keys(self, api):
        a = make_merchant()
        r = api.post(f"/v1/merchants/{a.id}/api_keys", json={"name": "x"}, headers=auth(make_user()))
        assert_problem(r, 403, "role_not_allowed")

    def test_an_api_key_cannot_mint_or_revoke_keys(self, api):
        a = make_merchant()
        staff_a = make_user(["vendor"], merchant_id=a.id)
        key = create_key(api, staff_a, a.id)
        r = api.post(f"/v1/merchants/{a.id}/api_keys", json={"name": "child"}, headers=bearer(key["secret"]))
        assert_problem(r, 403, "role_not_allowed")
        assert_problem(
            api.delete(f"/v1/api_keys/{key['id']}", headers=bearer(key["secret"])), 404, "api_key_not_found"
        )
        assert api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(key["secret"])).status_code == 200

    def test_revoked_key_is_refused(self, api):
        a = make_merchant()
        staff_a = make_user(["vendor"], merchant_id=a.id)
        key = create_key(api, staff_a, a.id)
        assert api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(key["secret"])).status_code == 200
        r = api.delete(f"/v1/api_keys/{key['id']}", headers=auth(staff_a))
        assert r.status_code == 200, r.text
        assert r.json()["revoked_at"] is not None
        assert "secret" not in r.json()
        refused = api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(key["secret"]))
        assert_problem(refused, 401, "api_key_revoked")
        assert refused.headers["www-authenticate"] == "Bearer"
        # Revoking again is harmless and keeps the first revocation time.
        again = api.delete(f"/v1/api_keys/{key['id']}", headers=auth(staff_a))
        assert again.status_code == 200
        assert again.json()["revoked_at"] == r.json()["revoked_at"]

    @pytest.mark.parametrize(
        "secret",
        ["hpk_", "hpk_garbage", "hpk_key_01ABC.notthesecret", "hpk_.x", "hpk_" + "x" * 300 + ".y"],
    )
    def test_garbage_api_key_is_invalid_token(self, api, secret):
        a = make_merchant()
        assert_problem(api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(secret)), 401, "invalid_token")

    def test_right_key_id_with_wrong_secret_is_refused(self, api):
        a = make_merchant()
        key = create_key(api, make_user(["vendor"], merchant_id=a.id), a.id)
        key_id = key["secret"].removeprefix("hpk_").partition(".")[0]
        assert key_id == key["id"]
        forged = f"hpk_{key_id}.{secrets.token_urlsafe(32)}"
        assert_problem(api.get(f"/v1/merchants/{a.id}/balance", headers=bearer(forged)), 401, "invalid_token")

    def test_admin_creating_a_key_for_an_unknown_merchant_is_refused_not_crashed(self, api):
        admin = make_user(["admin"])
        r = api.post("/v1/merchants/mer_DOESNOTEXIST/api_keys", json={"name": "x"}, headers=auth(admin))
        assert_problem(r, 404, "merchant_not_found")

    def test_finance_cannot_mint_a_merchants_credentials(self, api):
        a = make_merchant()
        r = api.post(
            f"/v1/merchants/{a.id}/api_keys", json={"name": "x"}, headers=auth(make_user(["finance"]))
        )
        assert_problem(r, 403, "role_not_allowed")
        admin_key = create_key(api, make_user(["admin"]), a.id)
        assert admin_key["secret"].startswith("hpk_")


# Who sees what ---------------------------------------------------------------------------------------


class TestIsolation:
    def test_payment_intents_are_visible_only_to_their_principals(self, api):
        a, b = make_merchant(name="A"), make_merchant(name="B")
        x, y = make_user(), make_user()
        wallet_x = make_wallet(x, balance=50_000)
        make_wallet(y, balance=50_000)
        r = pay(api, x, a, wallet_x, 12_000)
        assert r.status_code == 201, r.text
        intent_id = r.json()["id"]
        vendor_a = make_user(["vendor"], merchant_id=a.id)
        vendor_b = make_user(["vendor"], merchant_id=b.id)
        finance = make_user(["finance"])

        for who in (x, vendor_a, finance):
            seen = api.get(f"/v1/payment_intents/{intent_id}", headers=auth(who))
            assert seen.status_code == 200, (who.roles, seen.text)
            assert seen.json()["amount"] == 12_000
            listed = api.get("/v1/payment_intents", headers=auth(who)).json()["data"]
            assert intent_id in [i["id"] for i in listed], who.roles

        for who in (y, vendor_b):
            assert_problem(
                api.get(f"/v1/payment_intents/{intent_id}", headers=auth(who)),
                404,
                "payment_intent_not_found",
            )
            listed = api.get("/v1/payment_intents", headers=auth(who))
            assert listed.status_code == 200
            assert intent_id not in [i["id"] for i in listed.json()["data"]]
            # Naming the merchant in the filter does not widen what the caller sees.
            filtered = api.get("/v1/payment_intents", params={"merchant_id": a.id}, headers=auth(who))
            assert filtered.json()["data"] == []
            assert_problem(
                api.get(f"/v1/payment_intents/{intent_id}/refunds", headers=auth(who)),
                404,
                "payment_intent_not_found",
            )

        # Neither an outsider nor another merchant can cancel or refund it.
        r = api.post("/v1/refunds", json={"payment_intent": intent_id}, headers=auth(vendor_b))
        assert_problem(r, 404, "payment_intent_not_found")
        r = api.post("/v1/refunds", json={"payment_intent": intent_id}, headers=auth(y))
        assert_problem(r, 404, "payment_intent_not_found")
        assert api.get(f"/v1/payment_intents/{intent_id}", headers=auth(x)).json()["amount_refunded"] == 0

    def test_merchant_api_key_sees_its_merchants_intents_only(self, api):
        a, b = make_merchant(name="A"), make_merchant(name="B")
        x = make_user()
        wallet_x = make_wallet(x, balance=50_000)
        to_a = pay(api, x, a, wallet_x, 1_000).json()["id"]
        to_b = pay(api, x, b, wallet_x, 2_000).json()["id"]
        key_a = create_key(api, make_user(["vendor"], merchant_id=a.id), a.id)["secret"]
        assert api.get(f"/v1/payment_intents/{to_a}", headers=bearer(key_a)).status_code == 200
        assert_problem(
            api.get(f"/v1/payment_intents/{to_b}", headers=bearer(key_a)), 404, "payment_intent_not_found"
        )
        listed = [i["id"] for i in api.get("/v1/payment_intents", headers=bearer(key_a)).json()["data"]]
        assert listed == [to_a]

    def test_wallets_are_private_to_their_owner(self, api):
        x, y = make_user(), make_user()
        wallet_x = make_wallet(x, balance=10_000)
        own = api.get(f"/v1/wallets/{wallet_x.id}", headers=auth(x))
        assert own.status_code == 200
        assert own.json()["available"] == 10_000
        assert_problem(api.get(f"/v1/wallets/{wallet_x.id}", headers=auth(y)), 404, "wallet_not_found")
        assert [w["id"] for w in api.get("/v1/wallets", headers=auth(y)).json()] == []
        vendor = make_user(["vendor"], merchant_id=make_merchant().id)
        assert_problem(api.get(f"/v1/wallets/{wallet_x.id}", headers=auth(vendor)), 404, "wallet_not_found")

    def test_ledger_entries_are_for_finance_only(self, api):
        a = make_merchant()
        x = make_user()
        wallet_x = make_wallet(x, balance=10_000)
        intent_id = pay(api, x, a, wallet_x, 4_000).json()["id"]
        assert_problem(api.get("/v1/ledger/entries", headers=auth(x)), 403, "role_not_allowed")
        vendor_a = make_user(["vendor"], merchant_id=a.id)
        assert_problem(api.get("/v1/ledger/entries", headers=auth(vendor_a)), 403, "role_not_allowed")
        assert_problem(api.get("/v1/ledger/accounts", headers=auth(x)), 403, "role_not_allowed")
        r = api.get("/v1/ledger/entries", headers=auth(make_user(["finance"])))
        assert r.status_code == 200, r.text
        entries = r.json()["data"]
        assert intent_id in [e["intent_id"] for e in entries]
        for entry in entries:
            assert sum(line["amount"] for line in entry["lines"]) == 0
