-- wrk script: POST a 50-event beacon batch; each request gets its own session id so the
-- server's vital deduplication never merges two requests. Reports one WRK_JSON line.
local counter = 0
local template
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  template = f:read("*a")
  f:close()
  thread_id = tid or 0
end

function request()
  counter = counter + 1
  local body = template:gsub("__SESSION__", "t" .. thread_id .. "-" .. counter)
  return wrk.format("POST", nil, {["Content-Type"] = "text/plain;charset=UTF-8",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
