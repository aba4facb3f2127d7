-- FLOOR (bare Django, read): GET /__floor_django (bench/holdout_wsgi.py): Django's handler, no middleware.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/__floor_django?merchant=" .. (os.getenv("BENCH_MERCHANT_ID") or ""), get_headers())
end
