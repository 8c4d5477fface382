-- Shared by every bench script: one JSON line with the figures the runner reads.
-- Latencies are in microseconds; "status" counts answers that were not 2xx or 3xx.
-- Scripts with a response() callback call count(status), and the answers per status code
-- are reported too (scripts without one keep wrk's fast path).
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

statuses = {}

function count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  local codes = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen ~= nil then
      for code, n in pairs(seen) do
        codes[code] = (codes[code] or 0) + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(codes) do
    parts[#parts + 1] = string.format('"%d":%d', code, n)
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, table.concat(parts, ",")))
end
