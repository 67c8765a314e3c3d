"""The merchants domain as the composition root sees it: its purposes, routers, jobs and pages."""

from hanoipay.domains import Domain
from merchants.api import onboarding

DOMAIN = Domain(name="merchants", routers=(onboarding.router,))
