"""Merchant onboarding: registration, payout bank account, fee plan, verification, staff and invitations."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from merchants.exceptions import (
    AlreadyStaff,
    InvalidPayoutAccount,
    InvitationNotForYou,
    InvitationNotFound,
    LastOwner,
    MemberNotFound,
    MerchantNotFound,
    UnknownBank,
    UnknownFeePlan,
)
from merchants.models import (
    MerchantKind,
    MerchantMember,
    MerchantProfile,
    StaffInvitation,
    StaffRole,
    Verification,
)
from merchants.service.access import require_staff
from merchants.service.text import bank_holder_name
from payments.merchants import get_merchant, open_payee, set_terms
from payments.models import Merchant
from payments.providers.vietqr.banks import bank_by_bin

# Fee plans in basis points of each payment; `custom` takes the fee_bps given with it.
FEE_PLANS: dict[str, int | None] = {
    "standard": 150,
    "market_stall": 50,
    "school": 30,
    "transport": 80,
    "custom": None,
}
INVITATION_DAYS = 7
_ACCOUNT_NUMBER = re.compile(r"^[0-9]{6,19}$")


@dataclass(frozen=True)
class MerchantView:
    """A merchant as its staff and finance see it: the core's payee and the domain's profile."""

    payee: Merchant
    profile: MerchantProfile


def _now() -> datetime:
    return datetime.now(UTC)


def check_payout_account(bank_bin: str, account: str, holder: str) -> tuple[str, str, str]:
    """The bank BIN, account number and holder name as stored, or a refusal saying what is wrong."""
    if bank_by_bin(bank_bin) is None:
        raise UnknownBank(f"{bank_bin} is not the BIN of a bank in the VietQR list.")
    if not _ACCOUNT_NUMBER.fullmatch(account):
        raise InvalidPayoutAccount("An account number is 6 to 19 digits, with no spaces or letters.")
    name = bank_holder_name(holder)
    if not name:
        raise InvalidPayoutAccount("The account holder's name has no letters.")
    return bank_bin, account, name


def _fee_for_plan(plan: str, fee_bps: int | None) -> int:
    if plan not in FEE_PLANS:
        raise UnknownFeePlan(f"Unknown fee plan {plan!r}; known: {', '.join(FEE_PLANS)}.")
    planned = FEE_PLANS[plan]
    if planned is None:
        if fee_bps is None:
            raise UnknownFeePlan("The custom fee plan needs fee_bps.")
        return fee_bps
    return planned


def register_merchant(
    session: Session,
    who: Principal,
    *,
    name: str,
    kind: str,
    payout_bank_bin: str,
    payout_account: str,
    payout_account_name: str,
    fee_plan: str | None = None,
    fee_bps: int | None = None,
    currency: str = "VND",
    overpayment_policy: str = "refund",
    settlement_delay_days: int = 1,
) -> MerchantView:
    """Register a merchant (admin): its payee in the core, and its profile here, unverified."""
    who.require(Role.ADMIN)
    plan = fee_plan or ("custom" if fee_bps is not None else "standard")
    bps = _fee_for_plan(plan, fee_bps)
    bank_bin, account, holder = check_payout_account(payout_bank_bin, payout_account, payout_account_name)
    payee = open_payee(
        session, name=name, fee_bps=bps, currency=currency, overpayment_policy=overpayment_policy
    )
    profile = MerchantProfile(
        merchant_id=payee.id,
        kind=MerchantKind(kind),
        payout_bank_bin=bank_bin,
        payout_account=account,
        payout_account_name=holder,
        fee_plan=plan,
        verification=Verification.UNVERIFIED,
        settlement_delay_days=settlement_delay_days,
        updated_at=_now(),
    )
    session.add(profile)
    session.flush()
    return MerchantView(payee, profile)


def _view(session: Session, merchant_id: str, *, for_update: bool = False) -> MerchantView:
    profile = session.get(
        MerchantProfile, merchant_id, with_for_update=for_update, populate_existing=for_update
    )
    if profile is None:
        raise MerchantNotFound(f"No merchant {merchant_id}.")
    return MerchantView(get_merchant(session, merchant_id), profile)


def merchant_kind(session: Session, merchant_id: str) -> str | None:
    """The kind of a merchant (for the domains that serve one kind, as parking serves operators)."""
    profile = session.get(MerchantProfile, merchant_id)
    return None if profile is None else profile.kind


def get_merchant_view(session: Session, who: Principal, merchant_id: str) -> MerchantView:
    """A merchant, for its staff (any role) and finance; 404 for anyone else."""
    require_staff(session, who, merchant_id)
    return _view(session, merchant_id)


def list_merchant_views(session: Session, who: Principal, *, kind: str | None = None) -> list[MerchantView]:
    """Every merchant for finance and admin; the caller's own for its staff; nothing for others."""
    query = select(Merchant, MerchantProfile).join(
        MerchantProfile, MerchantProfile.merchant_id == Merchant.id
    )
    if not who.is_staff:
        if who.merchant_id is None:
            return []
        require_staff(session, who, who.merchant_id)
        query = query.where(Merchant.id == who.merchant_id)
    if kind:
        query = query.where(MerchantProfile.kind == kind)
    return [MerchantView(m, p) for m, p in session.execute(query.order_by(Merchant.id).limit(1000))]


