"""The payment core as the composition root sees it: its providers and purposes, routers and jobs."""

from hanoipay.domains import Domain, PeriodicJob
from payments import api
from payments.providers.stripe import webhook as stripe_webhook
from payments.providers.vietqr import api as vietqr_api
from payments.registry import register_core

DOMAIN = Domain(
    name="payments",
    register=register_core,
    routers=(api.router, vietqr_api.router, stripe_webhook.router),
    periodic_jobs=(
        PeriodicJob("outbox.sweep", seconds=5),
        PeriodicJob("payments.roll_up_balances", seconds=5),
        PeriodicJob("payments.void_expired_authorizations", seconds=60),
        PeriodicJob("payments.redeliver_overdue_events", seconds=5),
        PeriodicJob("payments.expire_vietqr_intents", seconds=60),
        PeriodicJob("payments.settle_stale", seconds=300),
        PeriodicJob("payments.purge_idempotency_keys", seconds=3600),
    ),
)
