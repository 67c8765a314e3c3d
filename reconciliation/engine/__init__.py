"""The matching engine: set-based SQL over a run's provider lines and ledger items.

A run stages the ledger's side of its day (`ledger_side`), then matches exactly by reference chunk by
chunk (`matching.match_chunk`, a range of hash buckets, so chunks run in parallel on several workers),
then settles the residue in one pass (`matching.settle_residue`: amount + time + reference in the
description, duplicates, other days, payouts against their members, what is missing on either side).
"""
