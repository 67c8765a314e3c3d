"""HanoiPay infrastructure: app factory, settings, database, auth, errors, jobs, embedded servers and CLI."""
