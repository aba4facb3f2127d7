#!/usr/bin/env bash
# `make run`: the Authorize.Net emulator and the web server, on embedded defaults.
# Stops the emulator (by its pid) when the server stops.
set -euo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
EMULATOR_PORT=${EMULATOR_PORT:-8999}

emulator_pid=""
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if "$PY" manage.py help anet_sandbox >/dev/null 2>&1; then
  "$PY" manage.py anet_sandbox --port "$EMULATOR_PORT" \
    --webhook-url "http://127.0.0.1:${PORT}/api/v1/webhooks/authorize-net" &
  emulator_pid=$!
  echo "Authorize.Net emulator: http://127.0.0.1:${EMULATOR_PORT}/xml/v1/request.api (pid $emulator_pid)"
fi
echo "EasyPay: http://127.0.0.1:${PORT}/api/docs/  (admin: /admin/, health: /health/ready)"
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload
