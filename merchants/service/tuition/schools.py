"""A school's classes, students and guardians, fee schedules and policy students' adjustments."""

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from merchants.exceptions import (
    MerchantNotFound,
    ScheduleInvalid,
    ScheduleNotFound,
    SchoolClassNotFound,
    StudentCodeTaken,
    StudentNotFound,
    TermTaken,
    WrongMerchantKind,
)
from merchants.models import (
    FeeItem,
    FeeSchedule,
    Guardian,
    Invoice,
    MerchantKind,
    MerchantProfile,
    SchoolClass,
    StaffRole,
    Student,
    StudentAdjustment,
)
from merchants.service.access import require_staff
from merchants.service.tuition.billing import (
    Adjustment,
    Item,
    LateFeeRule,
    Share,
    check_shares,
    invoice_lines,
)
from payments.models import Merchant

# The school's accountant (and owner) run billing; other staff only read.
BILLERS = frozenset({StaffRole.OWNER, StaffRole.ACCOUNTANT})


def require_school(session: Session, who: Principal, school_id: str, roles: frozenset[str] = BILLERS) -> None:
    """Refuse unless the school exists and the caller bills for it (or is finance)."""
    require_staff(session, who, school_id, roles)
    profile = session.get(MerchantProfile, school_id)
    if profile is None:
        raise MerchantNotFound(f"No merchant {school_id}.")
    if profile.kind != MerchantKind.SCHOOL:
        raise WrongMerchantKind(f"{school_id} is not a school.")


def class_by_name(session: Session, school_id: str, name: str, *, create: bool) -> SchoolClass:
    """The school's class with this name, created if asked."""
    found = session.scalar(
        select(SchoolClass).where(SchoolClass.merchant_id == school_id, SchoolClass.name == name)
    )
    if found is not None:
        return found
    if not create:
        raise SchoolClassNotFound(f"No class {name}.")
    school_class = SchoolClass(id=new_id("cls"), merchant_id=school_id, name=name)
    session.add(school_class)
    session.flush()
    return school_class


def list_classes(session: Session, who: Principal, school_id: str) -> list[SchoolClass]:
    """The school's classes by name."""
    require_school(session, who, school_id, frozenset(StaffRole))
    return list(
        session.scalars(
            select(SchoolClass).where(SchoolClass.merchant_id == school_id).order_by(SchoolClass.name)
        )
    )


def add_student(
    session: Session,
    who: Principal,
    school_id: str,
    *,
    code: str,
    full_name: str,
    class_name: str,
    date_of_birth: date,
    guardians: list[dict[str, str | None]],
) -> Student:
    """Enrol a student (the class is created if new) with their guardians."""
    require_school(session, who, school_id)
    if session.scalar(select(Student.id).where(Student.merchant_id == school_id, Student.code == code)):
        raise StudentCodeTaken(f"Student code {code} is taken at this school.")
    school_class = class_by_name(session, school_id, class_name, create=True)
    student = Student(
        id=new_id("stu"),
        merchant_id=school_id,
        code=code,
        full_name=full_name,
        class_id=school_class.id,
        date_of_birth=date_of_birth,
    )
    session.add(student)
    session.flush()
    for guardian in guardians:
        session.add(
            Guardian(
                id=new_id("gdn"),
                student_id=student.id,
                full_name=str(guardian["full_name"]),
                phone=guardian.get("phone"),
                email=guardian.get("email"),
            )
        )
    session.flush()
    return student


def find_students(
    session: Session, who: Principal, school_id: str, *, code: str | None, class_id: str | None, limit: int
) -> list[Student]:
    """The school's students, by code or class, in code order (the school's staff)."""
    require_school(session, who, school_id, frozenset(StaffRole))
    query = select(Student).where(Student.merchant_id == school_id)
    if code:
        query = query.where(Student.code == code)
    if class_id:
        query = query.where(Student.class_id == class_id)
    return list(session.scalars(query.order_by(Student.code).limit(limit)))


def get_student(session: Session, who: Principal, school_id: str, student_id: str) -> Student:
    """A student of the school."""
    require_school(session, who, school_id, frozenset(StaffRole))
    student = session.get(Student, student_id)
    if student is None or student.merchant_id != school_id:
        raise StudentNotFound(f"No student {student_id}.")
    return student


