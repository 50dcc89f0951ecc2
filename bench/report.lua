-- Shared by the wrk scripts in this directory (loaded with dofile): prints one machine-readable
-- line that scripts/bench-identity.sh parses. Latencies are microseconds.
function report(summary, latency)
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d rps=%.2f mean_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
done = report
