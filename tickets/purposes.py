"""The tickets domain's purposes: `transit_fare` (a day's fares, charged in batches) and `transit_pass`."""

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import InvalidRequest
from payments.models import PaymentIntent
from payments.purposes import Purpose, register_purpose
from tickets.service.passes import TRANSIT_PASS


def _only_the_fare_engine(session: Session, who: Principal, intent: PaymentIntent) -> None:
    raise InvalidRequest("Transit fares are charged by the fare engine from taps, not created by hand.")


# Paid to the network's merchant, less its fee; created only by payments.batch, which runs no validate hook.
TRANSIT_FARE = Purpose(name="transit_fare", providers=frozenset({"wallet"}), validate=_only_the_fare_engine)


def register_purposes() -> None:
    """Register the transit purposes with the payment core."""
    register_purpose(TRANSIT_FARE)
    register_purpose(TRANSIT_PASS)
