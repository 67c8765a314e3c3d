"""Invoices for bench/merchants.py: a school's term generated for N students, beside a bare COPY of the
same rows into the same tables.
"""

import time
from datetime import date

import psycopg

from bench.common import BenchServers
from bench.merchants_common import ADMIN, dsn
from hanoipay.db import job_session
from hanoipay.ids import new_id
from merchants.service.onboarding import register_merchant
from merchants.service.tuition import invoices, schools
from merchants.service.tuition.billing import Item, LateFeeRule, Share


def bench_invoices(servers: BenchServers, students: int) -> None:
    with job_session() as session:
        school = register_merchant(
            session,
            ADMIN,
            name="Trường bench",
            kind="school",
            fee_plan="school",
            payout_bank_bin="970436",
            payout_account="0011002233445",
            payout_account_name="TRUONG BENCH",
        ).payee
        schedule = schools.create_schedule(
            session,
            ADMIN,
            school.id,
            term="2026-2027 HK1",
            name="Học kỳ I",
            items=[
                Item("tuition", "Học phí", 1_500_000),
                Item("meals", "Tiền ăn", 600_000),
                Item("boarding", "Bán trú", 300_000),
                Item("insurance", "Bảo hiểm", 150_000),
                Item("books", "Sách", 120_000),
            ],
            installments=[Share(date(2026, 9, 15), 6_000), Share(date(2027, 1, 15), 4_000)],
            allow_partial=True,
            late_fee=LateFeeRule("percent", 200, 5),
        )
        school_id, schedule_id = school.id, schedule.id
    with psycopg.connect(dsn(servers)) as conn:
        classes = [
            (new_id("cls"), school_id, f"{6 + i // 10}A{i % 10 + 1}") for i in range(max(1, students // 40))
        ]
        with conn.cursor().copy("COPY school_class (id, merchant_id, name) FROM STDIN") as copy:
            for row in classes:
                copy.write_row(row)
        with conn.cursor().copy(
            "COPY student (id, merchant_id, code, full_name, class_id, date_of_birth) FROM STDIN"
        ) as copy:
            student_ids = []
            for i in range(students):
                sid = new_id("stu")
                student_ids.append(sid)
                copy.write_row(
                    (
                        sid,
                        school_id,
                        f"HS{i:06d}",
                        f"Nguyễn Văn Học {i}",
                        classes[i % len(classes)][0],
                        date(2014, 1, 1),
                    )
                )
        with conn.cursor().copy(
            "COPY student_adjustment (id, student_id, schedule_id, item_code, kind, percent_bps, amount,"
            " reason) FROM STDIN"
        ) as copy:
            for sid in student_ids[::20]:
                copy.write_row(
                    (new_id("adj"), sid, schedule_id, "tuition", "exemption", 10_000, None, "chính sách")
                )
        conn.commit()
    started = time.perf_counter()
    with job_session() as session:
        created = invoices.generate_invoices(session, ADMIN, school_id, schedule_id)
    elapsed = time.perf_counter() - started

    tables = {
        "invoice": "id, code, merchant_id, student_id, schedule_id, term, currency, total_amount,"
        " paid_amount, status, allow_partial, due_on, late_fee_kind, late_fee_value, late_fee_grace_days",
        "invoice_line": "invoice_id, kind, item_code, description, amount, reason, installment_seq",
        "invoice_installment": "invoice_id, seq, due_on, amount",
    }
    dumps: dict[str, bytes] = {}
    with psycopg.connect(dsn(servers)) as conn:
        for table, columns in tables.items():
            buffer = bytearray()
            with conn.cursor().copy(f"COPY {table} ({columns}) TO STDOUT") as copy:
                for chunk in copy:
                    buffer += chunk
            dumps[table] = bytes(buffer)
        conn.execute("TRUNCATE invoice_line, invoice_installment, invoice_payment, invoice")
        conn.commit()
        rows = {table: dumps[table].count(b"\n") for table in tables}
        t0 = time.perf_counter()
        for table, columns in tables.items():
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(dumps[table])
        conn.commit()
        copy_elapsed = time.perf_counter() - t0
    total_rows = sum(rows.values())
    print(
        f"\n1. Invoices for {students:,} students"
        f" ({created:,} invoices, {total_rows:,} rows with lines and installments)"
    )
    print(
        f"   generate_invoices: {elapsed:.2f} s ({created / elapsed:,.0f} invoices/s)"
        "   target: 50 000 in <= 30 s"
    )
    print(
        f"   baseline, bare COPY of the same rows: {copy_elapsed:.2f} s"
        f" ({total_rows / copy_elapsed:,.0f} rows/s)"
    )