def create_schedule(
    session: Session,
    who: Principal,
    school_id: str,
    *,
    term: str,
    name: str,
    items: list[Item],
    installments: list[Share],
    allow_partial: bool,
    late_fee: LateFeeRule,
) -> FeeSchedule:
    """A fee schedule for a term: its items, installments, partial payments and late-fee rule."""
    require_school(session, who, school_id)
    check_shares(installments)
    invoice_lines(items, [])
    if len({item.code for item in items}) != len(items):
        raise ScheduleInvalid("Item codes must be unique within a schedule.")
    if session.scalar(
        select(FeeSchedule.id).where(FeeSchedule.merchant_id == school_id, FeeSchedule.term == term)
    ):
        raise TermTaken(f"The school already has a fee schedule for {term}.")
    schedule = FeeSchedule(
        id=new_id("fsc"),
        merchant_id=school_id,
        term=term,
        name=name,
        allow_partial=allow_partial,
        installments=[{"due_on": s.due_on.isoformat(), "share_bps": s.share_bps} for s in installments],
        late_fee_kind=late_fee.kind,
        late_fee_value=late_fee.value,
        late_fee_grace_days=late_fee.grace_days,
    )
    session.add(schedule)
    session.flush()
    for position, item in enumerate(items):
        session.add(
            FeeItem(
                id=new_id("fit"),
                schedule_id=schedule.id,
                position=position,
                code=item.code,
                name=item.name,
                amount=item.amount,
            )
        )
    session.flush()
    return schedule


def get_schedule(session: Session, school_id: str, schedule_id: str) -> FeeSchedule:
    """A fee schedule of the school."""
    schedule = session.get(FeeSchedule, schedule_id)
    if schedule is None or schedule.merchant_id != school_id:
        raise ScheduleNotFound(f"No fee schedule {schedule_id}.")
    return schedule


def schedule_items(session: Session, schedule_id: str) -> list[Item]:
    """The items of a schedule, in the order they were given."""
    rows = session.scalars(
        select(FeeItem).where(FeeItem.schedule_id == schedule_id).order_by(FeeItem.position)
    )
    return [Item(r.code, r.name, r.amount) for r in rows]


def schedule_shares(schedule: FeeSchedule) -> list[Share]:
    """The installments of a schedule."""
    return [Share(date.fromisoformat(s["due_on"]), int(s["share_bps"])) for s in schedule.installments]


def add_adjustment(
    session: Session,
    who: Principal,
    school_id: str,
    student_id: str,
    schedule_id: str,
    adjustment: Adjustment,
) -> StudentAdjustment:
    """Give a policy student a discount or exemption on one item of a schedule, with the reason."""
    student = get_student(session, who, school_id, student_id)
    require_school(session, who, school_id)
    schedule = get_schedule(session, school_id, schedule_id)
    items = schedule_items(session, schedule.id)
    existing = [
        Adjustment(a.item_code, a.kind, a.reason, a.percent_bps, a.amount)
        for a in session.scalars(
            select(StudentAdjustment).where(
                StudentAdjustment.student_id == student.id, StudentAdjustment.schedule_id == schedule.id
            )
        )
    ]
    if any(a.item_code == adjustment.item_code for a in existing):
        raise ScheduleInvalid(f"The student already has an adjustment on {adjustment.item_code}.")
    invoice_lines(items, [*existing, adjustment])
    row = StudentAdjustment(
        id=new_id("adj"),
        student_id=student.id,
        schedule_id=schedule.id,
        item_code=adjustment.item_code,
        kind=adjustment.kind,
        percent_bps=adjustment.percent_bps,
        amount=adjustment.amount,
        reason=adjustment.reason,
    )
    session.add(row)
    session.flush()
    return row


def list_schools(session: Session) -> list[tuple[str, str]]:
    """Every school's id and name, for parents choosing their child's school."""
    rows = session.execute(
        select(Merchant.id, Merchant.name)
        .join(MerchantProfile, MerchantProfile.merchant_id == Merchant.id)
        .where(MerchantProfile.kind == MerchantKind.SCHOOL)
        .order_by(Merchant.name)
        .limit(1000)
    )
    return [(row[0], row[1]) for row in rows]


def school_terms(session: Session, school_id: str) -> list[str]:
    """The terms a school has billed or scheduled, newest name first."""
    scheduled = select(FeeSchedule.term).where(FeeSchedule.merchant_id == school_id)
    billed = select(Invoice.term).where(Invoice.merchant_id == school_id).distinct()
    return sorted({*session.scalars(scheduled), *session.scalars(billed)}, reverse=True)
