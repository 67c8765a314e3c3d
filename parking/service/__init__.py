"""The parking services, one module per concern; the API, the jobs and the CLI call these."""
