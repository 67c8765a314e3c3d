-- wrk script: replays prepared requests round robin, each made unique, and prints a JSON summary.
--
--   WRK_REQUESTS=file.tsv [WRK_DELAY_MS=200] wrk -t1 -c8 -d10s -s bench/wrk/requests.lua http://host:port
--
-- Each line of the file is: METHOD <tab> PATH <tab> HEADERS <tab> BODY, where HEADERS is
-- "Name: value" pairs joined by "|". Every "{n}" in a header or the body becomes a string unique to the
-- request (run, thread, counter), so an Idempotency-Key is new on every request. With WRK_DELAY_MS each
-- connection waits that long between requests: N connections then offer about N * 1000 / delay
-- requests per second whatever the server's latency (a fixed rate, as a city's traffic arrives). With
-- WRK_ONCE=1 each line is sent once and the run ends when the file does (for requests that would be
-- duplicates the second time, such as a bank's notifications); the rate is over the time it took.

local requests = {}
local counter = 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local once = os.getenv("WRK_ONCE") == "1"
local run = os.getenv("WRK_RUN") or tostring(os.time())
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    local method, path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    for pair in header_text:gmatch("[^|]+") do
      local name, value = pair:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    table.insert(requests, { method = method, path = path, headers = headers, body = body })
  end
end

function request()
  counter = counter + 1
  if once and counter >= #requests then
    wrk.thread:stop()
  end
  local r = requests[(counter - 1) % #requests + 1]
  local unique = run .. "-" .. thread_number .. "-" .. counter
  local headers = {}
  for name, value in pairs(r.headers) do
    headers[name] = value:gsub("{n}", unique)
  end
  local body = r.body:gsub("{n}", unique)
  return wrk.format(r.method, r.path, headers, body)
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "p999_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000))
end
