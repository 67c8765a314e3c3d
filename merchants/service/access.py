"""Who may act for a merchant, and in which role: checked against the staff table on every call."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import NotFound
from merchants.exceptions import MerchantNotFound, StaffRoleRequired
from merchants.models import MerchantMember, StaffRole

# A merchant's system (an API key) does the daily work of a cashier and an accountant, never an owner's.
API_KEY_ROLES = frozenset({StaffRole.CASHIER, StaffRole.ACCOUNTANT})
ANY_ROLE = frozenset(StaffRole)


def staff_role(session: Session, who: Principal, merchant_id: str) -> str | None:
    """The caller's role at the merchant now, or None; a removed member has none, whatever the token says."""
    if who.kind == "api_key":
        return StaffRole.ACCOUNTANT if who.merchant_id == merchant_id else None
    if who.merchant_id != merchant_id:
        return None
    return session.scalar(
        select(MerchantMember.role).where(
            MerchantMember.user_id == who.id,
            MerchantMember.merchant_id == merchant_id,
            MerchantMember.removed_at.is_(None),
        )
    )


def require_staff(
    session: Session,
    who: Principal,
    merchant_id: str,
    roles: Iterable[str] = ANY_ROLE,
    *,
    staff_ok: bool = True,
    not_found: NotFound | None = None,
) -> str | None:
    """Refuse unless the caller works for the merchant in one of `roles` (or is finance/admin, if allowed).

    Returns the caller's role (None for finance/admin). Someone with no role at the merchant gets a 404,
    so merchant ids do not leak (`not_found` names the object asked for instead of the merchant); a member
    in another role gets a 403.
    """
    missing = not_found or MerchantNotFound(f"No merchant {merchant_id}.")
    if staff_ok and who.is_staff:
        return None
    allowed = set(roles)
    if who.kind == "api_key":
        if who.merchant_id != merchant_id:
            raise missing
        if not allowed & API_KEY_ROLES:
            raise StaffRoleRequired(
                f"An API key cannot do this; it needs one of: {', '.join(sorted(allowed))}."
            )
        return StaffRole.ACCOUNTANT
    role = staff_role(session, who, merchant_id)
    if role is None:
        raise missing
    if role not in allowed:
        raise StaffRoleRequired(f"Your role here is {role}; this needs one of: {', '.join(sorted(allowed))}.")
    return role
