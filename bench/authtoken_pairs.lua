-- Exactly BENCH_TOTAL_REQUESTS authenticated requests spread over the token pairs of
-- BENCH_PAIRS_FILE (one "USER_TOKEN SERVICE_TOKEN" a line), for scripts/bench-authtoken.sh's
-- count of identity-server calls. Request k of thread i (of n threads) uses pair
-- (k*n + i) mod #pairs, so every pair is used about equally and in turn. Once a thread has sent
-- its share it sends only token-less requests (answered 401 by every middleware without asking
-- the identity server) until all of its authenticated requests have been answered 200, then
-- writes BENCH_DONE_PREFIX.<thread> and stops; the script then interrupts wrk (whose main thread
-- would otherwise wait out -d, which is only the bound). Prints BENCH_RESULT (report.lua) and
-- "BENCH_PAIRS sent=.. ok=.. other=.." (ok: authenticated requests answered 200).
-- Env: BENCH_PAIRS_FILE, BENCH_TOTAL_REQUESTS, BENCH_THREADS (= wrk -t), BENCH_DONE_PREFIX,
-- BENCH_DIR.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

local threads = {}
local next_id = 0
function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local users, services, npairs, nthreads, quota
local finished = false
-- globals, so that done() can read them with thread:get
sent, ok, other = 0, 0, 0
function init(args)
   nthreads = tonumber(os.getenv("BENCH_THREADS"))
   local total = tonumber(os.getenv("BENCH_TOTAL_REQUESTS"))
   quota = math.floor(total / nthreads)
   if thread_id == 0 then quota = quota + total - quota * nthreads end
   users, services, npairs = {}, {}, 0
   for line in io.lines(os.getenv("BENCH_PAIRS_FILE")) do
      local u, s = line:match("^(%S+)%s+(%S+)")
      if u then
         npairs = npairs + 1
         users[npairs], services[npairs] = u, s
      end
   end
   sent, ok, other = 0, 0, 0
end

-- wrk calls request() once on thread 0's state before any connection is made, to check the
-- script (script_verify_request in wrk.c); that call must not count.
local verifying = true

function request()
   if verifying and thread_id == 0 then
      verifying = false
      return wrk.format("GET", "/verify")
   end
   if sent < quota then
      local i = (sent * nthreads + thread_id) % npairs + 1
      sent = sent + 1
      return wrk.format("GET", "/", {["X-Auth-Token"] = users[i], ["X-Service-Token"] = services[i]})
   end
   return wrk.format("GET", "/after-quota")
end

function response(status, headers, body)
   if status == 200 then ok = ok + 1 else other = other + 1 end
   -- (the second test only guards against authenticated requests that fail: then ok < sent)
   if (ok >= quota or other > quota) and not finished then
      finished = true
      local f = io.open(os.getenv("BENCH_DONE_PREFIX") .. "." .. thread_id, "w")
      if f then f:write(ok, "\n"); f:close() end
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   report(summary, latency)
   local s, o, x = 0, 0, 0
   for _, t in ipairs(threads) do
      s, o, x = s + t:get("sent"), o + t:get("ok"), x + t:get("other")
   end
   io.write(string.format("BENCH_PAIRS sent=%d ok=%d other=%d\n", s, o, x))
end
