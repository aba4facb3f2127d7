-- Scenario 1: GET /api/v1/payments/{id}, a random seeded payment of the bench merchant.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return get_payment_request()
end
