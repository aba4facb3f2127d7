-- FLOOR (bare Django, a POST's I/O): POST /__floor_django_post (bench/holdout_wsgi.py): the claim, the
-- intent, the processor call, the outcome and three Redis round trips, with no framework around them.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("POST", "/__floor_django_post?merchant=" .. (os.getenv("BENCH_MERCHANT_ID") or ""), get_headers())
end
