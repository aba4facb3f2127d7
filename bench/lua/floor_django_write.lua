-- FLOOR (bare Django, write): POST /__floor_django_write (bench/holdout_wsgi.py): INSERT + UPDATE.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("POST", "/__floor_django_write?merchant=" .. (os.getenv("BENCH_MERCHANT_ID") or ""), get_headers())
end
