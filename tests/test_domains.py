"""Every process that registers the domains knows every job any domain schedules or queues."""

import json
import subprocess
import sys

from city.domains import DOMAINS

CHECK = """
import json
from city.domains import periodic_jobs, register_domains
from hanoipay.jobs import registered_jobs
register_domains()
print(json.dumps({"registered": registered_jobs(), "periodic": [job.name for job in periodic_jobs()]}))
"""


def test_a_fresh_worker_process_knows_every_periodic_and_queued_job():
    # A fresh interpreter, as `hanoipay worker` and `hanoipay cron` start: no test module imported anything.
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    registered = set(found["registered"])
    assert set(found["periodic"]) <= registered, set(found["periodic"]) - registered
    queued_by_the_core = {"payments.deliver_event", "payments.settle_intent", "payments.settle_refund"}
    assert queued_by_the_core <= registered
    assert "notifications.deliver" in registered


def test_every_domain_is_named_once():
    names = [domain.name for domain in DOMAINS]
    assert len(names) == len(set(names))
