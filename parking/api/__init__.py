"""The parking HTTP API: drivers (search, quotes, sessions), operators (data, spots, reports), attendants."""

from parking.api import drivers, enforcement, operators

ROUTERS = (drivers.router, operators.router, enforcement.router)
