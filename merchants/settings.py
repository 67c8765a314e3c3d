"""The merchants domain's settings, from the environment (prefix `HANOIPAY_`)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class MerchantsSettings(BaseSettings):
    """What the merchants domain reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HANOIPAY_", env_file=".env", extra="ignore")

    # Stalls collect on virtual accounts the platform opens at its collection bank: this prefix and
    # eight digits.
    stall_account_prefix: str = "96"
    tuition_reminder_days: int = 3
    feed_heartbeat_seconds: float = 15.0
    feed_replay_overlap_seconds: int = 5


@lru_cache
def get_merchants_settings() -> MerchantsSettings:
    """The process's merchants settings, read once."""
    return MerchantsSettings()
