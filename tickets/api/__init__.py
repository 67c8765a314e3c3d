"""HTTP API of the transit service, one router per role: network, riders' cards, their trips, validators."""

from fastapi import APIRouter

from tickets.api import network, riders, trips, validators

router = APIRouter()
for part in (network, riders, trips, validators):
    router.include_router(part.router)
