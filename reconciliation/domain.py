"""The reconciliation domain as the composition root sees it: its routers, jobs and pages."""

from hanoipay.domains import Domain

DOMAIN = Domain(name="reconciliation")
