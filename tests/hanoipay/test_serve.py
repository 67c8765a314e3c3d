"""`hanoipay serve` as a person runs it: embedded servers, API, worker, cron; Ctrl-C; a restart keeps data."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import redis
from rq import Worker
from rq.cron import CronScheduler

from tests.conftest import free_port


def start_serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANOIPAY_")}
    env["HANOIPAY_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "city.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("hanoipay serve did not answer")


def stop_with_ctrl_c(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    return children


def test_serve_runs_everything_stops_on_ctrl_c_and_keeps_data(database_url):
    data_dir = Path(tempfile.mkdtemp(prefix="hanoipay-serve-"))
    port = free_port()
    process = start_serve(data_dir, port)
    try:
        api = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{api}/openapi.json").json()["info"]["title"] == "HanoiPay"
        assert httpx.get(f"{api}/docs").status_code == 200
        signup = {"email": "lan@example.vn", "password": "a long password", "full_name": "Lan"}
        assert httpx.post(f"{api}/v1/users/signup", json=signup).status_code == 201
        queue = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            Worker.all(connection=queue) and CronScheduler.all(connection=queue)
        ):
            time.sleep(0.3)
        assert len(Worker.all(connection=queue)) == 1
        assert len(CronScheduler.all(connection=queue)) == 1
        queue.close()
    finally:
        children = stop_with_ctrl_c(process)
    assert children, "serve started no worker, cron or database processes"
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"still running after Ctrl-C: {[p.pid for p in alive]}"
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"
    assert not (data_dir / "redis" / "redis.sock").exists(), "the embedded Redis is still running"

    process = start_serve(data_dir, port)
    try:
        login = httpx.post(
            f"http://127.0.0.1:{port}/v1/auth/token",
            data={"username": "lan@example.vn", "password": "a long password"},
        )
        assert login.status_code == 200, "the user created before the restart is gone"
    finally:
        stop_with_ctrl_c(process)
