-- Scenario 5: mixed traffic, BENCH_WRITE_PERCENT (default 20) POSTs, the rest GET by id.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function scenario_init(args)
  write_percent = tonumber(os.getenv("BENCH_WRITE_PERCENT") or "20")
end

function request()
  if math.random(100) <= write_percent then
    return post_payment_request()
  end
  return get_payment_request()
end
