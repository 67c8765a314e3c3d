"""The purposes the merchants domain registers with the payment core: market sales and tuition."""

from merchants.service import markets
from merchants.service.tuition import payments as tuition
from payments.purposes import Purpose

MARKET_SALE = Purpose(
    name="market_sale",
    providers=frozenset({"vietqr", "wallet", "stripe"}),
    validate=markets.validate_sale,
    on_succeeded=markets.record_sale,
    on_refunded=markets.record_refund,
)

TUITION_INVOICE = Purpose(
    name="tuition_invoice",
    providers=frozenset({"vietqr", "wallet", "stripe"}),
    validate=tuition.validate_payment,
    on_succeeded=tuition.record_payment,
    on_refunded=tuition.record_refund,
)
