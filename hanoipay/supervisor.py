"""Keep the processes `hanoipay serve` runs beside the API alive: restart what exits, with backoff.

Each child is a `Child`: something that can be started, polled and stopped (a worker, the cron
scheduler, the embedded Redis). A supervising thread polls them; one that exited is logged with its exit
code and started again after a delay that doubles with each quick failure (1 s, 2 s, 4 s ... 30 s) and
resets once it has stayed up for a minute. `stop()` stops the thread first, so nothing is restarted while
`serve` shuts down, then stops every child.
"""

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0


@dataclass
class Child:
    """A supervised process: how to start it, ask whether it runs, and stop it."""

    name: str
    start: Callable[[], None]
    exit_code: Callable[[], int | None]
    stop: Callable[[], None]
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None
    restarts: int = 0


def popen_child(name: str, command: Sequence[str], env: dict[str, str]) -> Child:
    """A child that is an OS process, in its own session so a terminal's Ctrl-C reaches only `serve`."""
    holder: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        holder["process"] = subprocess.Popen(list(command), env=env, start_new_session=True)  # noqa: S603

    def exit_code() -> int | None:
        process = holder.get("process")
        return None if process is None else process.poll()

    def stop() -> None:
        process = holder.get("process")
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    return Child(name, start, exit_code, stop)


@dataclass
class Supervisor:
    """Starts its children, restarts the ones that exit, and stops them all on `stop()`."""

    children: list[Child]
    poll_seconds: float = 0.5
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start every child not yet running, and the supervising thread."""
        for child in self.children:
            if not child.started_at:
                self._start(child)
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising, then stop every child (the last started first)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception:
                log.exception("could not stop %s", child.name)

    def _start(self, child: Child) -> None:
        child.start()
        child.started_at = time.monotonic()
        child.restart_at = None

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            for child in self.children:
                self._check(child)

    def _check(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is None:
            code = child.exit_code()
            if code is None:
                if now - child.started_at > HEALTHY_AFTER_SECONDS:
                    child.backoff = 1.0
                return
            child.restart_at = now + child.backoff
            log.warning("%s exited with code %s; restarting it in %.0f s", child.name, code, child.backoff)
            child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
        elif now >= child.restart_at and not self._stopping.is_set():
            try:
                self._start(child)
            except Exception:
                log.exception("could not restart %s; trying again", child.name)
                child.restart_at = now + child.backoff
                return
            child.restarts += 1
            log.warning("%s restarted (restart %d)", child.name, child.restarts)
