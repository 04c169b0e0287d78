-- wrk reporter: one JSON line (prefixed WRK_JSON) with what run.py records.
-- Latencies are wrk's, in microseconds; errors.status counts responses with
-- status >= 400 (wrk's "Non-2xx or 3xx responses").
-- WRK_THINK_MS > 0: each connection waits that long after a response before its
-- next request (wrk calls delay() per request), keeping the server below saturation.
local think_ms = tonumber(os.getenv("WRK_THINK_MS") or "0") or 0
if think_ms > 0 then
  delay = function() return think_ms end
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
