"""`hanoipay serve` as a person runs it: embedded servers, API, worker, cron; Ctrl-C; a restart keeps data."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from rq import Worker
from rq.cron import CronScheduler

from tests.conftest import free_port

# `hanoipay serve` here always starts its own embedded servers: CI's second pass (on the machine's
# servers) would only repeat it.
pytestmark = pytest.mark.own_servers


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


def redis_processes(serve: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [p for p in psutil.Process(serve.pid).children(recursive=True) if "redis-server" in p.name()]


def redis_answers(data_dir: Path) -> bool:
    try:
        return bool(
            redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"), socket_timeout=0.5).ping()
        )
    except (redis.RedisError, OSError):
        return False


def city_users(api: str, data_dir: Path) -> tuple[dict[str, str], dict[str, str], str, str]:
    """An admin made with the CLI, a finance user, a merchant, and a funded customer: (finance, customer)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANOIPAY_")}
    env["HANOIPAY_DATA_DIR"] = str(data_dir)
    password = "admin password 1"
    command = ["users", "create", "--email", "admin@example.vn", "--name", "Admin", "--role", "admin"]
    subprocess.run(
        [sys.executable, "-m", "city.cli", *command, "--password", password],
        env=env,
        check=True,
        capture_output=True,
    )

    def login(email: str, secret: str) -> dict[str, str]:
        token = httpx.post(f"{api}/v1/auth/token", data={"username": email, "password": secret}).json()
        return {"Authorization": f"Bearer {token['access_token']}"}

    admin = login("admin@example.vn", password)
    merchant = httpx.post(
        f"{api}/v1/merchants",
        json={"name": "Chợ Hôm", "kind": "market_vendor", "fee_bps": 100, "payout_bank_bin": "970436",
              "payout_account": "0011002233", "payout_account_name": "NGUYEN VAN A"},
        headers=admin,
    ).json()  # fmt: skip
    finance_user = {"email": "fin@example.vn", "password": "finance password", "full_name": "Hà"}
    httpx.post(
        f"{api}/v1/users", json=finance_user | {"roles": ["finance"]}, headers=admin
    ).raise_for_status()
    finance = login("fin@example.vn", "finance password")
    customer_user = {"email": "an@example.vn", "password": "customer password", "full_name": "An"}
    httpx.post(f"{api}/v1/users/signup", json=customer_user).raise_for_status()
    customer = login("an@example.vn", "customer password")
    wallet = httpx.post(f"{api}/v1/wallets", json={"currency": "VND"}, headers=customer).json()
    topup = {"amount": 10_000_000, "reason": "test funds"}
    httpx.post(
        f"{api}/v1/wallets/{wallet['id']}/manual_topups", json=topup, headers=finance
    ).raise_for_status()
    return finance, customer, merchant["id"], wallet["id"]


def undelivered_events(api: str, finance: dict[str, str]) -> tuple[int, int]:
    """(events, of which undelivered), read through the API."""
    total = undelivered = 0
    cursor = None
    while True:
        params = {"limit": 100} | ({"starting_after": cursor} if cursor else {})
        page = httpx.get(f"{api}/v1/events", params=params, headers=finance, timeout=10).json()
        total += len(page["data"])
        undelivered += sum(1 for e in page["data"] if e["delivered_at"] is None)
        if not page["has_more"]:
            return total, undelivered
        cursor = page["next_cursor"]


def test_serve_lives_through_a_paused_and_a_killed_redis_and_stops_on_sigterm(database_url):
    data_dir = Path(tempfile.mkdtemp(prefix="hanoipay-outage-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    serve = start_serve(data_dir, port)
    statuses: list[int] = []
    stop_paying = threading.Event()
    try:
        finance, customer, merchant_id, wallet_id = city_users(api, data_dir)
        connection = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
        deadline = time.monotonic() + 60
        while not (Worker.all(connection=connection) and CronScheduler.all(connection=connection)):
            assert time.monotonic() < deadline, "serve's worker and cron did not come up"
            time.sleep(0.2)
        connection.close()

        def pay_steadily() -> None:
            body = {"amount": 1_000, "currency": "VND", "merchant_id": merchant_id, "wallet_id": wallet_id,
                    "purpose": "merchant_payment", "provider": "wallet", "confirm": True}  # fmt: skip
            while not stop_paying.is_set():
                statuses.append(
                    httpx.post(
                        f"{api}/v1/payment_intents", json=body, headers=customer, timeout=30
                    ).status_code
                )
                time.sleep(0.2)

        payer = threading.Thread(target=pay_steadily)
        payer.start()
        time.sleep(2)
        [paused] = redis_processes(serve)
        paused.suspend()  # SIGSTOP: the server hangs, connections stay open
        time.sleep(15)
        paused.resume()
        time.sleep(3)
        killing_until = time.monotonic() + 15
        kills = 0
        while time.monotonic() < killing_until:  # SIGKILL it, and every copy serve brings back, for 15 s
            for process in redis_processes(serve):
                process.kill()
                kills += 1
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while not redis_answers(data_dir):
            assert time.monotonic() < deadline, "serve did not bring Redis back"
            time.sleep(0.1)
        back = time.monotonic()
        time.sleep(3)
        stop_paying.set()
        payer.join()
        readiness = httpx.get(f"{api}/readyz").json()
        while (pending := undelivered_events(api, finance))[1] and time.monotonic() < back + 30:
            time.sleep(0.5)
        assert pending[1] == 0, f"{pending[1]} of {pending[0]} events undelivered 30 s after Redis came back"
        assert kills >= 1
        assert set(statuses) == {201}, "payments must go on while Redis is away"
        assert pending[0] >= len(statuses)
        assert readiness["checks"]["postgres"]["ok"] is True
        connection = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
        assert len(Worker.all(connection=connection)) == 1
        assert len(CronScheduler.all(connection=connection)) == 1
        while httpx.get(f"{api}/readyz").json()["checks"]["queue"]["depth"] and time.monotonic() < back + 60:
            time.sleep(0.5)  # what is left is redundant deliveries, which the worker finds already done
        ready = httpx.get(f"{api}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["queue"]["depth"] == 0
    finally:
        stop_paying.set()
        children = psutil.Process(serve.pid).children(recursive=True)
        serve.send_signal(signal.SIGTERM)
        exit_code = serve.wait(60)
    assert exit_code == 0
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"still running after SIGTERM: {[p.name() for p in alive]}"
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"
    assert not (data_dir / "redis" / "redis.sock").exists(), "the embedded Redis is still running"


def live_workers(serve: subprocess.Popen[bytes]) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(serve.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_serve_restarts_a_worker_that_dies(database_url):
    data_dir = Path(tempfile.mkdtemp(prefix="hanoipay-restart-"))
    serve = start_serve(data_dir, free_port())
    try:
        [worker] = live_workers(serve)
        worker.kill()
        deadline = time.monotonic() + 20
        while not (again := live_workers(serve)) or again[0].pid == worker.pid:
            assert time.monotonic() < deadline, "serve did not restart the worker"
            time.sleep(0.2)
        zombies = [p for p in psutil.Process(serve.pid).children() if p.status() == psutil.STATUS_ZOMBIE]
        assert zombies == [], "serve left a dead child unreaped"
    finally:
        stop_with_ctrl_c(serve)