def change_payout_account(
    session: Session, who: Principal, merchant_id: str, *, bank_bin: str, account: str, holder: str
) -> MerchantView:
    """The owner (or an admin) changes where payouts go; the merchant must be verified again."""
    if not who.has(Role.ADMIN):
        require_staff(session, who, merchant_id, {StaffRole.OWNER}, staff_ok=False)
    bank_bin, account, holder = check_payout_account(bank_bin, account, holder)
    view = _view(session, merchant_id, for_update=True)
    profile = view.profile
    changed = (profile.payout_bank_bin, profile.payout_account, profile.payout_account_name) != (
        bank_bin,
        account,
        holder,
    )
    profile.payout_bank_bin, profile.payout_account, profile.payout_account_name = bank_bin, account, holder
    if changed and profile.verification == Verification.VERIFIED:
        # A new destination for the money is what a takeover would change first: check it again.
        profile.verification, profile.verified_at, profile.verified_by = Verification.UNVERIFIED, None, None
    profile.updated_at = _now()
    session.flush()
    return view


def change_terms(
    session: Session,
    who: Principal,
    merchant_id: str,
    *,
    fee_plan: str | None = None,
    fee_bps: int | None = None,
    overpayment_policy: str | None = None,
    settlement_delay_days: int | None = None,
) -> MerchantView:
    """Finance or admin changes a merchant's fee plan, overpayment policy or settlement delay."""
    who.require(Role.FINANCE, Role.ADMIN)
    view = _view(session, merchant_id, for_update=True)
    bps = None
    if fee_plan is not None:
        bps = _fee_for_plan(fee_plan, fee_bps)
        view.profile.fee_plan = fee_plan
    elif fee_bps is not None:
        bps = _fee_for_plan("custom", fee_bps)
        view.profile.fee_plan = "custom"
    if settlement_delay_days is not None:
        view.profile.settlement_delay_days = settlement_delay_days
    view.profile.updated_at = _now()
    set_terms(session, merchant_id, fee_bps=bps, overpayment_policy=overpayment_policy)
    session.flush()
    return view


def set_verification(session: Session, who: Principal, merchant_id: str, status: str) -> MerchantView:
    """Finance or admin verifies a merchant (payouts start) or suspends it (payouts stop)."""
    who.require(Role.FINANCE, Role.ADMIN)
    view = _view(session, merchant_id, for_update=True)
    view.profile.verification = Verification(status)
    verified = status == Verification.VERIFIED
    view.profile.verified_at = _now() if verified else None
    view.profile.verified_by = who.id if verified else None
    view.profile.updated_at = _now()
    session.flush()
    return view


# Staff ------------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # Invitation tokens carry 256 random bits; a fast hash is as safe as a slow one.
    return hashlib.sha256(token.encode()).hexdigest()


