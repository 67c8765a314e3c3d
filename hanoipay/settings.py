"""Settings from the environment (prefix `HANOIPAY_`), never from code."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the platform reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HANOIPAY_", env_file=".env", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".hanoipay")

    jwt_keys: dict[str, str] = Field(default_factory=dict)
    jwt_active_kid: str | None = None
    access_token_minutes: int = 15
    web_session_hours: int = 12
    # Origins a page may load images from besides its own (a map tile server for the parking pages).
    web_image_origins: list[str] = Field(default_factory=list)

    capture_window_hours: int = 7 * 24
    idempotency_ttl_hours: int = 24
    outbox_sweep_after_seconds: int = 10
    outbox_relay_poll_ms: int = 200
    queue_name: str = "default"

    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None

    bank_webhook_secrets: dict[str, str] = Field(default_factory=dict)
    bank_webhook_tolerance_seconds: int = 300
    vietqr_expiry_minutes: int = 30
    vietqr_bank_bin: str = "970436"
    vietqr_account: str = "1900100200300"
    vietqr_account_name: str = "CONG TY HANOIPAY"
    vietqr_collection_accounts: list[str] = Field(default_factory=list)

    notification_channel: str = "inbox"

    # Transit tickets: issuer keys sign rider credentials (key id → base64url Ed25519 private key, 32
    # bytes); every key listed is published for validators, the active one signs new credentials.
    transit_issuer_keys: dict[str, str] = Field(default_factory=dict)
    transit_issuer_active_kid: str | None = None
    transit_credential_days: int = 30
    transit_slot_seconds: int = 10
    transit_clock_skew_seconds: int = 20
    transit_rescan_seconds: int = 300
    transit_debt_limit: int = 20_000

    ready_max_outbox_lag_seconds: float = 60.0
    ready_max_queue_depth: int = 100_000
    event_redelivery_seconds: int = 20

    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 52_428_800

    # Uvicorn's line per request; off by default (a proxy in front logs requests at scale).
    access_log: bool = False
    # A warning for each request slower than this (hanoipay.timing); 0 logs every request.
    slow_request_ms: int = Field(default=1_000, ge=0)

    db_pool_size: int = 20
    db_max_overflow: int = 10

    @property
    def embedded(self) -> bool:
        """True when no outside servers are configured and embedded ones must be started."""
        return self.database_url is None or self.redis_url is None


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
