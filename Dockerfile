# HanoiPay: one image for every process: `hanoipay api` (default), `worker`, `cron`, `migrate`.
#
#   docker build -t hanoipay .
#   docker compose up -d          (see docker-compose.yml)
#
# The image expects configured servers: HANOIPAY_DATABASE_URL, HANOIPAY_REDIS_URL, HANOIPAY_JWT_KEYS
# (and HANOIPAY_JWT_ACTIVE_KID). It never starts the embedded PostgreSQL or Redis in production.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# DejaVu carries Vietnamese with its diacritics, for printed signs, receipts and statements.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system hanoipay \
    && useradd --system --gid hanoipay --home-dir /app --shell /usr/sbin/nologin hanoipay

WORKDIR /app

# Source in /app, installed *editable*. hanoipay/runtime.py finds the Alembic scripts at
# Path(__file__).resolve().parent.parent / "migrations", i.e. next to the hanoipay/ package. A plain
# `pip install .` would put hanoipay/ in site-packages, where no migrations/ sits beside it, and
# `hanoipay migrate` would fail; with `pip install -e .` the code runs from /app/hanoipay, so
# MIGRATIONS resolves to /app/migrations.
COPY pyproject.toml README.md ./
COPY hanoipay/ hanoipay/
COPY payments/ payments/
COPY parking/ parking/
COPY tickets/ tickets/
COPY merchants/ merchants/
COPY reconciliation/ reconciliation/
COPY city/ city/
COPY migrations/ migrations/
RUN pip install -e . \
    && python -c "from hanoipay.runtime import MIGRATIONS; assert (MIGRATIONS / 'env.py').is_file(), MIGRATIONS" \
    && mkdir -p /app/.hanoipay && chown hanoipay:hanoipay /app/.hanoipay

USER hanoipay

EXPOSE 8000

# Liveness for `hanoipay api`; other roles override or disable it (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"

CMD ["hanoipay", "api"]
