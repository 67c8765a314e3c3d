"""The core's own purposes, providers and jobs, registered once per process."""

import hanoipay.jobs
import hanoipay.notifications  # noqa: F401
from payments.providers.base import register_provider
from payments.providers.manual import ManualProvider
from payments.providers.stripe import StripeProvider
from payments.providers.vietqr import VietQrProvider
from payments.providers.wallet import WalletProvider
from payments.purposes import Purpose, register_purpose
from payments.topups import WALLET_TOPUP

# A payment to a merchant with no domain object behind it (a shop till, a donation box).
MERCHANT_PAYMENT = Purpose(name="merchant_payment")


def register_core() -> None:
    """Register the core's providers and purposes; importing this module registered its jobs."""
    register_provider(WalletProvider())
    register_provider(ManualProvider())
    register_provider(VietQrProvider())
    register_provider(StripeProvider())
    register_purpose(WALLET_TOPUP)
    register_purpose(MERCHANT_PAYMENT)
