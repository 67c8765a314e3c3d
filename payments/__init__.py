"""The payment-intent core: intents, providers, idempotency, refunds, wallets and the double-entry ledger."""
