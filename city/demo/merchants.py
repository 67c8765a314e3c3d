"""The merchants' day: thirty market stalls sell by dynamic and static VietQR codes, a school bills five
hundred students (exemptions, discounts, two installments) and parents pay, then payouts run."""

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
from rich.console import RenderableType
from rich.table import Table

from city.demo.city import PASSWORD, City, console
from hanoipay.settings import get_settings
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu", "Quốc", "Bảo", "Hải", "Thanh"]
GIVEN = [
    "An",
    "Bình",
    "Chi",
    "Dũng",
    "Hà",
    "Hùng",
    "Khánh",
    "Lan",
    "Linh",
    "Mai",
    "Nam",
    "Phương",
    "Quân",
    "Trang",
    "Tú",
    "Vy",
]
GOODS = [
    "rau sạch",
    "thịt lợn",
    "cá đồng",
    "gạo",
    "hoa quả",
    "đậu phụ",
    "bún tươi",
    "gà ta",
    "trứng",
    "hải sản",
]
TERM = "2026-2027 HK1"


class MerchantsScenario:
    """Stalls selling all day, a school billing its students, and the end-of-day payouts."""

    name = "merchants: market stalls, tuition, payouts"

    def __init__(
        self, *, stalls: int = 30, sales_per_stall: int = 8, students: int = 500, parents: int = 120
    ) -> None:
        self.stalls = stalls
        self.sales_per_stall = sales_per_stall
        self.students = students
        self.parents = parents
        self.market: dict[str, Any] = {}
        self.vendors: list[tuple[dict[str, Any], dict[str, Any], dict[str, str]]] = []
        self.school: dict[str, Any] = {}
        self.accountant: dict[str, str] = {}
        self.settlements: list[dict[str, Any]] = []
        self.payout_results: dict[str, str] = {}

    def play(self, shared: City) -> None:
        """Open the market and the school, sell and bill through the day, pay everyone out at its end."""
        # Connections idle for longer than the server keeps them (uvicorn: 5 s) are dropped by the client
        # first, so a thread never sends on a connection the server is closing.
        with httpx.Client(
            base_url=shared.api.base_url, timeout=60, limits=httpx.Limits(keepalive_expiry=1)
        ) as api:
            self._play(replace(shared, api=api), shared)

    def _play(self, city: City, shared: City) -> None:
        self._open_market(city)
        console.print(
            f"{self.stalls} stalls opened at {self.market['name']}, each with its own collection account"
        )
        self._sell(city)
        console.print(f"the stalls sold {self.stalls * self.sales_per_stall} times; the demo played the bank")
        self._open_school(city)
        console.print(f"{self.school['name']} imported {self.students} students and billed {TERM}")
        self._parents_pay(city)
        console.print(f"{self.parents} parents linked their children and paid, by wallet or by bank transfer")
        shared.drain()
        self._payouts(city)
        console.print(f"{len(self.settlements)} merchants settled; the bank confirmed the transfer file")

    # The market ----------------------------------------------------------------------------------------

    def _join(self, city: City, merchant_id: str, email: str, name: str, role: str) -> dict[str, str]:
        city.post("/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": name}, {})
        invitation = city.post(
            f"/v1/merchants/{merchant_id}/invitations", {"email": email, "role": role}, city.admin
        ).json()
        joined = city.post("/v1/invitations/accept", {"token": invitation["token"]}, city.login(email)).json()
        return {"Authorization": f"Bearer {joined['access_token']}"}

    def _open_market(self, city: City) -> None:
        self.market = city.post(
            "/v1/markets", {"name": "Chợ Sấu", "address": "An Khánh, Hoài Đức, Hà Nội"}, city.finance
        ).json()

        def one(i: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
            owner = f"{SURNAMES[i % 12]} {MIDDLE[i % 10]} {GIVEN[i % 16]}"
            body = {
                "name": f"Sạp {i + 1:02d}: {GOODS[i % 10]}",
                "kind": "market_vendor",
                "fee_plan": "market_stall",
                "payout_bank_bin": "970405",
                "payout_account": f"1500{i:09d}",
                "payout_account_name": owner,
                "settlement_delay_days": 0,
            }
            merchant = city.post("/v1/merchants", body, city.admin, key=f"stall-merchant-{i}").json()
            city.post(f"/v1/merchants/{merchant['id']}/verification", {"status": "verified"}, city.finance)
            staff = self._join(city, merchant["id"], f"sap{i + 1:02d}@cho-sau.vn", owner, "owner")
            stall = city.post(
                "/v1/stalls",
                {
                    "market_id": self.market["id"],
                    "code": f"A{i + 1:02d}",
                    "name": body["name"],
                    "merchant_id": merchant["id"],
                },
                city.finance,
            ).json()
            return merchant, stall, staff

        with ThreadPoolExecutor(8) as pool:
            self.vendors = list(pool.map(one, range(self.stalls)))
        city.merchants.extend(merchant for merchant, _stall, _staff in self.vendors)

    def _sell(self, city: City) -> None:
        plan = [(v, n) for n in range(self.sales_per_stall) for v in range(self.stalls)]

        def one(item: tuple[int, int]) -> str:
            v, n = item
            _merchant, stall, staff = self.vendors[v]
            amount = city.rng.randrange(15_000, 250_000, 1_000)
            txn = f"FTSAU{v:02d}{n:03d}"
            if n % 4 == 3:  # a buyer scans the printed sign and types the amount: no reference
                answer = city.bank_says(
                    amount, "chuyen tien mua hang", txn, account=stall["collection_account"]
                )
                return f"stall static code: {answer['status']}"
            sale = city.post(
                f"/v1/stalls/{stall['id']}/sales", {"amount": amount}, staff, key=f"sale-{txn}"
            ).json()
            answer = city.bank_says(amount, f"MBVCB.{city.rng.randrange(10**6)}.{sale['reference']}", txn)
            return f"stall dynamic code: {answer['status']}"

        with ThreadPoolExecutor(8) as pool:
            city.outcomes.update(pool.map(one, plan))
        for v, (merchant, _stall, staff) in enumerate(self.vendors):
            waiting = city.api.get(
                f"/v1/merchants/{merchant['id']}/stall_transfers",
                params={"status": "awaiting_confirmation"},
                headers=staff,
            ).json()
            for k, transfer in enumerate(waiting):
                if v == 7 and k == 0:  # one vendor does not recognise a transfer and sends it back
                    r = city.post(
                        f"/v1/stall_transfers/{transfer['id']}/return", {"reason": "không phải khách"}, staff
                    )
                    city.outcomes[f"static transfer {r.json()['status']}"] += 1
                    continue
                r = city.post(
                    f"/v1/stall_transfers/{transfer['id']}/confirm",
                    {},
                    staff,
                    key=f"confirm-{transfer['id']}",
                )
                city.outcomes[f"static transfer {r.json()['status']}"] += 1

    # The school -----------------------------------------------------------------------------------------

    def _open_school(self, city: City) -> None:
        body = {
            "name": "Trường THCS An Khánh",
            "kind": "school",
            "fee_plan": "school",
            "payout_bank_bin": "970418",
            "payout_account": "21510000777888",
            "payout_account_name": "Trường THCS An Khánh",
            "overpayment_policy": "refund",
            "settlement_delay_days": 0,
        }
        self.school = city.post("/v1/merchants", body, city.admin, key="school-an-khanh").json()
        city.post(f"/v1/merchants/{self.school['id']}/verification", {"status": "verified"}, city.finance)
        city.merchants.append(self.school)
        self.accountant = self._join(
            city, self.school["id"], "ketoan@thcs-ankhanh.edu.vn", "Lê Thu Trang", "accountant"
        )
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(
            [
                "student_code",
                "full_name",
                "class",
                "date_of_birth",
                "guardian_name",
                "guardian_phone",
                "guardian_email",
            ]
        )
        for i in range(self.students):
            name = f"{SURNAMES[i % 12]} {MIDDLE[(i // 12) % 10]} {GIVEN[(i // 7) % 16]}"
            grade = 6 + i % 4
            writer.writerow(
                [
                    f"AK{i:04d}",
                    name,
                    f"{grade}A{1 + (i // 4) % 3}",
                    f"{2020 - grade}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    f"{SURNAMES[i % 12]} Văn {GIVEN[(i + 3) % 16]}",
                    f"09{i:08d}",
                    "",
                ]
            )
        imported = city.api.post(
            f"/v1/schools/{self.school['id']}/imports/students",
            content=rows.getvalue().encode(),
            headers=self.accountant | {"content-type": "text/csv"},
        ).json()
        city.outcomes[f"students imported: {imported.get('imported')}"] += 1
        schedule = city.post(
            f"/v1/schools/{self.school['id']}/fee_schedules",
            {
                "term": TERM,
                "name": "Học kỳ I năm học 2026–2027",
                "items": [
                    {"code": "tuition", "name": "Học phí", "amount": 1_200_000},
                    {"code": "meals", "name": "Tiền ăn bán trú", "amount": 900_000},
                    {"code": "insurance", "name": "Bảo hiểm y tế", "amount": 340_000},
                ],
                "installments": [
                    {"due_on": "2026-12-15", "share_bps": 6_000},
                    {"due_on": "2027-02-15", "share_bps": 4_000},
                ],
                "allow_partial": True,
                "late_fee": {"kind": "percent", "value": 200, "grace_days": 7},
            },
            self.accountant,
        ).json()
        for i in range(0, self.students, 20):  # policy students: exemption of tuition, half the meals
            student = self._student(city, f"AK{i:04d}")
            for adjustment in (
                {"item_code": "tuition", "kind": "exemption", "percent_bps": 10_000, "reason": "Hộ nghèo"},
                {"item_code": "meals", "kind": "discount", "percent_bps": 5_000, "reason": "Hộ nghèo"},
            ):
                city.post(
                    f"/v1/schools/{self.school['id']}/students/{student['id']}/adjustments",
                    adjustment | {"schedule_id": schedule["id"]},
                    self.accountant,
                )
        generated = city.post(
            f"/v1/schools/{self.school['id']}/fee_schedules/{schedule['id']}/invoices",
            {},
            self.accountant,
            key="bill-hk1",
        ).json()
        city.outcomes[f"invoices generated: {generated['created']}"] += 1

    def _student(self, city: City, code: str) -> dict[str, Any]:
        [student] = city.api.get(
            f"/v1/schools/{self.school['id']}/students", params={"code": code}, headers=self.accountant
        ).json()
        return dict(student)

    def _parents_pay(self, city: City) -> None:
        def one(i: int) -> str:
            code = f"AK{i * 4 + i % 4:04d}"  # children across every grade and class
            email = f"phuhuynh{i}@example.vn"
            city.post(
                "/v1/users/signup", {"email": email, "password": PASSWORD, "full_name": f"Phụ huynh {i}"}, {}
            )
            who = city.login(email)
            n = int(code[2:])
            grade = 6 + n % 4
            born = f"{2020 - grade}-{1 + n % 12:02d}-{1 + n % 28:02d}"
            child = city.post(
                f"/v1/schools/{self.school['id']}/guardian_links",
                {"student_code": code, "date_of_birth": born},
                who,
            ).json()
            [invoice] = city.api.get(f"/v1/students/{child['id']}/invoices", headers=who).json()
            left = invoice["total_amount"] - invoice["paid_amount"]
            if i % 3 == 0:  # pays all of it from the wallet
                wallet = city.post("/v1/wallets", {"currency": "VND"}, who).json()
                city.post(
                    f"/v1/wallets/{wallet['id']}/manual_topups",
                    {"amount": left, "reason": "nộp tiền mặt"},
                    city.finance,
                    key=f"tuition-topup-{i}",
                )
                r = city.post(
                    f"/v1/invoices/{invoice['id']}/payments",
                    {"provider": "wallet", "wallet_id": wallet["id"]},
                    who,
                    key=f"tuition-{i}",
                )
                return f"tuition by wallet: {r.json().get('status', r.json().get('code'))}"
            if i % 3 == 1:  # the first installment, by bank transfer with the invoice code
                part = invoice["total_amount"] * 6 // 10
                answer = city.bank_says(
                    part, f"{city.rng.choice(SURNAMES).upper()} CK {invoice['code']} HOC PHI", f"FTHP{i:05d}"
                )
                return f"tuition installment by transfer: {answer['status']}"
            amount = left + (50_000 if i % 15 == 2 else 0)  # one in fifteen sends a little too much
            answer = city.bank_says(amount, f"HP {invoice['code']}", f"FTHP{i:05d}")
            return f"tuition in full by transfer: {answer['status']}"

        with ThreadPoolExecutor(8) as pool:
            city.outcomes.update(pool.map(one, range(self.parents)))

    # The end of the day ----------------------------------------------------------------------------------

    def _payouts(self, city: City) -> None:
        merchants = [m for m, _s, _t in self.vendors] + [self.school]
        for merchant in merchants:
            run = city.post(
                f"/v1/merchants/{merchant['id']}/settlements",
                {},
                city.finance,
                key=f"settle-{merchant['id']}",
            ).json()
            self.settlements.append(run)
        listed = city.api.get("/v1/payouts/bank_file.csv", headers=city.finance)
        lines = list(csv.DictReader(io.StringIO(listed.text)))
        results = [
            {
                "payout_id": line["payout_id"],
                "status": "failed" if n == 5 else "paid",
                "reason": "tài khoản đã đóng" if n == 5 else None,
            }
            for n, line in enumerate(lines)
        ]
        settings = get_settings()
        kid, secret = next(iter(settings.bank_webhook_secrets.items()))
        body = json.dumps({"results": results}).encode()
        answer = city.api.post(
            "/v1/webhooks/bank/payouts",
            content=body,
            headers={
                SIGNATURE_HEADER: sign(body, kid=kid, secret=secret),
                "content-type": "application/json",
            },
        ).json()
        self.payout_results = answer["payouts"]
        city.outcomes.update(f"payout {status}" for status in self.payout_results.values())
        city.outcomes[f"bank transfer file rows: {len(lines)}"] += 1

    def summarize(self, city: City) -> list[RenderableType]:
        """Takings by stall, the school's collection by class, and the day's payouts."""
        stalls = Table(
            "stall", "sales", "gross (VND)", "fees", "net", title="Chợ Sấu today (top 10 by takings)"
        )
        summaries = []
        for _merchant, stall, staff in self.vendors:
            summary = city.api.get(f"/v1/stalls/{stall['id']}/summary", headers=staff).json()
            summaries.append((summary["gross_amount"], stall["code"], summary))
        for _, code, s in sorted(summaries, reverse=True)[:10]:
            stalls.add_row(
                code,
                str(s["sales"]),
                f"{s['gross_amount']:,}",
                f"{s['fee_amount']:,}",
                f"{s['net_amount']:,}",
            )
        collection = Table(
            "class",
            "paid",
            "partly",
            "unpaid",
            "billed (VND)",
            "collected",
            title=f"{self.school.get('name', '')}: {TERM}",
        )
        rows = city.api.get(
            f"/v1/schools/{self.school['id']}/collection", params={"term": TERM}, headers=self.accountant
        ).json()
        for r in rows:
            collection.add_row(
                r["class_name"],
                str(r["paid"]),
                str(r["partly_paid"]),
                str(r["unpaid"]),
                f"{r['billed_amount']:,}",
                f"{r['collected_amount']:,}",
            )
        paid_out = sum(s["amount"] for s in self.settlements)
        failed = sum(1 for status in self.payout_results.values() if status == "failed")
        return [
            stalls,
            collection,
            f"payouts: {len(self.settlements)} settlements, {paid_out:,} VND in the bank file;"
            f" {failed} refused by the bank, its money returned to where it came from",
        ]
