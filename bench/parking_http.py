"""Parking search over HTTP for `bench/parking.py`: wrk against `GET /v1/parking/search` and `/healthz`,
every request timed by the script itself."""

import os
import subprocess
import tempfile

from bench.common import BenchServers, api_jwt_env, hanoipay_api, new_user
from hanoipay.auth.service import issue_token
from hanoipay.db import job_session

# One connection per wrk thread, so a thread's `request` and `response` hooks alternate and each request
# is timed on its own by the monotonic clock (LuaJIT's ffi). wrk's own latency histogram is printed
# beside it: on this machine it reported percentiles its own request rate rules out (see
# docs/benchmarks.md, Parking), whereas these per-request times agree with the server's.
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *now);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end
local points = {%s}
local token = "%s"
local i = 0
local started = 0
took = {}
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
request = function()
  i = (i %% #points) + 1
  local p = points[i]
  local path = "%s"
  if p then
    path = string.format(
      "/v1/parking/search?lat=%%.6f&lon=%%.6f&radius_m=%d&duration_minutes=120", p[1], p[2])
  end
  started = now_us()
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
response = function(status, headers, body)
  took[#took + 1] = now_us() - started
end
done = function(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    for _, t in ipairs(thread:get("took")) do
      all[#all + 1] = t
    end
  end
  table.sort(all)
  local function at(p)
    return all[math.max(1, math.ceil(#all * p / 100))] / 1000
  end
  io.write(string.format("WRK %%d %%.1f %%.3f %%.3f %%.3f %%.3f %%d\\n",
    summary.requests, summary.requests / (summary.duration / 1e6), at(50), at(95), all[#all] / 1000,
    latency:percentile(95) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def wrk(
    port: int,
    token: str,
    where: list[tuple[float, float]] | None,
    radius: int,
    seconds: float,
    connections: int,
) -> dict[str, float]:
    """Run wrk (one thread per connection) against search at the points, or against /healthz; rate, and
    latency in ms timed per request (p50, p95, max) and wrk's own p95."""
    listed = ",".join(f"{{{lat},{lon}}}" for lat, lon in (where or []))
    script = WRK_SCRIPT % (listed, token, "/healthz", radius)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(
        [
            "wrk",
            f"-t{connections}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",  # a stall is measured (it shows as the max), not dropped as a timeout
            "-s",
            handle.name,
            f"http://127.0.0.1:{port}/healthz",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    requests, rate, p50, p95, slowest, wrk_p95, errors = line.split()[1:]
    if int(errors):
        raise RuntimeError(f"wrk saw {errors} errors:\n{out}")
    return {
        "requests": float(requests),
        "rate": float(rate),
        "p50": float(p50),
        "p95": float(p95),
        "max": float(slowest),
        "wrk_p95": float(wrk_p95),
    }


def http_search(
    servers: BenchServers, where: list[tuple[float, float]], radius: int, seconds: float, connections: int
) -> tuple[dict[str, float], dict[str, float]]:
    env = api_jwt_env() | {"HANOIPAY_ACCESS_TOKEN_MINUTES": "60"}
    with job_session() as session:
        token = issue_token(new_user(session))[0]
    server = hanoipay_api(servers, env, port=8791, workers=2)
    try:
        wrk(server.port, token, where[:50], radius, 2, connections)  # warm-up
        searched = wrk(server.port, token, where, radius, seconds, connections)
        healthz = wrk(server.port, token, None, radius, seconds, connections)
    finally:
        server.stop()
    return searched, healthz
