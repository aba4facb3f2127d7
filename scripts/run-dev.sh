#!/usr/bin/env bash
# `make run`: the Authorize.Net emulator, the beat schedule (in-process, no broker needed) and the
# web server, on embedded defaults. Stops the processes it started (by pid) when the server stops.
set -euo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
EMULATOR_PORT=${EMULATOR_PORT:-8999}
export WEBHOOK_ALLOW_PRIVATE_URLS=${WEBHOOK_ALLOW_PRIVATE_URLS:-true}
# The app talks to the emulator started below, whatever port it was given.
export AUTHORIZE_NET_ENDPOINT=${AUTHORIZE_NET_ENDPOINT:-http://127.0.0.1:${EMULATOR_PORT}/xml/v1/request.api}

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

"$PY" manage.py anet_sandbox --port "$EMULATOR_PORT" \
  --webhook-url "http://127.0.0.1:${PORT}/api/v1/webhooks/authorize-net" &
pids+=($!)
echo "Authorize.Net emulator: http://127.0.0.1:${EMULATOR_PORT}/xml/v1/request.api (pid ${pids[-1]})"

"$PY" manage.py run_schedule --interval 15 >/dev/null &
pids+=($!)
echo "Schedule (webhook retries, reconciliation, billing) running in-process (pid ${pids[-1]})"

if [ -z "${EMAIL_URL:-}" ]; then echo "Emails sent (receipts, notices): files in var/sent-mail/; SMS: printed here"; fi
echo "EasyPay: http://127.0.0.1:${PORT}/api/docs/  (admin: /admin/, health: /health/ready)"
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload
