"""Bulk imports from CSV: Vietnamese names in UTF-8; every bad row reported by line; all or nothing."""

from sqlalchemy import func, select

from hanoipay.db import job_session
from merchants.models import Invoice, Student
from tests.factories import auth, make_merchant, make_staff

STUDENTS = "student_code,full_name,class,date_of_birth,guardian_name,guardian_phone,guardian_email\n"
INVOICES = (
    "student_code,term,due_on,item_code,item_name,amount,adjustment_kind,adjustment_value,adjustment_reason\n"
)


def school_with_accountant():
    school = make_merchant(kind="school", name="Trường Tiểu học Sấu")
    return school, make_staff(school, "accountant")


def upload(api, school, who, kind: str, content: bytes, **params):
    return api.post(
        f"/v1/schools/{school.id}/imports/{kind}",
        content=content,
        params=params,
        headers=auth(who) | {"content-type": "text/csv; charset=utf-8"},
    )


def count(model) -> int:
    with job_session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestStudentImport:
    def test_a_good_file_with_vietnamese_names_is_imported_whole(self, api):
        school, accountant = school_with_accountant()
        body = (
            "\ufeff"
            + STUDENTS
            + "HS001,Nguyễn Thị Ánh Dương,1A,2019-05-12,Nguyễn Văn Bình,0912345678,binh@example.vn\n"
            + "HS002,Đặng Quốc Huy,1A,2019-11-30,,,\n"
            + "\n"
            + "HS003,Phạm Ngọc Ý,1B,2019-01-02,Phạm Văn Tú,,\n"
        ).encode()
        r = upload(api, school, accountant, "students", body)
        assert r.status_code == 200, r.text
        assert r.json() == {"imported": 3}
        with job_session() as session:
            names = session.scalars(select(Student.full_name).order_by(Student.code)).all()
        assert names == ["Nguyễn Thị Ánh Dương", "Đặng Quốc Huy", "Phạm Ngọc Ý"]
        classes = api.get(f"/v1/schools/{school.id}/classes", headers=auth(accountant)).json()
        assert [c["name"] for c in classes] == ["1A", "1B"]

    def test_every_bad_row_is_reported_by_line_and_nothing_is_imported(self, api):
        school, accountant = school_with_accountant()
        body = (
            STUDENTS
            + "HS001,Nguyễn An,1A,2019-05-12,,,\n"  # line 2: good
            + "HS001,Trần Bình,1A,2019-05-13,,,\n"  # line 3: duplicate code
            + "HS003,Lê Chi,1A,12/05/2019,,,\n"  # line 4: not an ISO date
            + "HS004,,1A,2019-05-12,Mẹ,abc,not-an-email\n"  # line 5: no name, bad phone, bad email
            + "HS005,Võ Dũng,1A\n"  # line 6: too few values
        ).encode()
        r = upload(api, school, accountant, "students", body)
        assert (r.status_code, r.json()["code"]) == (422, "csv_invalid")
        assert [(e["line"], e["column"]) for e in r.json()["errors"]] == [
            (3, "student_code"),
            (4, "date_of_birth"),
            (5, "full_name"),
            (5, "guardian_phone"),
            (5, "guardian_email"),
            (6, "*"),
        ]
        assert count(Student) == 0

    def test_a_code_already_enrolled_wrong_columns_and_a_bad_encoding(self, api):
        school, accountant = school_with_accountant()
        assert (
            upload(
                api, school, accountant, "students", (STUDENTS + "HS001,An,1A,2019-05-12,,,\n").encode()
            ).status_code
            == 200
        )
        again = upload(
            api, school, accountant, "students", (STUDENTS + "HS001,An,1A,2019-05-12,,,\n").encode()
        )
        assert again.json()["errors"] == [
            {
                "line": 2,
                "column": "student_code",
                "code": "already_enrolled",
                "message": "HS001 is already a student of this school",
                "value": "HS001",
            }
        ]
        columns = upload(api, school, accountant, "students", b"code,name\nHS9,An\n")
        assert (columns.status_code, columns.json()["code"]) == (422, "csv_bad_columns")
        latin1 = (STUDENTS + "HS002,Ng\xe0y,1A,2019-05-12,,,\n").encode("latin-1")
        encoding = upload(api, school, accountant, "students", latin1)
        assert (encoding.status_code, encoding.json()["code"]) == (422, "csv_bad_encoding")
        assert count(Student) == 1
        cashier = make_staff(school, "cashier")
        assert upload(api, school, cashier, "students", STUDENTS.encode()).status_code == 403


class TestInvoiceImport:
    def test_invoices_grouped_by_student_and_term_with_a_discount(self, api):
        school, accountant = school_with_accountant()
        upload(
            api,
            school,
            accountant,
            "students",
            (STUDENTS + "HS001,An,1A,2019-05-12,,,\nHS002,Bình,1A,2019-05-13,,,\n").encode(),
        )
        body = (
            INVOICES
            + "HS001,HK1,2026-09-30,tuition,Học phí,1200000,discount,25%,Con giáo viên\n"
            + "HS001,HK1,2026-09-30,meals,Tiền ăn,500000,,,\n"
            + "HS002,HK1,2026-09-30,tuition,Học phí,1200000,exemption,1200000,Hộ nghèo\n"
        ).encode()
        r = upload(api, school, accountant, "invoices", body, allow_partial="true")
        assert r.json() == {"imported": 2}, r.text
        with job_session() as session:
            totals = dict(
                session.execute(
                    select(Student.code, Invoice.total_amount).join(Invoice, Invoice.student_id == Student.id)
                ).all()
            )
        # 1 200 000 − 300 000 + 500 000 = 1 400 000; the exempt student owes 0.
        assert totals == {"HS001": 1_400_000, "HS002": 0}

    def test_bad_invoice_rows_are_all_reported_and_nothing_is_billed(self, api):
        school, accountant = school_with_accountant()
        upload(api, school, accountant, "students", (STUDENTS + "HS001,An,1A,2019-05-12,,,\n").encode())
        body = (
            INVOICES
            + "HS001,HK1,2026-09-30,tuition,Học phí,1200000,,,\n"  # 2: good
            + "HS999,HK1,2026-09-30,tuition,Học phí,1200000,,,\n"  # 3: unknown student
            + "HS001,HK1,2026-09-30,meals,Tiền ăn,-5,,,\n"  # 4: negative fee item
            + "HS001,HK1,2026-09-30,books,Sách,100000,discount,150000,quá nhiều\n"  # 5: discount > item
            + "HS001,HK1,2026-09-30,trip,Dã ngoại,100000,discount,10%,\n"  # 6: no reason
        ).encode()
        r = upload(api, school, accountant, "invoices", body)
        assert (r.status_code, r.json()["code"]) == (422, "csv_invalid")
        assert [(e["line"], e["column"]) for e in r.json()["errors"]] == [
            (3, "student_code"),
            (4, "amount"),
            (5, "adjustment_value"),
            (6, "adjustment_reason"),
        ]
        assert count(Invoice) == 0
