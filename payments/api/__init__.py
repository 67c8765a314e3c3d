"""HTTP API of the payment core: wallets, payment intents, refunds, merchants' ledger, events.

Merchant onboarding (`POST /v1/merchants`, staff, bank accounts, verification) is the merchants domain's.
"""

from fastapi import APIRouter

from payments.api import intents, ledger, wallets

router = APIRouter()
for part in (wallets, intents, ledger):
    router.include_router(part.router)
