"""The merchants domain as the composition root sees it: its purposes, routers, jobs and pages."""

from hanoipay.domains import Domain

DOMAIN = Domain(name="merchants")
