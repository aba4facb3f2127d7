-- FLOOR: /__floor (bench/floor_wsgi.py): one primary-key read, no Django middleware, no DRF.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/__floor?merchant=" .. (os.getenv("BENCH_MERCHANT_ID") or ""), get_headers())
end
