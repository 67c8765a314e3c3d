"""Reconciliation: providers and the bank against the ledger, as Redis-queued jobs, for finance staff."""
