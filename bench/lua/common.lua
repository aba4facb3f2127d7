-- Shared by every scenario (loaded with dofile by each script).
-- Each wrk thread counts statuses; done() (main state) sums them and prints one line:
--   BENCH_JSON {"requests":..,"non2xx":..,"errors":{..},"latency_us":{"p50":..,"p95":..,"p99":..},..}
-- Environment: BENCH_API_KEY (X-API-Key), BENCH_NONCE (makes Idempotency-Keys unique per run),
-- BENCH_IDS_FILE (one payment id a line), BENCH_MERCHANT_ID, BENCH_WRITE_PERCENT (mixed).

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function read_lines(path)
  local out = {}
  if not path or path == "" then return out end
  local f = io.open(path, "r")
  if not f then return out end
  for line in f:lines() do
    if line ~= "" then table.insert(out, line) end
  end
  f:close()
  return out
end

function init(args)
  counter = 0
  non2xx = 0
  statuses = {}
  api_key = os.getenv("BENCH_API_KEY") or ""
  nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
  math.randomseed(os.time() * 1000 + tid * 7919)
  ids = read_lines(os.getenv("BENCH_IDS_FILE"))
  if scenario_init then scenario_init(args) end
end

function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

-- Request builders shared by the scenarios.
function get_headers()
  return { ["X-API-Key"] = api_key, ["Accept"] = "application/json" }
end

function get_payment_request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/payments/" .. id, get_headers())
end

function post_payment_request()
  counter = counter + 1
  local key = "bench-" .. nonce .. "-" .. tid .. "-" .. counter
  local amount = string.format("%d.%02d", 1 + (counter % 900), (tid * 7 + counter) % 100)
  local body = '{"amount":"' .. amount .. '","currency":"USD","card_token":"tok_visa",'
    .. '"customer_id":"cust_bench_' .. tid .. '","customer_email":"bench@example.com",'
    .. '"customer_name":"Bench Customer","description":"load test","metadata":{"run":"' .. nonce .. '"}}'
  return wrk.format("POST", "/api/v1/payments", {
    ["X-API-Key"] = api_key,
    ["Accept"] = "application/json",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }, body)
end

local function json_statuses(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local total_non2xx, all = 0, {}
  for _, t in ipairs(threads) do
    total_non2xx = total_non2xx + (t:get("non2xx") or 0)
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do
      all[k] = (all[k] or 0) + v
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d},'
      .. '"statuses":%s}\n',
    summary.requests, summary.duration, summary.bytes, total_non2xx,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    json_statuses(all)))
end
