"""HTTP API of the merchants domain, one router per area."""
