"""The purpose registry: how a domain package learns, inside the payment's transaction, what became of it.

A domain (parking, transit, markets, tuition) registers a `Purpose` for the intents it creates. The core
calls its hooks in the same database transaction as the status change, so the domain state, the ledger
posting and the intent commit together or not at all. The core never imports a domain package.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from payments.accounts import AccountRef
from payments.exceptions import UnknownPurpose
from payments.models import PaymentIntent, Refund

IntentHook = Callable[[Session, PaymentIntent], None]
ValidateHook = Callable[[Session, Principal, PaymentIntent], None]
RefundHook = Callable[[Session, PaymentIntent, Refund], None]


@dataclass(frozen=True)
class Purpose:
    """What an intent is for, and the hooks its owner wants called."""

    name: str
    requires_merchant: bool = True
    providers: frozenset[str] | None = None
    credit_account: Callable[[Session, PaymentIntent], AccountRef] | None = None
    validate: ValidateHook | None = None
    on_succeeded: IntentHook | None = None
    on_canceled: IntentHook | None = None
    on_refunded: RefundHook | None = None


_registry: dict[str, Purpose] = {}


def register_purpose(purpose: Purpose) -> None:
    """Register (or replace) the handler for a purpose."""
    _registry[purpose.name] = purpose


def get_purpose(name: str) -> Purpose:
    """The registered purpose, or UnknownPurpose."""
    purpose = _registry.get(name)
    if purpose is None:
        raise UnknownPurpose(f"Unknown purpose {name!r}; known: {', '.join(sorted(_registry))}.")
    return purpose


def registered_purposes() -> list[str]:
    """The names of every registered purpose."""
    return sorted(_registry)
