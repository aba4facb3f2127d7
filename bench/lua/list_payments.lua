-- Scenario 2: GET /api/v1/payments?limit=20 (the newest page of the bench merchant).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/api/v1/payments?limit=20", get_headers())
end
