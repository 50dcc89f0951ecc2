-- GET / with one fixed user token (X-Auth-Token) and service token (X-Service-Token), for
-- scripts/bench-authtoken.sh. Env: BENCH_USER_TOKEN, BENCH_SERVICE_TOKEN, BENCH_DIR.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
wrk.method = "GET"
wrk.path = "/"
wrk.headers["X-Auth-Token"] = os.getenv("BENCH_USER_TOKEN")
wrk.headers["X-Service-Token"] = os.getenv("BENCH_SERVICE_TOKEN")
