"""Merchant onboarding over HTTP: registration, bank account, terms, verification, staff."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed, issue_token
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from merchants.exceptions import (
    AlreadyStaff,
    InvalidPayoutAccount,
    InvitationNotForYou,
    InvitationNotFound,
    LastOwner,
    MemberNotFound,
    MerchantNotFound,
    StaffRoleRequired,
    UnknownBank,
    UnknownFeePlan,
)
from merchants.schemas.onboarding import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    Joined,
    MemberOut,
    MerchantCreate,
    MerchantOut,
    PayoutAccountChange,
    TermsChange,
    VerificationChange,
)
from merchants.service import onboarding
from merchants.service.onboarding import MerchantView
from payments.exceptions import IdempotencyKeyReused, UnsupportedCurrency
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.providers.vietqr.banks import bank_by_bin

router = APIRouter(prefix="/v1", tags=["merchants"], dependencies=[Depends(require_json)])


def merchant_out(view: MerchantView) -> MerchantOut:
    """The API's view of a merchant."""
    payee, profile = view.payee, view.profile
    bank = bank_by_bin(profile.payout_bank_bin)
    return MerchantOut(
        id=payee.id,
        name=payee.name,
        kind=profile.kind,
        fee_plan=profile.fee_plan,
        fee_bps=payee.fee_bps,
        currency=payee.currency,
        payout_bank_bin=profile.payout_bank_bin,
        payout_bank=bank.short_name if bank else None,
        payout_account=profile.payout_account,
        payout_account_name=profile.payout_account_name,
        overpayment_policy=payee.overpayment_policy,
        verification=profile.verification,
        verified_at=profile.verified_at,
        settlement_delay_days=profile.settlement_delay_days,
        account_id=payee.account_id,
        created_at=payee.created_at,
    )


@router.post(
    "/merchants",
    status_code=201,
    response_model=MerchantOut,
    responses=errors(
        RoleNotAllowed,
        UnsupportedCurrency,
        UnknownBank,
        InvalidPayoutAccount,
        UnknownFeePlan,
        IdempotencyKeyReused,
    ),
)
def create_merchant(
    body: MerchantCreate,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Register a merchant (admin), unverified until finance checks it; an Idempotency-Key makes it once."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: merchant_out(onboarding.register_merchant(session, who, **body.model_dump())),
        status_code=201,
    )


@router.get("/merchants")
def list_merchants(
    session: DbSession,
    who: Caller,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> list[MerchantOut]:
    """Merchants the caller may see: all for finance and admin, its own for merchant staff."""
    return [merchant_out(v) for v in onboarding.list_merchant_views(session, who, kind=kind)]


@router.get("/merchants/{merchant_id}", responses=errors(MerchantNotFound))
def get_merchant(merchant_id: str, session: DbSession, who: Caller) -> MerchantOut:
    """One merchant, for its staff and for finance."""
    return merchant_out(onboarding.get_merchant_view(session, who, merchant_id))


@router.put(
    "/merchants/{merchant_id}/payout_account",
    responses=errors(MerchantNotFound, StaffRoleRequired, UnknownBank, InvalidPayoutAccount),
)
def change_payout_account(
    merchant_id: str, body: PayoutAccountChange, session: DbSession, who: Caller
) -> MerchantOut:
    """Change where payouts go (the owner, or an admin); a verified merchant must be verified again."""
    view = onboarding.change_payout_account(
        session, who, merchant_id, bank_bin=body.bank_bin, account=body.account, holder=body.account_name
    )
    return merchant_out(view)


@router.patch(
    "/merchants/{merchant_id}/terms", responses=errors(RoleNotAllowed, MerchantNotFound, UnknownFeePlan)
)
def change_terms(merchant_id: str, body: TermsChange, session: DbSession, who: Caller) -> MerchantOut:
    """Change the fee plan, overpayment policy or settlement delay (finance, admin)."""
    return merchant_out(onboarding.change_terms(session, who, merchant_id, **body.model_dump()))


@router.post("/merchants/{merchant_id}/verification", responses=errors(RoleNotAllowed, MerchantNotFound))
def set_verification(
    merchant_id: str, body: VerificationChange, session: DbSession, who: Caller
) -> MerchantOut:
    """Verify a merchant so its balance is paid out, or suspend it (finance, admin)."""
    return merchant_out(onboarding.set_verification(session, who, merchant_id, body.status))


@router.post(
    "/merchants/{merchant_id}/invitations",
    status_code=201,
    responses=errors(MerchantNotFound, StaffRoleRequired),
)
def invite(merchant_id: str, body: InvitationCreate, session: DbSession, who: Caller) -> InvitationCreated:
    """Invite someone by email to the staff in a role (owner, admin); the token is shown only here."""
    invitation, token = onboarding.invite(session, who, merchant_id, email=body.email, role=body.role)
    return InvitationCreated(**InvitationOut.model_validate(invitation).model_dump(), token=token)


@router.post(
    "/invitations/accept",
    responses=errors(InvitationNotFound, InvitationNotForYou, AlreadyStaff),
)
def accept_invitation(body: InvitationAccept, session: DbSession, who: Caller) -> Joined:
    """Join a merchant's staff with an invitation's token; answers with a token that acts for it."""
    member, user = onboarding.accept_invitation(session, who, body.token)
    token, expires_in = issue_token(user)
    return Joined(
        id=member.id,
        merchant_id=member.merchant_id,
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=member.role,
        created_at=member.created_at,
        access_token=token,
        expires_in=expires_in,
    )


@router.get("/merchants/{merchant_id}/members", responses=errors(MerchantNotFound))
def list_members(merchant_id: str, session: DbSession, who: Caller) -> list[MemberOut]:
    """The merchant's staff and their roles."""
    return [
        MemberOut(
            id=m.id,
            merchant_id=m.merchant_id,
            user_id=u.id,
            email=u.email,
            full_name=u.full_name,
            role=m.role,
            created_at=m.created_at,
        )
        for m, u in onboarding.list_members(session, who, merchant_id)
    ]


@router.delete(
    "/merchants/{merchant_id}/members/{member_id}",
    status_code=204,
    response_class=Response,
    responses=errors(MerchantNotFound, StaffRoleRequired, MemberNotFound, LastOwner),
)
def remove_member(merchant_id: str, member_id: str, session: DbSession, who: Caller) -> Response:
    """Remove someone from the staff (owner, admin); their access ends with this response."""
    onboarding.remove_member(session, who, merchant_id, member_id)
    return Response(status_code=204)
