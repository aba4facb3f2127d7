-- Scenarios 3 and 4: POST /api/v1/payments, tok_visa, a unique Idempotency-Key per request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return post_payment_request()
end
