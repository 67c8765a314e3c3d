"""The purposes the merchants domain registers with the payment core: market sales and tuition."""

from merchants.service import markets
from payments.purposes import Purpose

MARKET_SALE = Purpose(
    name="market_sale",
    providers=frozenset({"vietqr", "wallet", "stripe"}),
    validate=markets.validate_sale,
    on_succeeded=markets.record_sale,
    on_refunded=markets.record_refund,
)
