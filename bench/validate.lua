-- GET /v3/auth/tokens with a fixed X-Auth-Token (caller) and X-Subject-Token (token to check).
-- Env: BENCH_AUTH_TOKEN, BENCH_SUBJECT_TOKEN, BENCH_DIR (this directory).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
wrk.method = "GET"
wrk.path = "/v3/auth/tokens"
wrk.headers["X-Auth-Token"] = os.getenv("BENCH_AUTH_TOKEN")
wrk.headers["X-Subject-Token"] = os.getenv("BENCH_SUBJECT_TOKEN")
wrk.headers["Accept"] = "application/json"
