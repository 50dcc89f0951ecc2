-- GET /v3/auth/tokens with a different X-Subject-Token on every request, read from a file
-- (one token a line, see crates/baton-token/examples/mint_tokens.rs). Thread i of n takes lines
-- i, i+n, i+2n, ... so that no token is sent twice until the file is used up (then it wraps).
-- Every 2000 requests each thread writes its count to BENCH_PROGRESS.<i> so that the caller
-- can relate memory samples to the number of tokens validated, and stop wrk (SIGINT) at the end.
-- Env: BENCH_AUTH_TOKEN, BENCH_TOKENS_FILE, BENCH_PROGRESS, BENCH_THREADS (= wrk -t), BENCH_DIR.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

local next_id = 0
function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
end

local tokens, n, i, sent, progress
local headers = {
   ["X-Auth-Token"] = os.getenv("BENCH_AUTH_TOKEN"),
   ["Accept"] = "application/json",
}

function init(args)
   local nthreads = tonumber(os.getenv("BENCH_THREADS"))
   tokens, n = {}, 0
   local line_no = 0
   for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
      if line_no % nthreads == thread_id then
         n = n + 1
         tokens[n] = line
      end
      line_no = line_no + 1
   end
   i, sent = 0, 0
   progress = os.getenv("BENCH_PROGRESS") .. "." .. thread_id
end

function request()
   i = i + 1
   if i > n then i = 1 end
   sent = sent + 1
   if sent % 2000 == 0 then
      local f = io.open(progress, "w")
      if f then f:write(sent, "\n"); f:close() end
   end
   headers["X-Subject-Token"] = tokens[i]
   return wrk.format("GET", "/v3/auth/tokens", headers)
end
