"""Merchant onboarding: registration, bank account, verification, staff roles and invitations."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from hanoipay.db import job_session
from merchants.models import MerchantProfile
from tests.factories import PASSWORD, auth, make_merchant, make_staff, make_user, member_id

BODY = {
    "name": "Bún chả Hàng Mành",
    "kind": "market_vendor",
    "fee_plan": "market_stall",
    "payout_bank_bin": "970436",
    "payout_account": "0011002233445",
    "payout_account_name": "Nguyễn Thị Lan",
}


def profiles() -> int:
    with job_session() as session:
        return int(session.scalar(select(func.count()).select_from(MerchantProfile)) or 0)


class TestRegistration:
    def test_admin_registers_an_unverified_merchant_with_the_holder_name_as_banks_print_it(self, api):
        admin = make_user(["admin"])
        r = api.post("/v1/merchants", json=BODY, headers=auth(admin))
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["kind"], body["fee_plan"], body["fee_bps"]) == ("market_vendor", "market_stall", 50)
        assert body["payout_account_name"] == "NGUYEN THI LAN"
        assert (body["payout_bank"], body["verification"]) == ("Vietcombank", "unverified")
        assert api.get(f"/v1/merchants/{body['id']}", headers=auth(admin)).json() == body

    def test_a_retry_with_the_same_key_registers_once_even_at_once(self, api):
        headers = auth(make_user(["admin"])) | {"Idempotency-Key": "onboard-1"}
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda _: api.post("/v1/merchants", json=BODY, headers=headers), range(4))
            )
        assert {r.status_code for r in results} == {201}
        assert len({r.json()["id"] for r in results}) == 1
        assert profiles() == 1

    def test_bad_input_is_refused_and_changes_nothing(self, api):
        headers = auth(make_user(["admin"]))
        cases = [
            ({"payout_bank_bin": "123456"}, 422, "unknown_bank"),
            ({"payout_account": "12-34"}, 422, "invalid_payout_account"),
            ({"payout_account": "123"}, 422, "invalid_payout_account"),
            ({"payout_account_name": "!!!"}, 422, "invalid_payout_account"),
            ({"payout_account_name": "Lan\u0000"}, 422, "invalid_characters"),
            ({"fee_plan": "free"}, 422, "validation_error"),
            ({"fee_plan": "custom"}, 422, "unknown_fee_plan"),
            ({"kind": "bank"}, 422, "validation_error"),
            ({"surprise": 1}, 422, "validation_error"),
        ]
        for change, status, code in cases:
            r = api.post("/v1/merchants", json=BODY | change, headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code), change
        assert profiles() == 0

    def test_only_an_admin_registers_merchants(self, api):
        for roles in (["finance"], ["customer"]):
            r = api.post("/v1/merchants", json=BODY, headers=auth(make_user(roles)))
            assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")


class TestStaff:
    def test_an_invited_cashier_joins_and_may_not_change_the_payout_account(self, api):
        merchant = make_merchant()
        owner = make_staff(merchant, "owner")
        invited = make_user(email="thu.ngan@example.vn")
        r = api.post(
            f"/v1/merchants/{merchant.id}/invitations",
            json={"email": "Thu.Ngan@example.vn", "role": "cashier"},
            headers=auth(owner),
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        stranger = api.post("/v1/invitations/accept", json={"token": token}, headers=auth(make_user()))
        assert (stranger.status_code, stranger.json()["code"]) == (403, "invitation_not_for_you")
        joined = api.post("/v1/invitations/accept", json={"token": token}, headers=auth(invited))
        assert joined.status_code == 200, joined.text
        assert (joined.json()["role"], joined.json()["merchant_id"]) == ("cashier", merchant.id)
        again = api.post("/v1/invitations/accept", json={"token": token}, headers=auth(invited))
        assert (again.status_code, again.json()["code"]) == (404, "invitation_not_found")
        cashier = {"Authorization": f"Bearer {joined.json()['access_token']}"}
        assert api.get(f"/v1/merchants/{merchant.id}", headers=cashier).status_code == 200
        change = {"bank_bin": "970415", "account": "99887766554", "account_name": "Kẻ Gian"}
        r = api.put(f"/v1/merchants/{merchant.id}/payout_account", json=change, headers=cashier)
        assert (r.status_code, r.json()["code"]) == (403, "staff_role_required")
        r = api.post(
            f"/v1/merchants/{merchant.id}/invitations",
            json={"email": "x@example.vn", "role": "owner"},
            headers=cashier,
        )
        assert (r.status_code, r.json()["code"]) == (403, "staff_role_required")
        assert api.get(f"/v1/merchants/{merchant.id}", headers=auth(owner)).json()["payout_account"] == (
            "0011002233445"
        )

    def test_the_owner_changes_the_payout_account_and_the_merchant_must_be_verified_again(self, api):
        merchant = make_merchant(verified=True)
        owner = make_staff(merchant, "owner")
        change = {"bank_bin": "970415", "account": "99887766554", "account_name": "Trần Văn Đức"}
        r = api.put(f"/v1/merchants/{merchant.id}/payout_account", json=change, headers=auth(owner))
        assert r.status_code == 200, r.text
        assert (r.json()["payout_account_name"], r.json()["verification"]) == ("TRAN VAN DUC", "unverified")
        bad = api.put(
            f"/v1/merchants/{merchant.id}/payout_account",
            json=change | {"account": "9988x"},
            headers=auth(owner),
        )
        assert bad.json()["code"] == "invalid_payout_account"
        finance = make_user(["finance"])
        r = api.post(
            f"/v1/merchants/{merchant.id}/verification", json={"status": "verified"}, headers=auth(finance)
        )
        assert r.json()["verification"] == "verified"
        r = api.post(
            f"/v1/merchants/{merchant.id}/verification", json={"status": "verified"}, headers=auth(owner)
        )
        assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")

    def test_a_removed_cashier_is_refused_at_once_with_a_token_still_valid(self, api):
        merchant = make_merchant()
        owner, cashier = make_staff(merchant, "owner"), make_staff(merchant, "cashier")
        token = auth(cashier)
        assert api.get(f"/v1/merchants/{merchant.id}/balance", headers=token).status_code == 200
        listed = api.get(f"/v1/merchants/{merchant.id}/members", headers=auth(owner)).json()
        assert sorted(m["role"] for m in listed) == ["cashier", "owner"]
        r = api.delete(f"/v1/merchants/{merchant.id}/members/{member_id(cashier)}", headers=auth(owner))
        assert r.status_code == 204
        for path in (f"/v1/merchants/{merchant.id}", f"/v1/merchants/{merchant.id}/balance"):
            refused = api.get(path, headers=token)
            assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token"), path
        assert len(api.get(f"/v1/merchants/{merchant.id}/members", headers=auth(owner)).json()) == 1

    def test_the_last_owner_stays_and_other_merchants_are_invisible(self, api):
        merchant, other = make_merchant(), make_merchant(name="Another stall")
        owner, foreign = make_staff(merchant, "owner"), make_staff(other, "owner")
        r = api.delete(f"/v1/merchants/{merchant.id}/members/{member_id(owner)}", headers=auth(owner))
        assert (r.status_code, r.json()["code"]) == (409, "last_owner")
        for path in ("", "/members"):
            r = api.get(f"/v1/merchants/{merchant.id}{path}", headers=auth(foreign))
            assert (r.status_code, r.json()["code"]) == (404, "merchant_not_found")
        assert [m["id"] for m in api.get("/v1/merchants", headers=auth(foreign)).json()] == [other.id]
        assert api.get("/v1/merchants", headers=auth(make_user())).json() == []


def test_the_home_page_lists_the_pages_of_the_staff_members_own_kind_of_merchant(api):
    """A stall's cashier is offered the vendor page, not the school's; a school's accountant the reverse."""
    stall = make_staff(make_merchant(kind="market_vendor"), "cashier")
    school = make_staff(make_merchant(kind="school", name="Trường THCS Hoài Đức"), "accountant")
    offered = {}
    for who in (stall, school):
        signed_in = api.post("/signin", data={"email": who.email, "password": PASSWORD})
        cookie = {"Cookie": f"hanoipay_session={signed_in.cookies['hanoipay_session']}"}
        home = api.get("/?lang=en", headers=cookie)
        assert home.status_code == 200, home.text
        offered[who.id] = {path for path in ("/vendor", "/school") if f'href="{path}"' in home.text}
    assert offered == {stall.id: {"/vendor"}, school.id: {"/school"}}