def invite(
    session: Session, who: Principal, merchant_id: str, *, email: str, role: str, now: datetime | None = None
) -> tuple[StaffInvitation, str]:
    """An owner (or admin) invites someone by email in a role; returns the invitation and its token."""
    if not who.has(Role.ADMIN):
        require_staff(session, who, merchant_id, {StaffRole.OWNER}, staff_ok=False)
    _view(session, merchant_id)
    token = secrets.token_urlsafe(32)
    invitation = StaffInvitation(
        id=new_id("sinv"),
        merchant_id=merchant_id,
        email=email.strip().lower(),
        role=StaffRole(role),
        token_hash=_token_hash(token),
        invited_by=who.id,
        expires_at=(now or _now()) + timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    session.flush()
    return invitation, token


def _role_for_kind(kind: str) -> Role:
    return (
        Role.OPERATOR
        if kind in (MerchantKind.PARKING_OPERATOR, MerchantKind.TRANSIT_OPERATOR)
        else Role.VENDOR
    )


def add_member(session: Session, user: User, merchant_id: str, role: str, *, added_by: str) -> MerchantMember:
    """Put a user on a merchant's staff: their account now acts for the merchant in `role`."""
    if user.merchant_id is not None:
        raise AlreadyStaff("This account already works for a merchant; leave it first.")
    view = _view(session, merchant_id)
    member = MerchantMember(
        id=new_id("mbr"), merchant_id=merchant_id, user_id=user.id, role=StaffRole(role), added_by=added_by
    )
    session.add(member)
    user.merchant_id = merchant_id
    user.roles = sorted(set(user.roles) | {_role_for_kind(view.profile.kind)})
    session.flush()
    return member


def accept_invitation(
    session: Session, who: Principal, token: str, *, now: datetime | None = None
) -> tuple[MerchantMember, User]:
    """The invited person, signed in with the invited email, joins the merchant's staff."""
    invitation = session.scalar(
        select(StaffInvitation).where(StaffInvitation.token_hash == _token_hash(token)).with_for_update()
    )
    moment = now or _now()
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at < moment
    ):
        raise InvitationNotFound("No open invitation with this token (used, revoked or expired).")
    user = session.get(User, who.id, with_for_update=True) if who.kind == "user" else None
    if user is None or user.email != invitation.email:
        raise InvitationNotForYou("Sign in with the email address the invitation was sent to.")
    member = add_member(
        session, user, invitation.merchant_id, invitation.role, added_by=invitation.invited_by
    )
    invitation.accepted_at, invitation.accepted_by = moment, user.id
    session.flush()
    return member, user


def list_members(session: Session, who: Principal, merchant_id: str) -> list[tuple[MerchantMember, User]]:
    """The merchant's current staff with their roles (any member may see who they work with)."""
    require_staff(session, who, merchant_id)
    rows = session.execute(
        select(MerchantMember, User)
        .join(User, User.id == MerchantMember.user_id)
        .where(MerchantMember.merchant_id == merchant_id, MerchantMember.removed_at.is_(None))
        .order_by(MerchantMember.id)
    )
    return [(m, u) for m, u in rows]


def remove_member(session: Session, who: Principal, merchant_id: str, member_id: str) -> MerchantMember:
    """An owner (or admin) removes someone from the staff; their tokens stop working here at once."""
    if not who.has(Role.ADMIN):
        require_staff(session, who, merchant_id, {StaffRole.OWNER}, staff_ok=False)
    member = session.get(MerchantMember, member_id, with_for_update=True)
    if member is None or member.merchant_id != merchant_id or member.removed_at is not None:
        raise MemberNotFound(f"No member {member_id} at this merchant.")
    if member.role == StaffRole.OWNER:
        owners = session.scalar(
            select(func.count()).where(
                MerchantMember.merchant_id == merchant_id,
                MerchantMember.role == StaffRole.OWNER,
                MerchantMember.removed_at.is_(None),
            )
        )
        if (owners or 0) <= 1:
            raise LastOwner("Add another owner before removing the last one.")
    member.removed_at, member.removed_by = _now(), who.id
    user = session.get(User, member.user_id, with_for_update=True)
    assert user is not None
    user.merchant_id = None
    user.roles = sorted(set(user.roles) - {Role.VENDOR, Role.OPERATOR}) or [Role.CUSTOMER]
    enqueue_after_commit(
        session, "merchants.announce_member_removed", merchant_id=merchant_id, user_id=user.id
    )
    session.flush()
    return member
