"""HTTP API of the payment core: merchants, wallets, payment intents, refunds, ledger, events."""

from fastapi import APIRouter

from payments.api import intents, ledger, merchants, wallets

router = APIRouter()
for part in (merchants, wallets, intents, ledger):
    router.include_router(part.router)
