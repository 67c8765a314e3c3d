"""The merchants domain's jobs: thin, idempotent, each in its own session."""

from hanoipay.jobs import job
from merchants.service import feed


@job("merchants.announce_member_removed")
def announce_member_removed(merchant_id: str, user_id: str) -> None:
    """Close a removed staff member's open live feeds."""
    feed.announce_member_removed(merchant_id, user_id)
