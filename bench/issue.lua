-- POST /v3/auth/tokens: password auth (user name + domain), project scope by name; or, with
-- BENCH_BODY_FILE, the request body in that file (an application credential login, ...).
-- Env: BENCH_USER, BENCH_PASSWORD, BENCH_PROJECT (domain Default), BENCH_DIR.
--
-- Besides the usual summary it prints the steady-state issue rate: the slope of a least-squares
-- line through (completion time, number of tokens issued so far). At 32 connections a server
-- that runs every bcrypt check at once finishes them in batches (32 checks sharing 2 cores end
-- together every ~4 s), so "completions inside a 20 s window" is off by up to a batch, while the
-- slope is not.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long sec; long nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_s()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC, shared by all threads
   return tonumber(ts.sec) + tonumber(ts.nsec) / 1e9
end

wrk.method = "POST"
wrk.path = "/v3/auth/tokens"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file then
   local f = assert(io.open(body_file, "r"))
   wrk.body = f:read("*a")
   f:close()
else
   wrk.body = string.format(
   '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s",' ..
   '"domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"%s",' ..
   '"domain":{"name":"Default"}}}}}',
   os.getenv("BENCH_USER"), os.getenv("BENCH_PASSWORD"), os.getenv("BENCH_PROJECT"))
end

local threads = {}
function setup(thread)
   table.insert(threads, thread)
end

times = {}
function response(status, headers, body)
   if status == 201 then
      times[#times + 1] = now_s()
   end
end

function done(summary, latency, requests)
   report(summary, latency)
   local all = {}
   for _, t in ipairs(threads) do
      for _, v in ipairs(t:get("times")) do all[#all + 1] = v end
   end
   table.sort(all)
   local n = #all
   if n < 3 then
      io.write("BENCH_SLOPE rps=0 samples=", n, "\n")
      return
   end
   local st, sk = 0, 0
   for k, t in ipairs(all) do st = st + t; sk = sk + k end
   local mt, mk = st / n, sk / n
   local cov, var = 0, 0
   for k, t in ipairs(all) do
      cov = cov + (t - mt) * (k - mk)
      var = var + (t - mt) * (t - mt)
   end
   io.write(string.format("BENCH_SLOPE rps=%.3f samples=%d span_s=%.2f\n",
      var > 0 and cov / var or 0, n, all[n] - all[1]))
end
