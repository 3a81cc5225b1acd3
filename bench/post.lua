-- wrk script: POST a 1 KB JSON body and count answers by status class, across all threads.
-- The done() hook prints one JSON line prefixed with "BENCH_JSON " for bench/ingest.py to read.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Top level runs in every thread's Lua state and in the main one (where done() reads the size).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event":"bench.ping","id":12345,"pad":"' .. string.rep("x", 1024 - 42) .. '"}'
ok, other = 0, 0

-- HOOKSCOPE_BENCH_PATHS (comma separated) spreads the requests over several paths (bins), in turn.
local paths = {}
for path in string.gmatch(os.getenv("HOOKSCOPE_BENCH_PATHS") or "", "[^,]+") do
  table.insert(paths, path)
end
if #paths > 0 then
  local n = 0
  function request()
    n = n + 1
    return wrk.format(nil, paths[n % #paths + 1])
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"ok_2xx":%d,"non_2xx":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"body_bytes":%d}\n',
    summary.requests, summary.duration, summary.bytes, ok_total, other_total,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    #wrk.body))
end
