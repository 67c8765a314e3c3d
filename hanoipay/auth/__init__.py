"""People and systems: users with roles, password login with short-lived JWTs, hashed API keys."""
