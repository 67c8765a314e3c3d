"""Factories for markets and stalls, in the tests' own words."""

from hanoipay.db import job_session
from merchants.models import Market, Stall
from merchants.service import markets
from payments.models import Merchant
from tests.factories import ADMIN


def make_market(name: str = "Chợ Sấu") -> Market:
    with job_session() as session:
        return markets.create_market(session, ADMIN, name=name, address="Hoài Đức, Hà Nội")


def make_stall(
    merchant: Merchant, market: Market | None = None, *, code: str = "A12", name: str = "Rau sạch cô Lan"
) -> Stall:
    market = market or make_market()
    with job_session() as session:
        return markets.create_stall(
            session, ADMIN, market_id=market.id, code=code, name=name, merchant_id=merchant.id
        )
