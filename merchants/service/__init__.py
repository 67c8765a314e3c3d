"""The merchants domain's services, one module per area; each takes a Session and only flushes."""
