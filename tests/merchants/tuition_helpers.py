"""A school with a fee schedule and students, built through the API as a school accountant would."""

from dataclasses import dataclass

from hanoipay.auth.models import User
from payments.models import Merchant
from tests.factories import auth, make_merchant, make_staff

SCHEDULE = {
    "term": "2026-2027 HK1",
    "name": "Học kỳ I năm học 2026–2027",
    "items": [
        {"code": "tuition", "name": "Học phí", "amount": 1_500_000},
        {"code": "meals", "name": "Tiền ăn bán trú", "amount": 600_000},
        {"code": "insurance", "name": "Bảo hiểm y tế", "amount": 150_000},
    ],
    "installments": [
        {"due_on": "2026-09-15", "share_bps": 6_000},
        {"due_on": "2027-01-15", "share_bps": 4_000},
    ],
    "allow_partial": False,
    "late_fee": {"kind": "percent", "value": 200, "grace_days": 5},
}


@dataclass
class School:
    merchant: Merchant
    accountant: User
    schedule_id: str
    students: dict[str, str]


def make_school(api, *, students: int = 3, allow_partial: bool = False, **schedule) -> School:
    merchant = make_merchant(kind="school", name="Trường THCS Hoài Đức", fee_bps=30)
    accountant = make_staff(merchant, "accountant")
    ids = {}
    for i in range(students):
        body = {
            "code": f"HS{i:04d}",
            "full_name": ["Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Đức"][i % 3],
            "class_name": "6A1" if i % 2 == 0 else "6A2",
            "date_of_birth": "2014-03-0" + str(1 + i % 9),
            "guardians": [{"full_name": "Phụ huynh", "phone": "0912345678"}],
        }
        r = api.post(f"/v1/schools/{merchant.id}/students", json=body, headers=auth(accountant))
        assert r.status_code == 201, r.text
        ids[body["code"]] = r.json()["id"]
    r = api.post(
        f"/v1/schools/{merchant.id}/fee_schedules",
        json=SCHEDULE | {"allow_partial": allow_partial} | schedule,
        headers=auth(accountant),
    )
    assert r.status_code == 201, r.text
    return School(merchant, accountant, r.json()["id"], ids)


def generate(api, school: School) -> int:
    r = api.post(
        f"/v1/schools/{school.merchant.id}/fee_schedules/{school.schedule_id}/invoices",
        json={},
        headers=auth(school.accountant),
    )
    assert r.status_code == 200, r.text
    return r.json()["created"]


def invoice_of(api, school: School, code: str) -> dict:
    r = api.get(f"/v1/students/{school.students[code]}/invoices", headers=auth(school.accountant))
    [invoice] = r.json()
    return api.get(f"/v1/invoices/{invoice['id']}", headers=auth(school.accountant)).json()
