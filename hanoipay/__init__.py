"""HanoiPay infrastructure every domain uses: settings, database, auth, errors, ids, jobs, servers."""
